"""API keys for /v1/* and the admin key for /v1/admin/*: `Authorization: Bearer <key>`, compared in constant time,
never logged. `required_key` is the one rule for which key a path needs; `ServiceRoute` enforces it on every
route and the OpenAPI document states it."""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Any

from starlette.requests import Request

from service.api.request_state import header
from service.errors import AdminDisabledError, UnauthorizedError
from service.runtime import ServiceRuntime


class KeyRequirement(Enum):
    NONE = "none"  # probes and metrics stay open
    API = "api"  # one of the API keys, when the server has any
    ADMIN = "admin"  # the admin key, and only it; refused outright when the server has none


def required_key(path: str) -> KeyRequirement:
    if path.startswith("/v1/admin/"):
        return KeyRequirement.ADMIN
    if path.startswith("/v1/"):
        return KeyRequirement.API
    return KeyRequirement.NONE


def key_matches(candidate: str, keys: list[bytes]) -> bool:
    """Compare against every key (no early exit), so timing does not tell which prefix matched."""
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


def bearer_credentials(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` header value; None for anything else."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def check_key(requirement: KeyRequirement, request: Request, runtime: ServiceRuntime) -> None:
    """Raise `UnauthorizedError` (401) or `AdminDisabledError` (403) unless the request carries the key it needs."""
    if requirement is KeyRequirement.NONE:
        return
    if requirement is KeyRequirement.API:
        keys = runtime.api_keys
        if not keys:
            return
        credentials = bearer_credentials(header(request, b"authorization"))
        if credentials is None:
            raise UnauthorizedError("this server needs an API key: send 'Authorization: Bearer <key>'")
        if not key_matches(credentials, keys):
            raise UnauthorizedError("the API key is not valid")
        return
    if runtime.admin_key is None:
        raise AdminDisabledError("the admin API is off: start the server with an admin key (WGAN_ADMIN_KEY)")
    credentials = bearer_credentials(header(request, b"authorization"))
    if credentials is None:
        raise UnauthorizedError("the admin API needs 'Authorization: Bearer <admin key>'")
    if not key_matches(credentials, [runtime.admin_key]):
        raise UnauthorizedError("the admin key is not valid")


def document_keys(spec: dict[str, Any], keyed: bool, admin: bool) -> dict[str, Any]:
    """The OpenAPI document `spec` with the Bearer schemes and each operation's security requirement, by the same
    rule `ServiceRoute` enforces.

    `keyed`: the server has API keys; without them `/v1/*` is open and declares no security. `admin`: the server
    has an admin key. Without one the admin routes answer 403 to every request, whatever it carries, so they
    declare no security requirement either (a required header no value of which is accepted would promise a 401
    that never comes); their 403 says the admin API is off.
    """
    schemes = {
        "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "required when the server has API keys"},
        "AdminKey": {"type": "http", "scheme": "bearer", "description": "the admin key the server was started with"},
    }
    names = {KeyRequirement.API: "HTTPBearer" if keyed else None, KeyRequirement.ADMIN: "AdminKey" if admin else None}
    used: set[str] = set()
    for path, operations in spec.get("paths", {}).items():
        scheme = names.get(required_key(path))
        if scheme is None:
            continue
        used.add(scheme)
        for operation in operations.values():
            operation["security"] = [{scheme: []}]
    if used:
        spec.setdefault("components", {})["securitySchemes"] = {name: schemes[name] for name in sorted(used)}
    return spec
