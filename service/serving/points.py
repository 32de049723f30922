"""Toy models generate points, not images: which formats /samples and /interpolate allow for them.

A toy dataset's samples are (n, d) real vectors stored with image_shape (1, 1, d) (see models/datasets/toys.py).
A PNG grid of 1 x d "images" clipped to [0, 1] would be meaningless, so image formats are a 422 naming
`format`; JSON carries the points themselves ("points": [[x1, …, xd], …]) where images carry data URLs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models import datasets
from service.errors import InvalidParameter

POINT_FORMATS = {"samples": ("json", "npy"), "interpolate": ("json",)}


def is_points(info: Any) -> bool:
    """True for a model version trained on a toy dataset (no database access)."""
    return datasets.is_toy(info.dataset)


def check_format(info: Any, fmt: str, endpoint: str) -> None:
    allowed = POINT_FORMATS[endpoint]
    if is_points(info) and fmt not in allowed:
        dim = info.image_shape[-1]
        raise InvalidParameter("format", f"{info.name} v{info.version} was trained on the {dim}-D toy dataset "
                                         f"{info.dataset!r}: its samples are points, not images; use "
                                         f"format={' or format='.join(allowed)}")


def points(x: np.ndarray) -> list[list[float]]:
    """(n, d) samples as JSON-ready lists (float32 values printed as the shortest float64 repr)."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1).tolist()


__all__ = ["check_format", "is_points", "points"]
