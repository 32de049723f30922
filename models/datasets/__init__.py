"""Training data: the dataset registry, its loaders, and the paper's splits.

Numpy only (no torch, no web layer): the API imports this module to validate requests. Downloading lives in
models/datasets/download.py. Every dataset is pinned by a sha256 (`Splits.sha256`), so a model version records exactly
which data it was trained on.

Three kinds:
- builtin: files pinned by the sha256 of their content — MNIST and Fashion-MNIST (models/datasets/idx.py),
  CIFAR-10 (models/datasets/cifar.py) — found in data_dir / name (or a system folder) and fetched if asked;
- toy: points generated from a fixed seed (models/datasets/toys.py), image_shape (1, 1, d);
- upload: arrays stored outside the code (models/datasets/stored.py), reached through registered sources.
  service/dataset_store.py registers the PostgreSQL-backed source when imported; without it, only the code's
  datasets exist.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.datasets import stored, toys
from models.datasets.base import (
    GZIP_MAGIC,
    KINDS,
    Arrays,
    DatasetError,
    DatasetSpec,
    DatasetUnavailable,
    Splits,
    UnknownDataset,
    folder_of,
    read_payload,
    sha256_hex,
    unavailable_message,
    verified_payloads,
)
from models.datasets.cifar import CIFAR10, cifar_spec
from models.datasets.download import fetch_spec
from models.datasets.idx import (
    FASHION_MNIST,
    MNIST,
    MNIST_FILES,
    MNIST_TRAIN,
    _split_labels,
    _split_mnist,
    idx_spec,
    parse_idx,
    read_idx,
)
from models.datasets.stored import DatasetSource, StoredRef

DATASETS: dict[str, DatasetSpec] = {
    "mnist": MNIST,
    "fashion-mnist": FASHION_MNIST,
    "cifar10": CIFAR10,
    **toys.SPECS,
}

_sources: dict[str, DatasetSource] = {}


def register_source(key: str, source: DatasetSource) -> None:
    """Add (or replace) a source of stored datasets under `key`; idempotent, so re-imports are harmless."""
    _sources[key] = source


def unregister_source(key: str) -> None:
    _sources.pop(key, None)


def stored_names() -> list[str]:
    """Names the registered sources hold (a database query per source)."""
    names: list[str] = []
    for source in list(_sources.values()):
        names += [n for n in source.names() if n not in DATASETS and n not in names]
    return names


def dataset_names() -> list[str]:
    """Every dataset a job may name: the code's, then the stored ones."""
    return [*DATASETS, *stored_names()]


def _unknown(name: str) -> UnknownDataset:
    try:
        known = dataset_names()
    except Exception:  # noqa: BLE001 - a source that is down must not hide the real error
        known = list(DATASETS)
    return UnknownDataset(f"unknown dataset {name!r}; choose one of {', '.join(known)}")


def get_spec(name: str) -> DatasetSpec:
    """The spec of a dataset defined in code (builtin or toy)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise _unknown(name) from None


def lookup_stored(name: str) -> StoredRef | None:
    for source in list(_sources.values()):
        ref = source.lookup(name)
        if ref is not None:
            return ref
    return None


def kind_of(name: str) -> str:
    """"builtin", "toy" or "upload"; UnknownDataset otherwise."""
    if name in DATASETS:
        return DATASETS[name].kind
    if lookup_stored(name) is not None:
        return "upload"
    raise _unknown(name)


def is_toy(name: str) -> bool:
    """Points rather than images (no database access: toys are defined in code)."""
    spec = DATASETS.get(name)
    return spec is not None and spec.kind == "toy"


def image_shape_of(name: str) -> tuple[int, ...]:
    """(C, H, W) of a dataset's samples, without touching its files."""
    if name in DATASETS:
        return DATASETS[name].image_shape
    ref = lookup_stored(name)
    if ref is None:
        raise _unknown(name)
    return ref.image_shape


def label_names_of(name: str) -> tuple[str, ...]:
    """The class names of a labelled dataset (class k is label_names_of(name)[k]); () when it has no labels."""
    if name in DATASETS:
        return DATASETS[name].label_names if DATASETS[name].build_labels is not None else ()
    ref = lookup_stored(name)
    if ref is None:
        raise _unknown(name)
    return ref.label_names


def dim_of(name: str) -> int:
    """Flattened sample size (what G outputs and D reads), without touching the files."""
    return math.prod(image_shape_of(name))


