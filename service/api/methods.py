"""Which methods a path allows: OPTIONS answers with them, and every 405 lists all of them in Allow.

Starlette's router names only the methods of the first route that matched the path, so a path served by
several routes (GET and POST /jobs) would advertise half of what it accepts. The methods come from the
app's OpenAPI document, the same truth clients read.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_OPERATIONS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_STATIC = "/static/"


@lru_cache(maxsize=4)
def _templates(app: Any) -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    paths = app.openapi().get("paths", {})
    return tuple((re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
                  frozenset(m.upper() for m in operations if m in _OPERATIONS))
                 for path, operations in paths.items())


def allowed_methods(scope: Scope) -> list[str]:
    """Every method the app documents for this path (with HEAD beside GET, and OPTIONS), or [] when no
    operation has the path. The gallery's static files serve reads."""
    path = scope.get("path", "")
    app = scope.get("app")
    methods: set[str] = {"GET"} if path.startswith(_STATIC) else set()
    if app is not None and hasattr(app, "openapi"):
        for pattern, documented in _templates(app):
            if pattern.match(path):
                methods |= documented
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"}) if methods else []


class Options:
    """OPTIONS on a known path: 204 with Allow. A CORS preflight never gets here when CORS is configured (the
    CORS middleware sits outside and answers it); an unknown path goes on to its 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            allow = allowed_methods(scope)
            if allow:
                await Response(status_code=204, headers={"Allow": ", ".join(allow)})(scope, receive, send)
                return
        await self.app(scope, receive, send)
