"""/samples and /interpolate: generated images, reproducible from a seed. The work is in
service/serving/generate.py.

These are the hot routes, so FastAPI does as little as possible for them: the query is one pydantic model
parsed once per request (service/api/query.py: FastAPI's per-parameter Query() handling was the largest
framework cost), and the endpoints are RequestRoutes, called with the Request as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from service.api import query
from service.api.limits import RateLimit
from service.bounds import MODEL_NAME
from service.serving import generate
from service.serving.noise import MAX_SEED, METHODS
from service.settings import get_settings
from service.versions.refs import VERSION_HELP, VersionParam


class RequestRoute(APIRoute):
    """A route whose endpoint takes the Request and returns a Response, called as is: FastAPI's parameter
    solving has nothing to solve here and would cost every request ~15 µs of event-loop CPU (a 304 costs the
    app ~68 µs of CPU this way, ~84 µs as a plain APIRoute). Matching, exception handlers and the OpenAPI
    entry are an APIRoute's. What routing still costs (~30 µs) is ~1-2 % of an n=64 request and within the
    noise of `ganserve bench serve`, so no middleware answers these paths in front of it."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        solved = self.dependant
        if (solved.dependencies or solved.path_params or solved.query_params or solved.header_params
                or solved.cookie_params or solved.body_params):
            raise TypeError(f"{self.path}: a RequestRoute's endpoint takes the Request alone")
        return self.endpoint


router = APIRouter(tags=["sampling"], route_class=RequestRoute)

_SAMPLE_MEDIA: dict[str, Any] = {media: {} for media in generate.SAMPLE_FORMATS.values()}
_INTERPOLATE_MEDIA: dict[str, Any] = {media: {} for media in generate.INTERPOLATE_FORMATS.values()}
_IF_NONE_MATCH = {"If-None-Match": "ETags of a cached response: 304 when one matches"}


def _documented(**schema: Any) -> Any:
    """Bounds stated in the OpenAPI schema only: service/serving/generate.py and noise.py check them, with
    messages that say what is allowed (a request past them is a 422, or a 404 for a name no model has)."""
    return {"json_schema_extra": schema}


_LIMITS = get_settings()
_FLOAT = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?"
# A seed, or comma-separated finite floats. How many floats (the model's latent size) and a seed's upper
# bound past 19 digits are not expressible here: a request that breaks them is a 422 naming the field.
# uvicorn refuses a request line over 64 KiB with a plain-text 400 before the app sees it (documented on every
# operation, service/api/problems.py); two ASCII latents and the rest of the query stay well under it.
LATENT_MAX_CHARS = 6000
LATENT = rf"^\s*(\d{{1,19}}|{_FLOAT}(\s*,\s*{_FLOAT})*)\s*$"

_LATENT = _documented(pattern=LATENT, maxLength=LATENT_MAX_CHARS)


class SamplesQuery(BaseModel):
    model: str = Field(description="model name, see GET /models", **_documented(pattern=MODEL_NAME))
    n: int = Field(default=64, description=f"number of samples, 1..{_LIMITS.max_samples}",
                   **_documented(minimum=1, maximum=_LIMITS.max_samples))
    seed: int | None = Field(default=None, description="0..2^63-1; default: chosen and returned in X-Seed",
                             **_documented(minimum=0, maximum=MAX_SEED))
    version: VersionParam | None = Field(default=None, description=VERSION_HELP)
    fmt: str = Field(default="png", alias="format", description="png (a grid), json (z, per-image PNG data URLs), "
                                                                "npy (float32 (n, C, H, W))",
                     **_documented(enum=list(generate.SAMPLE_FORMATS)))
    neighbors: bool = Field(default=False, description="also the nearest training image of each sample "
                                                       "(Figure 2): png shows the samples' grid and, right of "
                                                       "it, the neighbours in the same cells; json adds index "
                                                       "and squared distance; npy becomes (n, 2, C, H, W)")
    label: str | None = Field(default=None, max_length=100, description=(
        "conditional models only: the class of every sample, as an index or a name (GET /models: label_names), "
        "or all: one row of n samples per class (the same z's in every row); default: classes drawn uniformly "
        "from the seed"))


class InterpolateQuery(BaseModel):
    model: str = Field(description="model name, see GET /models", **_documented(pattern=MODEL_NAME))
    z0: str = Field(description="an integer seed 0..2^63-1 (the first z of /samples?seed=…) or comma-separated "
                                "finite floats, exactly as many as the model's latent size (else 422)",
                    **_LATENT)
    z1: str | None = Field(default=None, description="like z0; required except for a path in c alone at z0 "
                                                     "(label0 and label1 on a conditional model)", **_LATENT)
    steps: int = Field(default=10, description=f"frames including both ends, 2..{_LIMITS.max_interpolation_steps}",
                       **_documented(minimum=2, maximum=_LIMITS.max_interpolation_steps))
    version: VersionParam | None = Field(default=None, description=VERSION_HELP)
    method: str = Field(default="lerp", description="lerp (straight line, Figure 3) or slerp",
                        **_documented(enum=list(METHODS)))
    fmt: str = Field(default="png", alias="format", description="png (one strip), gif (animated), json (z and "
                                                                "per-frame PNG data URLs)",
                     **_documented(enum=list(generate.INTERPOLATE_FORMATS)))
    label: str | None = Field(default=None, max_length=100, description=(
        "conditional models: the class along the whole path (an index or a name); or give label0 and label1"))
    label0: str | None = Field(default=None, max_length=100, description=(
        "conditional models: the class at z0's end; c moves linearly from its one-hot to label1's"))
    label1: str | None = Field(default=None, max_length=100, description="conditional models: the class at the "
                                                                          "z1 end")


@router.get("/samples", response_class=Response, responses={200: {"content": _SAMPLE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(SamplesQuery, _IF_NONE_MATCH))
async def samples(request: Request) -> Response:
    """`n` samples of a model version. Same version + seed + n + format → the same bytes."""
    q = query.parse(SamplesQuery, request)
    return await _unless_gone(request, generate.samples(q.model, q.n, q.seed, q.version, q.fmt, q.neighbors,
                                                        request.headers.get("if-none-match"),
                                                        RateLimit.client(request.scope), q.label))


@router.get("/interpolate", response_class=Response, responses={200: {"content": _INTERPOLATE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(InterpolateQuery, _IF_NONE_MATCH))
async def interpolate(request: Request) -> Response:
    """Images along a path in z space from z0 to z1; the end frames are exactly those of z0 and z1."""
    q = query.parse(InterpolateQuery, request)
    return await _unless_gone(request, generate.interpolation(q.model, q.z0, q.z1, q.steps, q.version, q.method,
                                                              q.fmt, request.headers.get("if-none-match"),
                                                              RateLimit.client(request.scope), q.label, q.label0,
                                                              q.label1))


# nginx's "client closed request": logged for a request whose client left before its answer.
CLIENT_GONE = 499


async def _unless_gone(request: Request, work: Coroutine[Any, Any, generate.Generated]) -> Response:
    """The work's response, unless the client hangs up first: then the work is cancelled (a request still
    queued for its batch is dropped there, service/serving/batching.py) and its cost budget released."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done() and watcher.done() and watcher.exception() is None:
        task.cancel()
        return Response(status_code=CLIENT_GONE)
    result = await task  # done, or a caller without a receive channel (nothing to watch): serve it
    return Response(result.body, result.status, result.headers, result.media_type)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
