"""The gallery page: static HTML, CSS and ES modules from service/static, no build step, no CDN.

`/` is the page itself (deep links like `/?model=mnist&version=2&seed=123` are read by app.js);
`/static/…` holds its assets. Mounted after the API routers so no API path is shadowed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from models.config import PRESETS
from models.datasets.toys import TOYS
from service.api.auth import READ_COOKIE, scope_keys
from service.api.deps import ApiKey, SettingsDep
from service.datasets import store

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    # no-cache: a redeploy's new page (and its asset list) is revalidated rather than served stale.
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@router.get("/gallery/options", tags=["gallery"])
def options(settings: SettingsDep) -> dict[str, object]:
    """What the training form offers: each preset's dataset, iteration budget and k, and the datasets; what
    the sample plots need: each toy's definition and the request limits."""
    presets = {name: {"dataset": c.dataset, "iterations": c.iterations, "k": c.k} for name, c in PRESETS.items()}
    # Uploads too; kind and shape label the picker's entries.
    info = {d["name"]: {"kind": d["kind"], "image_shape": d["image_shape"]} for d in store.list_all()}
    # A toy's p_data is this equal-weight mixture of isotropic Gaussians: the page draws it exactly, beside
    # G's points, instead of an estimate from training points no endpoint serves.
    toys = {name: {"dim": toy.dim, "means": [list(m) for m in toy.means], "std": toy.std,
                   "description": toy.description} for name, toy in TOYS.items()}
    limits = {"max_samples": settings.max_samples, "max_interpolation_steps": settings.max_interpolation_steps}
    return {"presets": presets, "datasets": list(info), "dataset_info": info, "toys": toys, "limits": limits}


# How long the gallery's read cookie lives; the key form sets it again on the next visit.
KEY_COOKIE_MAX_AGE_S = 12 * 3600


@router.post("/gallery/key", status_code=204, tags=["gallery"])
def set_read_cookie(_: ApiKey, request: Request) -> Response:
    """The gallery's key form: the key (checked) is stored in an HttpOnly, SameSite=Strict cookie that
    read-keyed servers accept for reads (the page, its images and its event streams send no header)."""
    response = Response(status_code=204)
    response.set_cookie(READ_COOKIE, scope_keys(request.scope)[0], max_age=KEY_COOKIE_MAX_AGE_S, path="/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.delete("/gallery/key", status_code=204, tags=["gallery"])
def clear_read_cookie() -> Response:
    """Forget the gallery's read cookie (the key form was emptied)."""
    response = Response(status_code=204)
    response.delete_cookie(READ_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def mount(app: FastAPI) -> None:
    """Serve /static; call after every API router is included."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
