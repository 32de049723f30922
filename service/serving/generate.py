"""What /samples and /interpolate do: validate, find the model, run it micro-batched, render the format.

Rendering happens right after inference, off the event loop (service/serving/batching.py picks the thread).
A response is a pure function of (model version, its artifact's sha256, the request's parameters), hence the
ETag and, when the version is pinned, an immutable Cache-Control. The answer is plain data (`Generated`);
the route turns it into an HTTP response.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from anyio import to_thread

from service.errors import InvalidParameter
from service.serving import admission, images, labels, neighbors, points
from service.serving.noise import (
    METHODS,
    allowed_latent,
    check_seed,
    interpolate,
    new_seed,
    parse_latent,
    sample_noise,
)
from service.serving.registry import LoadedModel, VersionInfo, registry
from service.settings import get_settings
from service.versions import refs
from service.versions.refs import VersionRef

SAMPLE_FORMATS = {"png": "image/png", "json": "application/json", "npy": "application/x-npy"}
INTERPOLATE_FORMATS = {"png": "image/png", "gif": "image/gif", "json": "application/json"}
IMMUTABLE = "public, max-age=31536000, immutable"
LOOP_NOISE_ROWS = 256
Rendered = tuple[bytes, str]


@dataclass(frozen=True)
class Generated:
    """One answer of /samples or /interpolate: 200 with the rendered body, or 304 when the ETag matched."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    media_type: str | None = None


