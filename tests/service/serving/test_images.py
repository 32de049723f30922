"""The PNG writer and the in-place grid assembly: valid PNGs, the layout of `tile`, deterministic bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.serving import images


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 6)])
@pytest.mark.parametrize("n, columns", [(1, None), (5, None), (64, None), (65, None), (10, 3), (7, 7)])
def test_grid_png_is_the_tiled_mosaic(shape: tuple[int, int, int], n: int, columns: int | None) -> None:
    x = np.random.default_rng(n).uniform(-0.2, 1.2, (n, int(np.prod(shape)))).astype(np.float32)
    tiles = images.to_uint8(x, shape)
    mosaic = images.tile(tiles, columns or images.grid_columns(n))
    png = images.grid_png(x, shape, columns)
    assert png == images.encode_png(mosaic) == images.grid_png(x, shape, columns)
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(decoded.reshape(mosaic.shape), mosaic)
    # Cell (0, 0) holds image 0 after the 2-pixel border; the last image sits in its own cell.
    _, h, w = shape
    assert np.array_equal(mosaic[2:2 + h, 2:2 + w], tiles[0])
    cols = min(columns or images.grid_columns(n), n)
    row, col = divmod(n - 1, cols)
    assert np.array_equal(mosaic[2 + row * (h + 2):2 + row * (h + 2) + h, 2 + col * (w + 2):2 + col * (w + 2) + w],
                          tiles[-1])


def test_to_uint8_clips_and_rounds_half_up() -> None:
    x = np.array([[-1.0, 0.0, 0.5 / 255, 1.0, 7.0, 0.999]], dtype=np.float32)
    assert images.to_uint8(x, (1, 1, 6)).ravel().tolist() == [0, 0, 1, 255, 255, 255]


def test_side_by_side_keeps_both_grids() -> None:
    left = np.zeros((4, 3, 1), np.uint8)
    right = np.full((4, 5, 1), 9, np.uint8)
    joined = images.side_by_side(left, right, gap=2)
    assert joined.shape == (4, 10, 1) and joined[0, 3, 0] == 128 and joined[0, -1, 0] == 9
