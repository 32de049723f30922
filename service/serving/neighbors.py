"""Nearest training images in pixel space, as in the paper's Figure 2 (the model does not just memorize).

argmin_j ||s - x_j||^2 = argmin_j (||x_j||^2 - 2 s.x_j): one float32 matrix product per chunk of the training
set against all samples at once, with ||x_j||^2 computed once per dataset. The winners' distances are then
recomputed exactly (float64, direct differences), so the reported numbers do not carry the expansion's
cancellation error.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from models import datasets
from service.errors import Unavailable
from service.settings import get_settings

# Training sets (float32) and their squared norms, least recently used first, bounded by
# settings.neighbors_cache_bytes. _lock guards the dict only; a load holds its dataset's own lock, so one
# dataset loading (seconds) does not stall searches of another.
_norms: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_lock = threading.Lock()
_loading: dict[str, threading.Lock] = {}


@dataclass(frozen=True)
class Neighbors:
    index: np.ndarray  # (n,) int64 rows of the training split
    distance: np.ndarray  # (n,) float64 squared Euclidean distances
    images: np.ndarray  # (n, D) float32 training images


def _cached(dataset: str) -> tuple[np.ndarray, np.ndarray] | None:
    with _lock:
        found = _norms.get(dataset)
        if found is not None:
            _norms.move_to_end(dataset)
        return found


def cached_bytes() -> int:
    with _lock:
        return sum(train.nbytes + sq.nbytes for train, sq in _norms.values())


def training_set(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(train (N, D) float32, ||x||^2 (N,) float32), loaded once per process while it stays cached."""
    cached = _cached(dataset)
    if cached is not None:
        return cached
    with _lock:
        loading = _loading.setdefault(dataset, threading.Lock())
    with loading:
        cached = _cached(dataset)
        if cached is not None:
            return cached
        try:
            train = datasets.load(dataset, get_settings().resolved_data_dir).train
        except datasets.DatasetError as exc:
            # The request is fine; this server lacks the data. 503 says "not here, not now".
            raise Unavailable(f"neighbors=true needs the {dataset!r} training set on the server: {exc}") from exc
        sq = np.einsum("ij,ij->i", train, train, dtype=np.float32)
        cached = (train, sq)
        with _lock:
            _norms[dataset] = cached
            _evict(get_settings().neighbors_cache_bytes)
    return cached


def _evict(limit: int) -> None:
    """Forget the least recently used sets beyond `limit` bytes, always keeping the newest (in use)."""
    total = sum(train.nbytes + sq.nbytes for train, sq in _norms.values())
    while len(_norms) > 1 and total > limit:
        _, (train, sq) = _norms.popitem(last=False)
        total -= train.nbytes + sq.nbytes


def training_rows(dataset: str) -> int:
    """Rows a nearest-image search goes through, without loading the data: the loaded set's, else the
    declared count, else the most an upload may hold."""
    cached = _cached(dataset)
    if cached is not None:
        return len(cached[0])
    spec = datasets.DATASETS.get(dataset)
    if spec is not None and spec.counts is not None:
        return spec.counts[0]
    return get_settings().upload_max_files


def nearest(samples: np.ndarray, dataset: str) -> Neighbors:
    """For each (n, D) sample in [0, 1], the closest training image by squared Euclidean distance."""
    train, sq = training_set(dataset)
    s = np.ascontiguousarray(samples, dtype=np.float32).reshape(len(samples), -1)
    if s.shape[1] != train.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} pixels, {dataset} images {train.shape[1]}")
    chunk = max(1, get_settings().neighbors_chunk_rows)
    best = np.full(len(s), np.inf, dtype=np.float32)
    index = np.zeros(len(s), dtype=np.int64)
    for start in range(0, len(train), chunk):
        block = train[start:start + chunk]
        # ||s||^2 is the same for every j: left out of the argmin.
        partial = sq[start:start + chunk][None, :] - 2.0 * (s @ block.T)
        j = np.argmin(partial, axis=1)
        value = partial[np.arange(len(s)), j]
        better = value < best  # strict: ties keep the earlier (lower) index, deterministically
        best[better] = value[better]
        index[better] = j[better] + start
    images = train[index]
    diff = s.astype(np.float64) - images.astype(np.float64)
    return Neighbors(index, np.einsum("ij,ij->i", diff, diff), images)