def check_choice(field: str, value: str, allowed: Any) -> str:
    if value not in allowed:
        raise InvalidParameter(field, f"must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_range(field: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidParameter(field, f"must be an integer in {low}..{high}; got {value}")
    return value


async def model_for(name: str, version: VersionRef) -> LoadedModel:
    """The fast path is a dict lookup; a miss (first use, unknown name, an alias) goes to the database off
    the loop."""
    model = None if isinstance(version, str) else registry.cached(name, version)
    return model if model is not None else await to_thread.run_sync(registry.get, name, version)


# json.dumps builds a new encoder on every call that passes `default`; this one is built once.
_ETAG_JSON = json.JSONEncoder(default=str).encode


def etag_of(info: VersionInfo, *parts: Any) -> str:
    text = _ETAG_JSON([info.name, info.version, info.artifact_sha256, *parts])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match list (or *)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def respond(model: LoadedModel, z: np.ndarray, render: Callable[[np.ndarray], Rendered],
                  headers: dict[str, str], cheap: bool) -> Generated:
    body, media_type = await model.respond(z, render, cheap)
    return Generated(200, headers, body, media_type)


async def samples(name: str, n: int, seed: int | None, version: str | int | None, fmt: str, with_neighbors: bool,
                  if_none_match: str | None = None, client: str | None = None,
                  label: str | None = None) -> Generated:
    check_range("n", n, 1, get_settings().max_samples)
    check_choice("format", fmt, SAMPLE_FORMATS)
    version = refs.parse("version", version)
    if seed is not None:
        check_seed("seed", seed)
    model = await model_for(name, version)
    info = model.info
    points.check_format(info, fmt, "samples")  # toys: points, not images (service/serving/points.py)
    asked = labels.parse("label", label, info, with_all=True)
    rows = n * len(info.label_names) if asked == labels.ALL else n
    if rows > get_settings().max_samples:
        raise InvalidParameter("n", f"with label=all, n is per class: n x {len(info.label_names)} classes must be "
                                    f"at most {get_settings().max_samples}; got {n}")
    chosen = seed if seed is not None else new_seed()
    headers = {"X-Seed": str(chosen), "X-Model-Version": str(info.version),
               "ETag": etag_of(info, "samples", chosen, n, fmt, with_neighbors, *([asked] if label else [])),
               "Cache-Control": cache_control(version, seed is not None)}
    if matches(if_none_match, headers["ETag"]):
        return Generated(304, headers)
    with admitted(client, info, "n", rows, fmt, with_neighbors):
        # Drawing 1024 x 100 numbers takes a millisecond: large draws leave the event loop.
        z = sample_noise(info, n, chosen) if n <= LOOP_NOISE_ROWS else \
            await to_thread.run_sync(sample_noise, info, n, chosen)
        classes = sample_classes(info, asked, n, chosen)
        if asked == labels.ALL:
            z = np.tile(z, (len(info.label_names), 1))               # row k of the grid: class k, the same n z's
        c = None if classes is None else labels.one_hot(classes, len(info.label_names))
        columns = n if asked == labels.ALL else None
        return await respond(model, labels.with_classes(z, c),
                             lambda x: render_samples(info, chosen, z, x, fmt, with_neighbors, classes, columns),
                             headers, cheap=fmt != "json" and not with_neighbors)


# Bytes per output value of each format, generously: float32 arrays; PNGs at worst uncompressed bytes; JSON
# carries base64 PNGs (4/3) and z as text (~20 bytes a number).
_BYTES_PER_VALUE = {"npy": 4.0, "png": 1.1, "json": 1.5, "gif": 1.1}


def response_bytes(fmt: str, n: int, values: int, latent_dim: int, with_neighbors: bool = False) -> int:
    """An upper estimate of a response's size, checked against max_response_bytes before any work."""
    size = n * values * _BYTES_PER_VALUE[fmt] * (2 if with_neighbors else 1)
    return int(size + (n * latent_dim * 20 if fmt == "json" else 0) + 1024)


@contextmanager
def admitted(client: str | None, info: VersionInfo, field: str, rows: int, fmt: str,
             with_neighbors: bool = False) -> Iterator[None]:
    """The one admission of every request that runs a model for `rows` outputs (/samples, /interpolate,
    /encode, /v2 infer): the response's size first (a 422 naming `field`), then its cost, rows x output values
    (+ rows x training rows searched for neighbours), against the client's bucket and the global render bound
    (429 / 503), held while the block runs."""
    values = math.prod(info.image_shape)
    admission.check_response_size(field, response_bytes(fmt, rows, values, info.latent_dim, with_neighbors))
    training_rows = neighbors.training_rows(info.dataset) if with_neighbors else 0
    with admission.admission.admit(client, admission.cost(rows, values, training_rows)):
        yield


def sample_classes(info: VersionInfo, asked: int | str | None, n: int, seed: int) -> np.ndarray | None:
    """Each sample's class: the asked one, every class for n rows each (all), or uniform from the seed; None
    for an unconditional model."""
    count = len(info.label_names)
    if not count:
        return None
    if asked == labels.ALL:
        return np.repeat(np.arange(count), n)
    if asked is None:
        return labels.uniform_classes(seed, n, count)
    return np.full(n, int(asked))


def cache_control(version: VersionRef, seeded: bool) -> str:
    if not seeded:
        return "no-store"  # a fresh random draw: nothing to reuse
    # A version number + seed never change; the latest or an alias may move: revalidate by ETag.
    return IMMUTABLE if refs.is_pinned(version) else "no-cache"


def render_samples(info: VersionInfo, seed: int, z: np.ndarray, x: np.ndarray, fmt: str,
                   with_neighbors: bool, classes: np.ndarray | None = None, columns: int | None = None) -> Rendered:
    found = neighbors.nearest(x, info.dataset) if with_neighbors else None
    if fmt == "png" and found is None:
        return images.grid_png(x, info.image_shape, columns), SAMPLE_FORMATS["png"]
    if fmt == "png" and found is not None:
        # Figure 2 as two grids: the samples, then in the same cell of the right grid the nearest training image.
        columns = columns or images.grid_columns(len(x))
        left = images.tile(images.to_uint8(x, info.image_shape), columns)
        right = images.tile(images.to_uint8(found.images, info.image_shape), columns)
        return images.encode_png(images.side_by_side(left, right)), SAMPLE_FORMATS["png"]
    c, h, w = info.image_shape
    if fmt == "npy":
        array = x.reshape(len(x), c, h, w)
        if found is not None:  # (n, 2, C, H, W): [:, 0] the samples, [:, 1] their nearest training images
            array = np.stack([array, found.images.reshape(len(x), c, h, w)], axis=1)
        out = io.BytesIO()
        np.save(out, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        return out.getvalue(), SAMPLE_FORMATS["npy"]
    body: dict[str, Any] = {
        "model": info.name, "version": info.version, "seed": seed, "n": len(x), "image_shape": [c, h, w],
        "latent_dim": info.latent_dim, "noise": info.noise, "z": z.tolist()}
    if classes is not None:
        body["labels"] = labels.names_of(info, classes)
    if points.is_points(info):  # a toy: the points themselves, and each sample's nearest training point
        body["points"] = points.points(x)
        if found is not None:
            body["neighbors"] = [{"index": int(i), "distance": float(d), "point": p} for i, d, p in
                                 zip(found.index, found.distance, points.points(found.images), strict=True)]
        return json.dumps(body, separators=(",", ":")).encode(), SAMPLE_FORMATS["json"]
    body["images"] = images.png_data_urls(x, info.image_shape)
    if found is not None:
        urls = images.png_data_urls(found.images, info.image_shape)
        body["neighbors"] = [{"index": int(i), "distance": float(d), "image": u}
                             for i, d, u in zip(found.index, found.distance, urls, strict=True)]
    return json.dumps(body, separators=(",", ":")).encode(), SAMPLE_FORMATS["json"]


async def interpolation(name: str, z0: str, z1: str | None, steps: int, version: str | int | None, method: str,
                        fmt: str, if_none_match: str | None = None, client: str | None = None,
                        label: str | None = None, label0: str | None = None, label1: str | None = None) -> Generated:
    check_range("steps", steps, 2, get_settings().max_interpolation_steps)
    check_choice("method", method, METHODS)
    check_choice("format", fmt, INTERPOLATE_FORMATS)
    version = refs.parse("version", version)
    model = await model_for(name, version)
    info = model.info
    points.check_format(info, fmt, "interpolate")
    ends = class_ends(info, label, label0, label1)
    if z1 is None and (ends is None or ends[0] == ends[1]):
        raise InvalidParameter("z1", f"required: {allowed_latent(info)}; it may be left out only for a path in c "
                                     f"alone (label0 and label1 on a conditional model)")
    start, seed0 = parse_latent("z0", z0, info)
    end, seed1 = parse_latent("z1", z1, info) if z1 is not None else (start, seed0)
    path = interpolate(start, end, steps, method)
    c_path = None if ends is None else labels.class_path(*ends, steps, len(info.label_names))
    headers = {"X-Model-Version": str(info.version),
               "ETag": etag_of(info, "interpolate", start.tobytes().hex(), end.tobytes().hex(), steps,
                               method, fmt, *(list(ends) if ends else [])),
               "Cache-Control": cache_control(version, seeded=True)}
    if matches(if_none_match, headers["ETag"]):
        return Generated(304, headers)
    meta = {"model": info.name, "version": info.version, "method": method, "steps": steps,
            "z0_seed": seed0, "z1_seed": seed1, "image_shape": list(info.image_shape),
            **({"label0": info.label_names[ends[0]], "label1": info.label_names[ends[1]]} if ends else {})}
    with admitted(client, info, "steps", steps, fmt):
        return await respond(model, labels.with_classes(path, c_path),
                             lambda x: render_interpolation(info, meta, path, x, fmt), headers, cheap=fmt == "png")


def class_ends(info: VersionInfo, label: str | None, label0: str | None,
               label1: str | None) -> tuple[int, int] | None:
    """The classes at the path's ends: `label` at both, or label0 -> label1; None for an unconditional model."""
    fixed, first, last = (labels.parse(f, v, info) for f, v in
                          (("label", label), ("label0", label0), ("label1", label1)))
    if not info.label_names:
        return None
    if fixed is not None and (first is not None or last is not None):
        raise InvalidParameter("label", "give label (the class along the whole path) or label0 and label1 (the "
                                        "class moves between them), not both")
    if fixed is not None:
        return int(fixed), int(fixed)
    if first is None or last is None:
        missing = "label" if first is None and last is None else "label1" if last is None else "label0"
        raise InvalidParameter(missing, f"model {info.name!r} is conditional: give label, or label0 and label1, "
                                        f"each {labels.allowed(info)}")
    return int(first), int(last)


def render_interpolation(info: VersionInfo, meta: dict[str, Any], path: np.ndarray, x: np.ndarray,
                         fmt: str) -> Rendered:
    if fmt == "png":  # one row, z0 on the left, as in Figure 3
        strip = images.tile(images.to_uint8(x, info.image_shape), columns=len(x))
        return images.encode_png(strip), INTERPOLATE_FORMATS["png"]
    if fmt == "gif":
        return images.animated_gif(x, info.image_shape), INTERPOLATE_FORMATS["gif"]
    body = {**meta, "t": np.linspace(0.0, 1.0, len(path)).tolist(), "z": path.tolist()}
    if points.is_points(info):
        body["points"] = points.points(x)
    else:
        body["images"] = images.png_data_urls(x, info.image_shape)
    return json.dumps(body, separators=(",", ":")).encode(), INTERPOLATE_FORMATS["json"]
