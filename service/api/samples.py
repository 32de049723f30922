"""/samples and /interpolate: generated images, reproducible from a seed. The work is in service.generate.

The parameters are pydantic models parsed once per request (service/api/query.py: FastAPI's per-parameter
Query() handling was the largest framework cost of these routes). A successful GET /samples is answered by
SamplesFastPath, in front of FastAPI's routing; the route below stays what answers errors and what OpenAPI
documents.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import query
from service.serving import generate

router = APIRouter(tags=["sampling"])
# A request SamplesFastPath could not answer carries its exception here to the route, which raises it.
FAST_PATH_ERROR = "ganserve.samples_error"

_SAMPLE_MEDIA: dict[str, Any] = {media: {} for media in generate.SAMPLE_FORMATS.values()}
_INTERPOLATE_MEDIA: dict[str, Any] = {media: {} for media in generate.INTERPOLATE_FORMATS.values()}
_IF_NONE_MATCH = {"If-None-Match": "ETags of a cached response: 304 when one matches"}


class SamplesQuery(BaseModel):
    model: str = Field(description="model name, see GET /models")
    n: int = Field(default=64, description="number of samples, 1..1024")
    seed: int | None = Field(default=None, description="0..2^63-1; default: chosen and returned in X-Seed")
    version: int | None = Field(default=None, description="default: the latest")
    fmt: str = Field(default="png", alias="format", description="png (a grid), json (z, per-image PNG data URLs), "
                                                                "npy (float32 (n, C, H, W))")
    neighbors: bool = Field(default=False, description="also the nearest training image of each sample "
                                                       "(Figure 2): png shows the samples' grid and, right of "
                                                       "it, the neighbours in the same cells; json adds index "
                                                       "and squared distance; npy becomes (n, 2, C, H, W)")


class InterpolateQuery(BaseModel):
    model: str = Field(description="model name, see GET /models")
    z0: str = Field(description="an integer seed (the first z of /samples?seed=…) or comma-separated floats, as "
                                "many as the model's latent size")
    z1: str = Field(description="like z0")
    steps: int = Field(default=10, description="frames including both ends, 2..64")
    version: int | None = Field(default=None, description="default: the latest")
    method: str = Field(default="lerp", description="lerp (straight line, Figure 3) or slerp")
    fmt: str = Field(default="png", alias="format", description="png (one strip), gif (animated), json (z and "
                                                                "per-frame PNG data URLs)")


@router.get("/samples", response_class=Response, responses={200: {"content": _SAMPLE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(SamplesQuery, _IF_NONE_MATCH))
async def samples(request: Request) -> Response:
    """`n` samples of a model version. Same version + seed + n + format → the same bytes."""
    failed = request.scope.pop(FAST_PATH_ERROR, None)
    if failed is not None:
        raise failed                       # SamplesFastPath already tried: answer its error, do not redo the work
    q = query.parse(SamplesQuery, request)
    return await generate.samples(q.model, q.n, q.seed, q.version, q.fmt, q.neighbors,
                                  request.headers.get("if-none-match"))


@router.get("/interpolate", response_class=Response, responses={200: {"content": _INTERPOLATE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(InterpolateQuery, _IF_NONE_MATCH))
async def interpolate(request: Request) -> Response:
    """Images along a path in z space from z0 to z1; the end frames are exactly those of z0 and z1."""
    q = query.parse(InterpolateQuery, request)
    return await generate.interpolation(q.model, q.z0, q.z1, q.steps, q.version, q.method, q.fmt,
                                        request.headers.get("if-none-match"))


_SAMPLES_ROUTE = next(r for r in router.routes if getattr(r, "path", None) == "/samples")


class SamplesFastPath:
    """GET /samples without the framework's routing: the innermost middleware calls the route's own function,
    skipping FastAPI's exception middleware, route matching, request/exit-stack set-up and dependency solving:
    about a third of the event loop's Python time per request with one client (py-spy, 2026-11-24), and
    everything beyond inference and PNG encoding is what keeps one client from the ceiling.

    Only success is answered here: anything raised before a byte is sent (a refused parameter, an unknown
    model...) goes with the request to the normal route, which raises it at once, so the app's exception
    handlers answer it exactly as they always have (422/404 problem+json) and nothing runs twice. The outer middlewares (request id, log line,
    metrics, limits, key check) run for both, and scope["route"] is the route FastAPI would have chosen, so the
    log line and the latency histogram name it the same way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/samples" \
                or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        try:
            response = await samples(Request(scope, receive))              # the route's own function
        except Exception as exc:  # noqa: BLE001 - the route re-raises it and the app's handlers answer it
            scope[FAST_PATH_ERROR] = exc
            await self.app(scope, receive, send)
            return
        scope["route"] = _SAMPLES_ROUTE
        await response(scope, receive, send)
