"""Optional API keys for /v1/*: `Authorization: Bearer <key>`, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.dependencies import get_runtime
from service.errors import UnauthorizedError
from service.runtime import ServiceRuntime

_bearer = HTTPBearer(auto_error=False, description="required when the server is started with API keys")


def key_matches(candidate: str, keys: list[bytes]) -> bool:
    """Compare against every key (no early exit), so timing does not tell which prefix matched."""
    given = candidate.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


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
