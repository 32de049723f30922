"""/samples: a grid of generated images from a model version, reproducible from its seed."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from service.images import grid_png
from service.inference import MAX_SEED, new_seed, registry, sample_noise
from service.settings import get_settings

router = APIRouter(tags=["sampling"])


@router.get("/samples", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def samples(model: str = Query(description="model name, see GET /models"),
            n: int = Query(default=64, ge=1, le=1024, description="number of samples, 1..1024"),
            seed: int | None = Query(default=None, ge=0, le=MAX_SEED, description="default: chosen and returned"),
            version: int | None = Query(default=None, ge=1, description="default: the latest")) -> Response:
    """A PNG grid of `n` samples, ceil(sqrt(n)) columns. Same version + seed + n → the same bytes."""
    n = min(n, get_settings().max_samples)
    loaded = registry.get(model, version)
    chosen = seed if seed is not None else new_seed()
    images = loaded.run(sample_noise(loaded.info, n, chosen))
    png = grid_png(images, loaded.info.image_shape)
    headers = {"X-Seed": str(chosen), "X-Model-Version": str(loaded.info.version)}
    return Response(png, media_type="image/png", headers=headers)
