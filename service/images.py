"""Sample grids and strips as PNG / GIF bytes, assembled with numpy (no Python loop per image)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """(N, D) or (N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8, C in {1, 3}."""
    c, h, w = image_shape
    x = np.asarray(images, dtype=np.float32).reshape(-1, c, h, w)
    # Round half up after clipping: the same float always maps to the same byte.
    x = np.clip(x, 0.0, 1.0) * 255.0 + 0.5
    return x.astype(np.uint8).transpose(0, 2, 3, 1)


def tile(images: np.ndarray, columns: int, pad: int = 2, fill: int = 0) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) mosaic, blanks filled."""
    n, h, w, c = images.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    cells = np.full((rows * columns, h + pad, w + pad, c), fill, dtype=np.uint8)
    cells[:n, pad:, pad:, :] = images
    # (rows, cols, H+pad, W+pad, C) -> (rows, H+pad, cols, W+pad, C): one reshape, no loop.
    grid = cells.reshape(rows, columns, h + pad, w + pad, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + pad), columns * (w + pad), c)
    return np.pad(grid, ((0, pad), (0, pad), (0, 0)), constant_values=fill)


def grid_columns(n: int) -> int:
    """ceil(sqrt(n)) columns: an 8 x 8 grid for 64 samples."""
    return max(1, math.ceil(math.sqrt(n)))


def encode_png(mosaic: np.ndarray) -> bytes:
    """(H, W, C) uint8 -> PNG bytes; grayscale when C == 1. Deterministic for equal input."""
    mode = "L" if mosaic.shape[2] == 1 else "RGB"
    image = Image.fromarray(mosaic[:, :, 0] if mode == "L" else mosaic, mode=mode)
    out = io.BytesIO()
    # Level 1 keeps encoding cheap: MNIST grids are mostly black and compress well anyway.
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def grid_png(images: np.ndarray, image_shape: tuple[int, ...], columns: int | None = None) -> bytes:
    """The standard sample grid: ceil(sqrt(n)) columns unless given."""
    tiles = to_uint8(images, image_shape)
    return encode_png(tile(tiles, columns or grid_columns(len(tiles))))


def animated_gif(images: np.ndarray, image_shape: tuple[int, ...], scale: int = 4,
                 frame_ms: int = 120) -> bytes:
    """One frame per image, enlarged `scale` times, looping back and forth (ping-pong)."""
    frames = to_uint8(images, image_shape)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    mode = "L" if frames.shape[3] == 1 else "RGB"
    pil = [Image.fromarray(frames[i, :, :, 0] if mode == "L" else frames[i], mode=mode) for i in order]
    out = io.BytesIO()
    pil[0].save(out, format="GIF", save_all=True, append_images=pil[1:], duration=frame_ms, loop=0)
    return out.getvalue()
