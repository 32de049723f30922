"""CIFAR-10 from Krizhevsky's python archive (cifar-10-python.tar.gz: data_batch_1..5 and test_batch).

The archive is verified as a whole (sha256 of the published file; its md5 is c58f30108f718f92721af3b95e74349a)
before anything in it is read, and the batches are unpickled with a restricted Unpickler that can only build
dicts, lists, bytes and numpy arrays: a pickle can run arbitrary code, and defence in depth costs nothing.
Each batch is {b"data": uint8 (10000, 3072) rows of 1024 R, 1024 G, 1024 B values in row-major 32x32,
b"labels": [int]}: a row is already a (3, 32, 32) CHW image, so the flat layout is kept as is.
Splits as in the authors' cifar10 configurations: train = the first 40,000 training images, valid = the
last 10,000, test = test_batch.
"""

from __future__ import annotations

import _codecs
import functools
import io
import pickle
import tarfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.datasets.base import Arrays, DatasetError, DatasetSpec, to_unit_float

ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
MEMBER_DIR = "cifar-10-batches-py/"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CIFAR_TRAIN = 40_000
IMAGE_SHAPE = (3, 32, 32)
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MAX_MEMBER_BYTES = 64 << 20  # a real batch is ~31 MB; anything far larger is not CIFAR


try:  # numpy >= 2 moved the array reconstructor that pickled arrays name
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # batches pickled by numpy 1.x (the real ones)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # ... and by numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,  # how Python 3 pickles bytes at protocol 2
}


class _Restricted(pickle.Unpickler):
    """Only what numpy arrays, dicts, lists and byte strings need; everything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(f"CIFAR batch: refusing to unpickle {module}.{name}") from None


def read_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (uint8 (N, 3, 32, 32), int64 labels (N,))."""
    try:
        batch = _Restricted(io.BytesIO(data), encoding="bytes").load()
    except DatasetError:
        raise
    except Exception as exc:  # a malformed pickle raises almost anything
        raise DatasetError(f"{source}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{source}: expected a dict, got {type(batch).__name__}")
    images = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != 3072:
        shape = getattr(images, "shape", None)
        raise DatasetError(f"{source}: 'data' must be uint8 (N, 3072), got {type(images).__name__} {shape}")
    if labels is None or len(labels) != len(images):
        raise DatasetError(f"{source}: 'labels' must have one entry per image")
    return images.reshape(-1, *IMAGE_SHAPE), np.asarray(labels, dtype=np.int64)


def read_archive(archive: bytes, source: str = ARCHIVE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The six batches of a cifar-10-python.tar.gz, by batch name. Members are looked up by exact name
    and read into memory; nothing is extracted to disk."""
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for name in (*TRAIN_BATCHES, TEST_BATCH):
                try:
                    member = tar.getmember(MEMBER_DIR + name)
                except KeyError:
                    raise DatasetError(f"{source}: no member {MEMBER_DIR}{name}") from None
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise DatasetError(f"{source}: {member.name} is not a regular file of a sane size")
                handle = tar.extractfile(member)
                assert handle is not None
                batches[name] = read_batch(handle.read(), f"{source}:{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"{source}: unreadable archive ({exc})") from exc
    return batches


def _split(payloads: Mapping[str, bytes], archive: str, n_train: int, labels: bool) -> Arrays:
    batches = read_archive(payloads[archive], archive)
    part = 1 if labels else 0
    full = np.concatenate([batches[b][part] for b in TRAIN_BATCHES])
    test = batches[TEST_BATCH][part]
    if labels:
        full.flags.writeable = test.flags.writeable = False
        return full[:n_train], full[n_train:], test
    train = to_unit_float(full)  # (N, 3072) float32 in [0, 1], CHW order
    return train[:n_train], train[n_train:], to_unit_float(test)


def cifar_spec(name: str = "cifar10", archive: str = ARCHIVE, sha256: str = ARCHIVE_SHA256,
               n_train: int = CIFAR_TRAIN, mirrors: tuple[str, ...] = ("https://www.cs.toronto.edu/~kriz/",),
               counts: tuple[int, int, int] | None = None) -> DatasetSpec:
    """A spec for a CIFAR-10-layout archive (tests pass their own small archive's name and sha256)."""
    return DatasetSpec(
        name=name, image_shape=IMAGE_SHAPE, files=((archive, sha256),),
        build=functools.partial(_split, archive=archive, n_train=n_train, labels=False),
        build_labels=functools.partial(_split, archive=archive, n_train=n_train, labels=True),
        mirrors=mirrors, raw_files=True, counts=counts, label_names=LABEL_NAMES,
        source="Krizhevsky's CIFAR-10 (cifar-10-python.tar.gz); train[:40000] / train[40000:] / test_batch, "
               "as the authors")


CIFAR10 = cifar_spec(counts=(CIFAR_TRAIN, 10_000, 10_000))

__all__ = ["ARCHIVE", "ARCHIVE_MD5", "ARCHIVE_SHA256", "CIFAR10", "cifar_spec", "read_archive", "read_batch"]
