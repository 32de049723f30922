"""/samples and /interpolate: generated images, reproducible from a seed. The work is in service.generate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Response

from service import generate

router = APIRouter(tags=["sampling"])

_SAMPLE_MEDIA: dict[str, Any] = {media: {} for media in generate.SAMPLE_FORMATS.values()}
_INTERPOLATE_MEDIA: dict[str, Any] = {media: {} for media in generate.INTERPOLATE_FORMATS.values()}


@router.get("/samples", response_class=Response, responses={200: {"content": _SAMPLE_MEDIA}, 304: {}})
async def samples(
        model: str = Query(description="model name, see GET /models"),
        n: int = Query(default=64, description="number of samples, 1..1024"),
        seed: int | None = Query(default=None, description="0..2^63-1; default: chosen and returned in X-Seed"),
        version: int | None = Query(default=None, description="default: the latest"),
        fmt: str = Query(default="png", alias="format", description="png (a grid), json (z, per-image PNG data URLs), "
                                                       "npy (float32 (n, C, H, W))"),
        neighbors: bool = Query(default=False, description="also the nearest training image of each sample "
                                                           "(Figure 2): png shows the samples' grid and, "
                                                           "right of it, the neighbours in the same cells; "
                                                           "json adds index and squared distance; npy "
                                                           "becomes (n, 2, C, H, W)"),
        if_none_match: str | None = Header(default=None)) -> Response:
    """`n` samples of a model version. Same version + seed + n + format → the same bytes."""
    return await generate.samples(model, n, seed, version, fmt, neighbors, if_none_match)


@router.get("/interpolate", response_class=Response, responses={200: {"content": _INTERPOLATE_MEDIA}, 304: {}})
async def interpolate(
        model: str = Query(description="model name, see GET /models"),
        z0: str = Query(description="an integer seed (the first z of /samples?seed=…) or comma-separated "
                                    "floats, as many as the model's latent size"),
        z1: str = Query(description="like z0"),
        steps: int = Query(default=10, description="frames including both ends, 2..64"),
        version: int | None = Query(default=None, description="default: the latest"),
        method: str = Query(default="lerp", description="lerp (straight line, Figure 3) or slerp"),
        fmt: str = Query(default="png", alias="format", description="png (one strip), gif (animated), json (z and "
                                                       "per-frame PNG data URLs)"),
        if_none_match: str | None = Header(default=None)) -> Response:
    """Images along a path in z space from z0 to z1; the end frames are exactly those of z0 and z1."""
    return await generate.interpolation(model, z0, z1, steps, version, method, fmt, if_none_match)
