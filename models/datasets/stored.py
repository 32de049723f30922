"""Datasets stored as one array file (uploads): the format, and how the registry reaches them.

Format: an .npz (a zip of .npy files, written with fixed timestamps so equal arrays give equal bytes) with
`train`, `valid`, `test` as uint8 (N, C, H, W) and `image_shape` as int64 (3,); a labelled upload adds
`train_labels`, `valid_labels`, `test_labels` as int64 (N,) class indices. Its sha256 names the dataset
version; it is what a model version records.

Reaching them: models/ must not import the web layer or the database, so the registry asks registered
*sources* (see `DatasetSource`) for names it does not define itself. service/dataset_store.py registers one
backed by PostgreSQL when it is imported (the API and the worker entry points import it); its `read()` fetches
the verified bytes, so a worker on any machine trains on exactly the uploaded array.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.datasets.base import DatasetError, Splits, sha256_hex, to_unit_float

SPLITS = ("train", "valid", "test")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: no wall clock in the bytes


@dataclass(frozen=True)
class StoredRef:
    """A stored dataset as a source describes it; `read()` returns its bytes (sha256-verified)."""

    name: str
    sha256: str
    image_shape: tuple[int, ...]
    read: Callable[[], bytes]
    kind: str = "upload"
    label_names: tuple[str, ...] = ()  # an upload with one folder per class: the folder names


class DatasetSource(Protocol):
    """Where datasets that are not defined in code live (e.g. the uploads table in PostgreSQL)."""

    def names(self) -> list[str]: ...

    def lookup(self, name: str) -> StoredRef | None: ...


def encode(parts: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None = None) -> bytes:
    """uint8 (N, C, H, W) arrays for train/valid/test (same C, H, W), and optionally their int64 (N,) class
    labels -> deterministic .npz bytes."""
    shapes = {tuple(parts[s].shape[1:]) for s in SPLITS}
    if len(shapes) != 1 or any(parts[s].dtype != np.uint8 or parts[s].ndim != 4 for s in SPLITS):
        raise DatasetError(f"stored splits must be uint8 (N, C, H, W) of one shape, got "
                           f"{[(parts[s].dtype, parts[s].shape) for s in SPLITS]}")
    members = {**{s: np.ascontiguousarray(parts[s]) for s in SPLITS},
               "image_shape": np.asarray(shapes.pop(), dtype=np.int64)}
    if labels is not None:
        if any(len(labels[s]) != len(parts[s]) for s in SPLITS):
            raise DatasetError("stored labels must have one entry per image of each split")
        members.update({f"{s}_labels": np.asarray(labels[s], dtype=np.int64) for s in SPLITS})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for key, arr in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    return out.getvalue()


def decode_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The uint8 splits of encode()'s bytes, checked."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in (*SPLITS, "image_shape")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"not a stored dataset array ({type(exc).__name__}: {exc})") from exc
    shape = tuple(int(v) for v in arrays["image_shape"])
    for s in SPLITS:
        if arrays[s].dtype != np.uint8 or arrays[s].shape[1:] != shape:
            raise DatasetError(f"stored split {s!r} is {arrays[s].dtype} {arrays[s].shape}, expected uint8 "
                               f"(N, {', '.join(map(str, shape))})")
    return arrays


def decode_labels(data: bytes) -> dict[str, np.ndarray]:
    """The int64 class labels per split of a labelled stored dataset; {} when it has none."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if "train_labels" not in npz.files:
                return {}
            return {s: npz[f"{s}_labels"] for s in SPLITS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"not a stored dataset array ({type(exc).__name__}: {exc})") from exc


def decode(data: bytes, name: str, sha256: str | None = None, kind: str = "upload") -> Splits:
    """Splits (float32 (N, D) in [0, 1], read-only) of a stored dataset; verifies sha256 when given."""
    actual = sha256_hex(data)
    if sha256 is not None and actual != sha256:
        raise DatasetError(f"dataset {name!r}: stored bytes have sha256 {actual}, expected {sha256}")
    arrays = decode_arrays(data)
    parts = {s: to_unit_float(arrays[s]) if len(arrays[s]) else None for s in SPLITS}
    train = parts["train"]
    if train is None:
        raise DatasetError(f"dataset {name!r} has no training images")
    shape = tuple(int(v) for v in arrays["image_shape"])
    return Splits(name, train, parts["valid"], parts["test"], shape, actual, kind)


__all__ = ["SPLITS", "DatasetSource", "StoredRef", "decode", "decode_arrays", "decode_labels", "encode"]
