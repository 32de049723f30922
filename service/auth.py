"""API keys for mutating endpoints: `X-API-Key: …` or `Authorization: Bearer …`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Header, HTTPException

from service.settings import get_settings


def require_api_key(x_api_key: str | None = Header(default=None),
                    authorization: str | None = Header(default=None)) -> None:
    expected = get_settings().api_key
    if not expected:
        return
    given = x_api_key or ""
    if not given and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong API key: send it as the X-API-Key header",
                            headers={"WWW-Authenticate": "Bearer"})
