"""API keys: `X-API-Key: …` or `Authorization: Bearer …`, checked against sha256 digests in constant time.

Keys are never stored or compared in plaintext: settings.api_keys holds sha256 hex digests
(`ganserve hash-key`), and the optional plaintext settings.api_key (the laptop default) is hashed on use.
Mutating endpoints always need a key; with no key configured they are refused, never left open.
Read endpoints are public unless settings.read_requires_key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.settings import get_settings

# auto_error=False: a missing key is our 401 in the problem shape, not FastAPI's 403.
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (see `ganserve hash-key`)")
_BEARER = HTTPBearer(auto_error=False, description="the same API key as a bearer token")

# Probes and scrapes stay reachable when reads are keyed: orchestrators and Prometheus carry no key.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def key_hash(key: str) -> str:
    """The digest stored in settings.api_keys for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


def accepted_hashes() -> list[str]:
    settings = get_settings()
    hashes = [h.strip().lower() for h in settings.api_keys if h.strip()]
    plain = settings.api_key.get_secret_value()
    if plain:
        hashes.append(key_hash(plain))
    return hashes


def key_is_valid(given: str | None) -> bool:
    """True when `given` hashes to an accepted digest. Every digest is compared (no early exit), each
    with compare_digest, so the time taken says nothing about which bytes matched."""
    if not given:
        return False
    digest = key_hash(given).encode()
    valid = False
    for accepted in accepted_hashes():
        valid |= hmac.compare_digest(digest, accepted.encode())
    return valid


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _unauthorized() -> HTTPException:
    if not accepted_hashes():
        detail = "no API key is configured on the server: set GANSERVE_API_KEY or GANSERVE_API_KEYS"
    else:
        detail = "missing or wrong API key: send it as the X-API-Key header or as a Bearer token"
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def require_api_key(x_api_key: Annotated[str | None, Security(_HEADER)] = None,
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None) -> None:
    """Dependency of every mutating route."""
    if not key_is_valid(x_api_key or (bearer.credentials if bearer else None)):
        raise _unauthorized()


async def read_access(request: Request) -> None:
    """App-wide dependency: enforces a key on reads only when settings.read_requires_key is on. It reads the
    headers itself so the OpenAPI schema does not claim every read needs a key. Async because it never
    blocks: a plain `def` would cost every request a round trip through the thread pool."""
    if not get_settings().read_requires_key or request.url.path in PUBLIC_PATHS:
        return
    given = presented_key(request.headers.get("x-api-key"), request.headers.get("authorization"))
    if not key_is_valid(given):
        raise _unauthorized()
