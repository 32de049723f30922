"""API keys in requests: `X-API-Key: …` or `Authorization: Bearer …`, checked by service.keys.

Mutating endpoints always need a key of a wide enough scope (the `ApiKey` and `AdminKey` dependencies,
service/api/deps.py; scopes: service/keys.py); with no key configured they are refused, never left open. Read
endpoints are public unless settings.read_requires_key (ReadAccess), then any valid key reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.problems import problem
from service.keys import SCOPES, accepted_hashes, allows, key_is_valid, key_scope
from service.settings import get_settings

# auto_error=False: a missing key is our 401 in the problem shape, not FastAPI's 403.
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (see `ganserve hash-key`)")
_BEARER = HTTPBearer(auto_error=False, description="the same API key as a bearer token")

# Probes and scrapes stay reachable when reads are keyed: orchestrators and Prometheus carry no key.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})
PUBLIC_PREFIXES = ("/static/",)


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def scope_key(scope: Scope) -> str | None:
    """The key an ASGI request presents, read straight from its raw headers (no Request object)."""
    headers = {k: v for k, v in scope["headers"] if k in (b"x-api-key", b"authorization")}
    return presented_key(headers.get(b"x-api-key", b"").decode("latin-1") or None,
                         headers.get(b"authorization", b"").decode("latin-1") or None)


def _unauthorized() -> HTTPException:
    if not accepted_hashes():
        detail = "no API key is configured on the server: set GANSERVE_API_KEY or GANSERVE_API_KEYS"
    else:
        detail = "missing or wrong API key: send it as the X-API-Key header or as a Bearer token"
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def scoped(needed: str) -> Callable[..., None]:
    """A dependency refusing requests without a key of scope `needed` or wider: 401 without a valid key,
    403 with a key of a narrower scope."""

    def require(x_api_key: Annotated[str | None, Security(_HEADER)] = None,
                bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None) -> None:
        scope = key_scope(x_api_key or (bearer.credentials if bearer else None))
        if scope is None:
            raise _unauthorized()
        if not allows(scope, needed):
            raise HTTPException(403, f"this API key has scope {scope!r}; this operation needs {needed!r} "
                                     f"(scopes: {', '.join(SCOPES)}, each allowing what the ones before allow)")

    return require


class ReadAccess:
    """Reads need a key only when settings.read_requires_key; probes, scrapes (PUBLIC_PATHS) and the gallery's
    static files stay public. Mutating routes check their key themselves (require_api_key), whatever this says.

    A pure ASGI middleware, not an app-wide dependency: FastAPI's dependency machinery cost every request
    0.05–0.1 ms of CPU even with reads open, and it keeps the OpenAPI schema from claiming every read needs
    a key. The setting is read per request, so it can change at run time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] == "http" and get_settings().read_requires_key and path not in PUBLIC_PATHS
                and not path.startswith(PUBLIC_PREFIXES) and not key_is_valid(scope_key(scope))):
            denied = _unauthorized()
            await problem(401, str(denied.detail), headers=denied.headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)
