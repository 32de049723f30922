"""/samples and /interpolate: generated images, reproducible from a seed. The work is in
service/serving/generate.py.

These are the hot routes, so FastAPI does as little as possible for them: the query is one pydantic model
parsed once per request (service/api/query.py: FastAPI's per-parameter Query() handling was the largest
framework cost), and the endpoints are RequestRoutes, called with the Request as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from service.api import query
from service.serving import generate
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


class SamplesQuery(BaseModel):
    model: str = Field(description="model name, see GET /models")
    n: int = Field(default=64, description="number of samples, 1..1024")
    seed: int | None = Field(default=None, description="0..2^63-1; default: chosen and returned in X-Seed")
    version: VersionParam | None = Field(default=None, description=VERSION_HELP)
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
    version: VersionParam | None = Field(default=None, description=VERSION_HELP)
    method: str = Field(default="lerp", description="lerp (straight line, Figure 3) or slerp")
    fmt: str = Field(default="png", alias="format", description="png (one strip), gif (animated), json (z and "
                                                                "per-frame PNG data URLs)")


@router.get("/samples", response_class=Response, responses={200: {"content": _SAMPLE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(SamplesQuery, _IF_NONE_MATCH))
async def samples(request: Request) -> Response:
    """`n` samples of a model version. Same version + seed + n + format → the same bytes."""
    q = query.parse(SamplesQuery, request)
    return _response(await generate.samples(q.model, q.n, q.seed, q.version, q.fmt, q.neighbors,
                                            request.headers.get("if-none-match")))


@router.get("/interpolate", response_class=Response, responses={200: {"content": _INTERPOLATE_MEDIA}, 304: {}},
            openapi_extra=query.openapi(InterpolateQuery, _IF_NONE_MATCH))
async def interpolate(request: Request) -> Response:
    """Images along a path in z space from z0 to z1; the end frames are exactly those of z0 and z1."""
    q = query.parse(InterpolateQuery, request)
    return _response(await generate.interpolation(q.model, q.z0, q.z1, q.steps, q.version, q.method, q.fmt,
                                                  request.headers.get("if-none-match")))


def _response(result: generate.Generated) -> Response:
    return Response(result.body, result.status, result.headers, result.media_type)
