"""GET / and /playground/{name}: the packaged page and its assets, with the security headers; off, `/` is a 404
envelope; only files the package shipped can be named; the API's responses carry none of the page's headers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from service.playground import load_assets
from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio

STATIC = Path(__file__).resolve().parents[4] / "service" / "playground" / "static"
PAGE_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")


def assert_page_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no other origin
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in csp and "http" not in csp and "*" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_and_every_asset_it_names_are_served_with_the_security_headers(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(page)
    named = re.findall(r'(?:src|href)="(/playground/[^"]+)"', page.text)
    assert {"/playground/app.js", "/playground/style.css"} <= set(named)
    media = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for path in named:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == media[Path(path).suffix]
        assert_page_headers(response)
    # The modules app.js imports are served too.
    app_js = (await client.get("/playground/app.js")).text
    for module in re.findall(r'from "\./([\w-]+\.js)"', app_js):
        assert (await client.get(f"/playground/{module}")).status_code == 200, module


async def test_a_revalidation_with_the_etag_is_answered_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/playground/style.css")
    again = await client.get("/playground/style.css", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert_page_headers(again)


@pytest.mark.parametrize(
    "path", ["/playground/nope.js", "/playground/..%2Fassets.py", "/playground/../settings.py", "/playground/"]
)
async def test_only_files_the_package_shipped_can_be_named(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_api_responses_carry_none_of_the_page_headers(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/v1/models"), await client.post("/v1/sample", json={"seed": 1})):
        assert response.status_code == 200
        assert not set(PAGE_HEADERS) & set(response.headers)


async def test_the_page_is_left_out_of_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/playground") for p in paths)


async def test_with_the_playground_off_the_root_is_the_404_envelope(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, playground=False)) as client:
        for path in ("/", "/playground/app.js"):
            response = await client.get(path)
            assert response.status_code == 404
            assert response.json() == {"error": {"code": "not_found", "message": f"no route {path}"}}


async def test_with_api_keys_the_page_itself_needs_none(models_dir: Path) -> None:
    async with serve_in_process(make_settings(models_dir, api_keys=["k-1"])) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/playground/app.js")).status_code == 200
        assert (await client.get("/v1/models")).status_code == 401


def test_the_page_and_its_assets_stay_small() -> None:
    assets = load_assets()
    total = len(assets.page.body) + sum(len(a.body) for a in assets.files.values())
    assert total < 60_000, f"the playground weighs {total} bytes; the budget is 60 KB"
    shipped = {p.name for p in STATIC.iterdir()}
    assert shipped == {"index.html", *assets.files}, "every file in static/ has a media type and is served"
