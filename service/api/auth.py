"""API keys in requests: `X-API-Key: …` or `Authorization: Bearer …`, checked by service.keys.

Mutating endpoints always need a key of a wide enough scope (the `ApiKey` and `AdminKey` dependencies,
service/api/deps.py; scopes: service/keys.py); with no key configured they are refused, never left open. Read
endpoints are public unless settings.read_requires_key (ReadAccess), then any valid key reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.problems import problem
from service.keys import SCOPES, accepted_hashes, allows, key_is_valid, key_scope
from service.settings import get_settings

# auto_error=False: a missing key is our 401 in the problem shape, not FastAPI's 403.
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (see `ganserve hash-key`)")
_BEARER = HTTPBearer(auto_error=False, description="the same API key as a bearer token")

# Probes stay reachable when reads are keyed: orchestrators carry no key. So does the gallery's page and the
# API's schema, which hold no data (the page asks for the key), and the key form's own endpoint (its POST
# checks the key itself). /metrics has its own switch.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/openapi.json", "/gallery/key", "/v2/health/live",
                          "/v2/health/ready"})
METRICS_PATH = "/metrics"
# The gallery's key form stores the key in this cookie (HttpOnly, SameSite=Strict) so that what a page cannot
# add a header to (the page itself, <img> sources, EventSource) is let through in read-keyed mode. It is
# accepted for reads only: writes need the header.
READ_COOKIE = "ganserve_key"
READ_METHODS = frozenset({"GET", "HEAD"})
PUBLIC_PREFIXES = ("/static/",)
# Routes whose bodies are large enough that the key must be checked before a byte of them is read.
UPLOAD_PATHS = frozenset({"/datasets"})


def presented_keys(x_api_key: str | None, authorization: str | None) -> list[str]:
    """Every credential the request presents; an Authorization header that is not a bearer token counts as
    one (which no key matches), so it cannot ride along unchecked beside a valid key."""
    keys = [x_api_key] if x_api_key is not None else []
    if authorization is not None:
        keys.append(authorization[7:].strip() if authorization[:7].lower() == "bearer " else "")
    return keys


def credentials_valid(keys: list[str]) -> bool:
    """At least one credential, and every one presented is an accepted key."""
    return bool(keys) and all(key_is_valid(key) for key in keys)


def scope_keys(scope: Scope) -> list[str]:
    """The credentials an ASGI request presents, read straight from its raw headers (no Request object)."""
    headers = {k: v for k, v in scope["headers"] if k in (b"x-api-key", b"authorization")}
    return presented_keys(*(headers[name].decode("latin-1") if name in headers else None
                            for name in (b"x-api-key", b"authorization")))


def _unauthorized() -> HTTPException:
    if not accepted_hashes():
        detail = "no API key is configured on the server: set GANSERVE_API_KEY or GANSERVE_API_KEYS"
    else:
        detail = "missing or wrong API key: send it as the X-API-Key header or as a Bearer token"
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def scoped(needed: str) -> Callable[..., None]:
    """A dependency refusing requests without a key of scope `needed` or wider: 401 unless every credential
    presented is a valid key, 403 when the narrowest of them lacks the scope. The two security schemes
    document the headers; the check reads the raw headers, so a second, wrong credential is refused too."""

    def require(request: Request, x_api_key: Annotated[str | None, Security(_HEADER)] = None,
                bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None) -> None:
        keys = scope_keys(request.scope)
        if not credentials_valid(keys):
            raise _unauthorized()
        scope = min((key_scope(key) or SCOPES[0] for key in keys), key=SCOPES.index)
        if not allows(scope, needed):
            raise HTTPException(403, f"this API key has scope {scope!r}; this operation needs {needed!r} "
                                     f"(scopes: {', '.join(SCOPES)}, each allowing what the ones before allow)")

    return require


class ReadAccess:
    """Uploads need a key before their body is read. Reads need a key only when settings.read_requires_key
    (the header, or the gallery's cookie); /metrics only when settings.metrics_requires_key (the header);
    probes, the page and its static files stay public. Mutating routes check their key themselves
    (require_api_key), whatever this says.

    A pure ASGI middleware, not an app-wide dependency: FastAPI's dependency machinery cost every request
    0.05–0.1 ms of CPU even with reads open, and it keeps the OpenAPI schema from claiming every read needs
    a key. The settings are read per request, so they can change at run time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            denied = _unauthorized()
            await problem(401, str(denied.detail), headers=denied.headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @classmethod
    def _allowed(cls, scope: Scope) -> bool:
        path, settings = scope.get("path", ""), get_settings()
        if path == METRICS_PATH:
            return not settings.metrics_requires_key or credentials_valid(scope_keys(scope))
        if cls._upload(scope):
            return credentials_valid(scope_keys(scope))
        if not settings.read_requires_key or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return True
        keys = scope_keys(scope)
        if not keys and scope["method"] in READ_METHODS:
            keys = [cookie_key(scope)] if cookie_key(scope) else []
        return credentials_valid(keys)

    @staticmethod
    def _upload(scope: Scope) -> bool:
        """An upload's key is checked here, before its body (up to upload_max_bytes) is read: FastAPI would
        parse the whole form before the route's ApiKey dependency ran."""
        return scope["method"] == "POST" and scope["path"].rstrip("/") in UPLOAD_PATHS


def cookie_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(READ_COOKIE) or None
    return None