@functools.lru_cache(maxsize=4)  # workers load the same data again and again; MNIST is ~220 MB as float32
def _load_cached(spec: DatasetSpec, data_dir: Path) -> Splits:
    payloads, problems = verified_payloads(spec, data_dir)
    if problems:
        raise DatasetUnavailable(unavailable_message(spec, data_dir, problems))
    train, valid, test = spec.build(payloads)
    return Splits(spec.name, train, valid, test, spec.image_shape, spec.digest, spec.kind)


def load_spec(spec: DatasetSpec, data_dir: Path, fetch_missing: bool = False) -> Splits:
    """load() for a spec that need not be registered (tests)."""
    data_dir = Path(data_dir).expanduser().resolve()  # one cache entry per real directory
    try:
        return _load_cached(spec, data_dir)
    except DatasetUnavailable:
        if not fetch_missing:
            raise
    fetch_spec(spec, data_dir)
    return _load_cached(spec, data_dir)


_stored_cache: OrderedDict[str, Splits] = OrderedDict()  # by sha256: a re-upload under one name is new data
_stored_lock = threading.Lock()
STORED_CACHE_SIZE = 4


def load_stored(ref: StoredRef) -> Splits:
    """The splits of a stored dataset, read once per process and version (sha256)."""
    with _stored_lock:
        hit = _stored_cache.get(ref.sha256)
        if hit is not None and hit.name == ref.name:
            _stored_cache.move_to_end(ref.sha256)
            return hit
    splits = stored.decode(ref.read(), ref.name, ref.sha256, ref.kind)
    with _stored_lock:
        _stored_cache[ref.sha256] = splits
        while len(_stored_cache) > STORED_CACHE_SIZE:
            _stored_cache.popitem(last=False)
    return splits


def load(name: str, data_dir: Path, fetch_missing: bool = False) -> Splits:
    """The verified train/valid/test splits of any dataset (cached per process, read-only). Builtin data
    comes from data_dir (fetched when `fetch_missing`), toys are generated, uploads come from their source."""
    spec = DATASETS.get(name)
    if spec is not None:
        return load_spec(spec, data_dir, fetch_missing)
    ref = lookup_stored(name)
    if ref is None:
        raise _unknown(name)
    return load_stored(ref)


def load_labels(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Class labels (int64) aligned with load()'s train/valid/test; not cached (they are small). A labelled
    upload's are stored with its images."""
    if name not in DATASETS:
        ref = lookup_stored(name)
        if ref is None:
            raise _unknown(name)
        labels = stored.decode_labels(ref.read())
        if not labels:
            raise DatasetError(f"dataset {name!r} has no labels")
        return labels["train"], labels["valid"], labels["test"]
    spec = get_spec(name)
    if spec.build_labels is None:
        raise DatasetError(f"dataset {name!r} has no labels")
    payloads, problems = verified_payloads(spec, Path(data_dir).expanduser().resolve())
    if problems:
        raise DatasetUnavailable(unavailable_message(spec, data_dir, problems))
    return spec.build_labels(payloads)


def train_labels(name: str, data_dir: Path) -> np.ndarray:
    """The class (int64, indexing label_names_of(name)) of each row of load(name).train."""
    return load_labels(name, data_dir)[0]


def fetch(name: str, data_dir: Path, log: Callable[[str], None] = print) -> Path:
    """Make sure a builtin dataset's files are present and verified; see models.datasets.download."""
    return fetch_spec(get_spec(name), data_dir, log)


__all__ = [
    "CIFAR10",
    "DATASETS",
    "GZIP_MAGIC",
    "KINDS",
    "MNIST_FILES",
    "MNIST_TRAIN",
    "Arrays",
    "DatasetError",
    "DatasetSource",
    "DatasetSpec",
    "DatasetUnavailable",
    "Splits",
    "StoredRef",
    "UnknownDataset",
    "_split_labels",
    "_split_mnist",
    "cifar_spec",
    "dataset_names",
    "dim_of",
    "fetch",
    "folder_of",
    "get_spec",
    "idx_spec",
    "image_shape_of",
    "is_toy",
    "kind_of",
    "label_names_of",
    "load",
    "load_labels",
    "load_spec",
    "load_stored",
    "lookup_stored",
    "parse_idx",
    "read_idx",
    "read_payload",
    "register_source",
    "sha256_hex",
    "stored_names",
    "train_labels",
    "unavailable_message",
    "unregister_source",
    "verified_payloads",
]
