"""Request limits as ASGI middleware: body size (413) and a per-client rate limit on sampling (429).

The numbers live in settings (max_body_bytes, sample_rate_per_s, sample_burst) and are read per request.
The rate limit is an in-process token bucket: with N API replicas a client may get up to N times the rate.
That bounds what one client can cost each process, which is the point; a shared Redis bucket would add a
network round trip to every sample request.
"""

from __future__ import annotations

import math

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.auth import credentials_valid, scope_keys
from service.api.problems import problem
from service.keys import key_hash
from service.serving.admission import TokenBuckets
from service.settings import get_settings
from service.telemetry.metrics import RATE_LIMITED

# The endpoints that run the generator (the expensive ones): these prefixes, and /v2's infer routes.
RATE_LIMITED_PREFIXES = ("/samples", "/interpolate", "/encode")
V2_MODELS, INFER = "/v2/models/", "/infer"


def runs_model(path: str) -> str | None:
    """The metric label of a path that runs a model (its prefix, never the path itself), or None."""
    for prefix in RATE_LIMITED_PREFIXES:
        if path.startswith(prefix):
            return prefix
    return "/v2/infer" if path.startswith(V2_MODELS) and path.endswith(INFER) else None
# POST /datasets carries an archive of up to settings.upload_max_bytes, plus the multipart form around it.
UPLOAD_PATH = "/datasets"
UPLOAD_SLACK_BYTES = 1 << 20


class BodyTooLarge(HTTPException):
    """Raised from inside `receive` once the body passes the limit. An HTTPException, so FastAPI's body
    parsing re-raises it as is (it turns other errors into a 400) and the problem handler renders the 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes", headers={"Connection": "close"})


def body_limit(scope: Scope) -> int:
    """Dataset uploads have their own, larger limit (plus room for the multipart framing and form fields)."""
    settings = get_settings()
    if scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH:
        return settings.upload_max_bytes + UPLOAD_SLACK_BYTES
    return settings.max_body_bytes


class BodySizeLimit:
    """413 for a body over the limit. A declared Content-Length is refused before anything is read; without
    one (chunked), the bytes are counted as the app reads them, so a streamed body cannot get past either.
    Nothing is buffered here: an upload streams through to the app's parser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        size = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send, limit)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        # Connection: close, since the rest of an oversized body is never read.
        response = problem(413, f"request body larger than {limit} bytes (max_body_bytes; uploads: "
                                f"upload_max_bytes)", headers={"Connection": "close"})
        await response(scope, receive, send)


class RateLimit:
    """429 + Retry-After on the sampling endpoints once a client spends its bucket. A client is its API key
    when it presents a valid one (so clients behind one proxy can be told apart), else its address.
    Runs on the event loop thread only, so the buckets need no lock."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.buckets = TokenBuckets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = get_settings()
        label = runs_model(scope["path"]) if scope["type"] == "http" else None
        if label is None or settings.sample_rate_per_s <= 0:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.client(scope), settings.sample_rate_per_s, max(1, settings.sample_burst))
        if wait > 0:
            # Labelled by prefix, not path: arbitrary paths must not create new time series.
            RATE_LIMITED.labels(label).inc()
            retry = max(1, math.ceil(wait))
            response = problem(429, f"rate limit: {settings.sample_rate_per_s:g} requests/s per client "
                                    f"(burst {settings.sample_burst}); retry in {retry} s",
                               headers={"Retry-After": str(retry)})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def client(scope: Scope) -> str:
        keys = scope_keys(scope)
        if credentials_valid(keys):
            return "key:" + key_hash(keys[0])
        host = scope.get("client") or ("unknown", 0)
        return "ip:" + str(host[0])
