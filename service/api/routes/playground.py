"""GET / (the playground page) and GET /playground/{name} (its stylesheet, scripts and icon).

Added only when the `playground` setting is on; off, `/` answers the 404 envelope like any unknown path. The files
are read once when the app is built (`service.playground.load_assets`) and served from memory: a request names a
file the package shipped, never a path. Every response here carries the security headers below; the API's
responses are untouched.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.api.request_state import header
from service.api.service_route import ServiceRoute
from service.playground import Asset, PlaygroundAssets

ASSET_PREFIX = "/playground/"

# Only the server's own origin: no inline script or style, no eval, no frames, no plugins. `data:` and `blob:`
# images are the samples the page decodes from the API's base64 and the downloads it builds; they are local.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate each time (ETag): a new release is picked up at once
}


def _serve(asset: Asset, request: Request) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if header(request, b"if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def build_router(assets: PlaygroundAssets) -> APIRouter:
    """The playground's routes over files already in memory; left out of the OpenAPI document (not API)."""
    router = APIRouter(route_class=ServiceRoute, include_in_schema=False)

    @router.get("/")
    async def page(request: Request) -> Response:
        return _serve(assets.page, request)

    @router.get(ASSET_PREFIX + "{name}")
    async def asset(name: str, request: Request) -> Response:
        found = assets.files.get(name)
        if found is None:
            raise HTTPException(404)
        return _serve(found, request)

    return router
