"""API keys for /v1/* and the admin key for /v1/admin/*: `Authorization: Bearer <key>`, compared in constant time,
never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from service.api.dependencies import get_runtime
from service.errors import AdminDisabledError, UnauthorizedError
from service.runtime import ServiceRuntime

_bearer = HTTPBearer(auto_error=False, description="required when the server is started with API keys")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminKey", description="the admin key the server was started with"
)


def key_matches(candidate: str, keys: list[bytes]) -> bool:
    """Compare against every key (no early exit), so timing does not tell which prefix matched."""
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


def bearer_key_accepted(authorization: str | None, keys: list[bytes]) -> bool:
    """True when an `Authorization` header value carries one of `keys` as `HTTPBearer` reads it (no keys: open)."""
    if not keys:
        return True
    scheme, credentials = get_authorization_scheme_param(authorization)
    return bool(authorization and credentials) and scheme.lower() == "bearer" and key_matches(credentials, keys)


async def require_api_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    runtime: Annotated[ServiceRuntime, Depends(get_runtime)],
) -> None:
    keys = runtime.api_keys
    if not keys:
        return
    if credentials is None:
        raise UnauthorizedError("this server needs an API key: send 'Authorization: Bearer <key>'")
    if not key_matches(credentials.credentials, keys):
        raise UnauthorizedError("the API key is not valid")


async def require_admin_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
    runtime: Annotated[ServiceRuntime, Depends(get_runtime)],
) -> None:
    """The admin key, and only it (an API key is not enough); refused outright when the server has none."""
    if runtime.admin_key is None:
        raise AdminDisabledError("the admin API is off: start the server with an admin key (WGAN_ADMIN_KEY)")
    if credentials is None:
        raise UnauthorizedError("the admin API needs 'Authorization: Bearer <admin key>'")
    if not key_matches(credentials.credentials, [runtime.admin_key]):
        raise UnauthorizedError("the admin key is not valid")
