"""The outermost middleware: request id, the request log line, the latency histogram and the catch-all 500."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import internal_error
from service.telemetry import logs
from service.telemetry.metrics import http_seconds

log = logging.getLogger("ganserve.http")

# A client's X-Request-ID is echoed only when it is a plain token (it ends up in logs and headers).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a plain token, else a new random 128-bit id (32 hex digits)."""
    incoming = ""
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")  # the last one, as a dict of the headers would keep
    return incoming if _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()


class RequestContext:
    """Request id (X-Request-ID in and out), latency histogram by route template and status, one log line per
    request, and the catch-all 500 in problem+json (no trace in the body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        id_header = (b"x-request-id", rid.encode("latin-1"))
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:  # too late for a clean answer: the connection is cut
                log.error("failed mid-response", exc_info=exc)
                raise
            await internal_error(scope["method"], scope["path"], exc)(scope, receive, send_with_id)
        finally:
            _record(scope, status, time.perf_counter() - started)
            logs.request_id.reset(token)


def _record(scope: Scope, status: int, elapsed: float) -> None:
    """The latency histogram and the request's log line, both naming the route template, not the path."""
    route = getattr(scope.get("route") or _match(scope), "path", None) or "unmatched"
    http_seconds(scope["method"], route, status).observe(elapsed)
    level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
    if log.isEnabledFor(level):  # probes and scrapes: not even the record is built at INFO
        log.log(level, "request", extra={"method": scope["method"], "path": scope["path"], "route": route,
                                         "status": status, "ms": round(elapsed * 1000, 2)})


def _match(scope: Scope) -> Any:
    """The route a request refused before routing (401, 413, 429 from the middlewares) would have reached,
    so its log line and histogram name it; None when no route matches (a 404)."""
    for route in _flat(getattr(getattr(scope.get("app"), "router", None), "routes", ())):
        if route.matches(scope)[0] == Match.FULL:
            return route
    return None


def _flat(routes: Any) -> Iterator[Any]:
    """The app's routes; recent FastAPI keeps each included router whole (its `original_router`), older ones
    copy its routes into the app's list."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from _flat(inner.routes) if inner is not None else (route,)
