"""What POST /encode does: an image -> the model's shape and colour -> E(x) -> z, and G(z) beside it.

The image is read with the rules of dataset uploads (service/datasets/uploads.py: PNG or JPEG by content,
the pixel limit checked before decoding, EXIF rotation, grayscale or RGB as the model's channels, a centre crop
to the model's aspect and a Lanczos resize). E runs on the request's thread pool; the reconstruction goes
through the model's micro-batcher like any sample.
"""

from __future__ import annotations

import numpy as np
from anyio import to_thread
from PIL import Image, ImageOps

from service.datasets.uploads import UploadOptions, decode_image
from service.errors import Conflict, InvalidParameter
from service.serving import images, labels
from service.serving.generate import admitted, model_for
from service.serving.registry import LoadedModel
from service.settings import get_settings
from service.versions import refs


def to_model_image(raw: bytes, image_shape: tuple[int, int, int]) -> np.ndarray:
    """(1, C*H*W) float32 in [0, 1], CHW like the training data; 422 naming `image` if it is not one."""
    c, h, w = image_shape
    options = UploadOptions(size=h if h == w else None, color="grayscale" if c == 1 else "rgb")
    try:
        pixels = decode_image("image", raw, options, get_settings())          # (H, W, C) uint8
    except InvalidParameter as exc:
        raise InvalidParameter("image", exc.message + " (a PNG or JPEG file is needed)") from None
    if pixels.shape[:2] != (h, w):
        fitted = ImageOps.fit(Image.fromarray(pixels.squeeze(-1) if c == 1 else pixels), (w, h),
                              Image.Resampling.LANCZOS)
        pixels = np.asarray(fitted, dtype=np.uint8).reshape(h, w, c)
    return (pixels.transpose(2, 0, 1).reshape(1, -1).astype(np.float32) / np.float32(255.0))


async def encode(name: str, version: str | int | None, raw: bytes, label: str | None,
                 client: str | None = None) -> dict[str, object]:
    version = refs.parse("version", version)
    model = await model_for(name, version)
    info = model.info
    if model.encoder is None:
        raise Conflict(f"model {info.name!r} version {info.version} has no encoder; train a version with one: "
                       f"POST /jobs with \"encoder\": true (GET /models shows which versions have one)")
    asked = labels.parse("label", label, info)
    if info.label_names and asked is None:
        raise InvalidParameter("label", f"model {info.name!r} is conditional: E needs the image's class, "
                                        f"{labels.allowed(info)}")
    shape = info.image_shape
    # Charged like two samples: E reads one image and G makes one; the answer carries both as PNGs and z.
    with admitted(client, info, "image", 2, "json"):
        x = await to_thread.run_sync(to_model_image, raw, shape)
        c = None if asked is None else labels.one_hot(np.asarray([int(asked)]), len(info.label_names))
        z = await to_thread.run_sync(run_encoder, model, x, c)
        recon = await model.respond(labels.with_classes(z, c), lambda out: images.png_data_urls(out, shape))
    return {"model": info.name, "version": info.version,
            "label": None if asked is None else info.label_names[int(asked)], "z": z[0].tolist(),
            "image": images.png_data_urls(x, shape)[0], "reconstruction": recon[0]}


def run_encoder(model: LoadedModel, x: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    return np.asarray(model.encode(x, c), dtype=np.float32)


__all__ = ["encode", "to_model_image"]
