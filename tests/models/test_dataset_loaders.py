"""The dataset loaders on small files written in the real formats: gzipped IDX (Fashion-MNIST, also from a
system folder as Debian installs it), a CIFAR-10 python tar.gz of pickles (also fetched from a mirror), the
toys, the stored .npz of uploads and the source hook that lets the registry reach them."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from models import datasets
from models.datasets import (
    DATASETS,
    DatasetError,
    DatasetUnavailable,
    StoredRef,
    cifar_spec,
    download,
    load_spec,
    stored,
    toys,
)
from models.datasets.idx import FASHION_MNIST, FASHION_MNIST_DEBIAN_DIR
from tests.models.test_datasets import idx_bytes, images


def write_idx_set(folder: Path, n_train: int = 30, n_test: int = 6, gz: bool = True) -> tuple[tuple[str, str], ...]:
    rng = np.random.default_rng(9)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(images(n_train, 1)),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_train).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(images(n_test, 2)),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_test).astype(np.uint8)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / (f"{name}.gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return tuple((name, hashlib.sha256(data).hexdigest()) for name, data in contents.items())


def test_fashion_mnist_is_registered_like_mnist() -> None:
    spec = DATASETS["fashion-mnist"]
    assert spec.image_shape == (1, 28, 28) and spec.counts == (50_000, 10_000, 10_000)
    assert spec.system_dirs == ("/usr/share/datasets/fashion-mnist",)
    assert [n for n, _ in spec.files] == [n for n, _ in DATASETS["mnist"].files]
    assert all(len(s) == 64 for _, s in spec.files) and spec.digest != DATASETS["mnist"].digest


def test_system_folder_is_searched_after_data_dir(tmp_path: Path) -> None:
    """Gzipped IDX files in a read-only folder (as Debian's package installs them) load when data_dir has
    none; a verified copy in data_dir wins."""
    system = tmp_path / "usr-share" / "fashion"
    files = write_idx_set(system, gz=True)
    spec = dataclasses.replace(FASHION_MNIST, files=files, system_dirs=(str(system),),
                               build=functools.partial(FASHION_MNIST.build.func,  # type: ignore[attr-defined]
                                                       **{**FASHION_MNIST.build.keywords, "n_train": 20}))  # type: ignore[attr-defined]
    splits = load_spec(spec, tmp_path / "data")
    assert splits.name == "fashion-mnist" and splits.train.shape == (20, 784)
    assert splits.valid is not None and splits.valid.shape == (10, 784)
    assert splits.test is not None and splits.test.shape == (6, 784)
    np.testing.assert_allclose(splits.train, images(30, 1)[:20].reshape(20, -1) / 255.0, rtol=1e-6)
    # Nothing missing means nothing to fetch: fetch() returns without touching the network.
    assert download.fetch_spec(spec, tmp_path / "data", log=lambda line: None) == tmp_path / "data" / "fashion-mnist"
    # A corrupt copy in data_dir is reported, and the system folder still serves the file.
    bad = tmp_path / "data2" / "fashion-mnist" / "t10k-images-idx3-ubyte"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\0\0\x08\x01\0\0\0\x01x")
    assert datasets.verified_payloads(spec, tmp_path / "data2")[1] == {}


def test_missing_fashion_mnist_names_both_places(tmp_path: Path) -> None:
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=(str(tmp_path / "nowhere"),))
    with pytest.raises(DatasetUnavailable) as info:
        load_spec(spec, tmp_path)
    message = str(info.value)
    assert str(tmp_path.resolve() / "fashion-mnist" / "train-images-idx3-ubyte") in message
    assert str(tmp_path / "nowhere" / "train-images-idx3-ubyte") in message
    assert "fashion-mnist.s3-website" in message


@pytest.mark.skipif(not Path(FASHION_MNIST_DEBIAN_DIR).is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist_from_the_debian_package(tmp_path: Path) -> None:
    splits = datasets.load("fashion-mnist", tmp_path)  # an empty data_dir: the Debian folder serves it
    assert splits.train.shape == (50_000, 784) and splits.test is not None and splits.test.shape == (10_000, 784)
    assert splits.sha256 == FASHION_MNIST.digest
    _, _, test_labels = datasets.load_labels("fashion-mnist", tmp_path)
    assert test_labels is not None and set(np.unique(test_labels)) == set(range(10))


def cifar_batch(n: int, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake batch", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def write_cifar(path: Path, per_batch: int = 8, extra: dict[str, bytes] | None = None) -> dict[str, dict]:
    """A cifar-10-python.tar.gz in the real layout: cifar-10-batches-py/{data_batch_1..5,test_batch}, each a
    protocol-2 pickle of a dict with bytes keys (as the published Python 2 pickles load with encoding=bytes)."""
    batches = {f"data_batch_{i}": cifar_batch(per_batch, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(per_batch, 99)
    members = {f"cifar-10-batches-py/{k}": pickle.dumps(v, protocol=2) for k, v in batches.items()}
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return batches


def test_cifar_archive_loads_with_the_authors_split(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10"
    folder.mkdir()
    archive = folder / "cifar-10-python.tar.gz"
    batches = write_cifar(archive)
    spec = cifar_spec(sha256=hashlib.sha256(archive.read_bytes()).hexdigest(), n_train=30, counts=(30, 10, 8))
    splits = load_spec(spec, tmp_path)
    assert splits.image_shape == (3, 32, 32)
    assert splits.train.shape == (30, 3072) and splits.valid is not None and splits.valid.shape == (10, 3072)
    assert splits.test is not None and splits.test.shape == (8, 3072)
    full = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])  # type: ignore[misc]
    np.testing.assert_allclose(splits.train, full[:30] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(splits.valid, full[30:] / 255.0, rtol=1e-6)
    # A row is R plane, G plane, B plane: pixel (0, 0) of channel c sits at c * 1024.
    assert splits.train.reshape(30, 3, 32, 32)[0, 1, 0, 0] == pytest.approx(full[0, 1024] / 255.0)
    assert not splits.train.flags.writeable
    assert spec.build_labels is not None
    train_labels, _, test_labels = spec.build_labels(datasets.verified_payloads(spec, tmp_path)[0])
    assert list(train_labels[:8]) == batches["data_batch_1"][b"labels"]
    assert test_labels is not None and list(test_labels) == batches["test_batch"][b"labels"]
    # The checksum is of the archive as published: one flipped byte and it is refused.
    data = bytearray(archive.read_bytes())
    data[-5] ^= 0xFF
    archive.write_bytes(bytes(data))
    datasets._load_cached.cache_clear()
    with pytest.raises(DatasetUnavailable, match="checksum mismatch"):
        load_spec(spec, tmp_path)


def test_cifar_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_cifar(archive, extra={"cifar-10-batches-py/test_batch": pickle.dumps(Evil(), protocol=2)})
    spec = cifar_spec(sha256=hashlib.sha256(archive.read_bytes()).hexdigest(), n_train=30)
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        load_spec(spec, tmp_path)
    assert not (tmp_path / "pwned").exists()
    assert DATASETS["cifar10"].files == (("cifar-10-python.tar.gz",
                                          "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on localhost serving a folder, standing in for the CIFAR mirror."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()


def test_cifar_is_fetched_as_published_from_a_mirror(tmp_path: Path, mirror: tuple[str, Path]) -> None:
    url, root = mirror
    write_cifar(root / "cifar-10-python.tar.gz")
    published = (root / "cifar-10-python.tar.gz").read_bytes()
    spec = cifar_spec(sha256=hashlib.sha256(published).hexdigest(), n_train=30, mirrors=(url,))
    lines: list[str] = []
    folder = download.fetch_spec(spec, tmp_path / "data", log=lines.append)
    assert (folder / "cifar-10-python.tar.gz").read_bytes() == published  # stored as is, not gunzipped
    assert any("ok (" in line for line in lines)
    assert load_spec(spec, tmp_path / "data").train.shape == (30, 3072)


def test_toys_are_generated_points() -> None:
    one = datasets.load("toy-1d", Path("/nonexistent"))
    assert one.kind == "toy" and one.image_shape == (1, 1, 1) and one.train.shape == (20_000, 1)
    assert abs(one.train.mean() - toys.TOY_1D_MEAN) < 0.02 and abs(one.train.std() - toys.TOY_1D_STD) < 0.02
    assert datasets.is_toy("toy-1d") and not datasets.is_toy("mnist") and datasets.kind_of("toy-grid") == "toy"
    ring = datasets.load("toy-ring", Path("/nonexistent"))
    assert ring.image_shape == (1, 1, 2) and ring.valid is not None and ring.test is not None
    radius = np.linalg.norm(ring.train, axis=1)
    assert abs(radius.mean() - 2.0) < 0.01
    grid = datasets.load("toy-grid", Path("/nonexistent")).train
    assert len(np.unique(np.round(grid / 2.0), axis=0)) == 25  # every mode is populated
    assert one.sha256 == toys.digest("toy-1d") == DATASETS["toy-1d"].digest and one.sha256 != ring.sha256
    x = np.linspace(0, 8, 4001)
    density = toys.true_density("toy-1d")
    assert density is not None and abs(density(x).sum() * (x[1] - x[0]) - 1.0) < 1e-6
    assert toys.true_density("mnist") is None


def test_stored_format_round_trip_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    parts = {"train": rng.integers(0, 256, (7, 3, 5, 4), dtype=np.uint8),
             "valid": rng.integers(0, 256, (2, 3, 5, 4), dtype=np.uint8),
             "test": rng.integers(0, 256, (1, 3, 5, 4), dtype=np.uint8)}
    blob = stored.encode(parts)
    assert stored.encode({k: v.copy() for k, v in parts.items()}) == blob  # no timestamps in the bytes
    splits = stored.decode(blob, "mine", hashlib.sha256(blob).hexdigest())
    assert splits.image_shape == (3, 5, 4) and splits.train.shape == (7, 60) and splits.kind == "upload"
    np.testing.assert_allclose(splits.train, parts["train"].reshape(7, -1) / 255.0, rtol=1e-6)
    with pytest.raises(DatasetError, match="sha256"):
        stored.decode(blob, "mine", "0" * 64)
    with pytest.raises(DatasetError, match="not a stored dataset"):
        stored.decode(b"PK\x03\x04garbage", "mine")


def test_registered_source_makes_stored_datasets_loadable() -> None:
    rng = np.random.default_rng(1)
    blob = stored.encode({s: rng.integers(0, 256, (n, 1, 4, 4), dtype=np.uint8)
                          for s, n in (("train", 6), ("valid", 2), ("test", 2))})
    reads: list[int] = []

    class Memory:
        def names(self) -> list[str]:
            return ["mine"]

        def lookup(self, name: str) -> StoredRef | None:
            def read() -> bytes:
                reads.append(1)
                return blob
            return StoredRef(name, hashlib.sha256(blob).hexdigest(), (1, 4, 4), read) if name == "mine" else None

    datasets.register_source("test-memory", Memory())
    try:
        assert datasets.dataset_names()[-1] == "mine" and datasets.kind_of("mine") == "upload"
        assert datasets.image_shape_of("mine") == (1, 4, 4) and datasets.dim_of("mine") == 16
        first = datasets.load("mine", Path("/nonexistent"))
        assert first.train.shape == (6, 16) and datasets.load("mine", Path("/x")) is first and reads == [1]
    finally:
        datasets.unregister_source("test-memory")
    assert "mine" not in datasets.dataset_names()
    with pytest.raises(datasets.UnknownDataset):
        datasets.load("mine", Path("/nonexistent"))


def test_figure_1_draws_the_toys_true_density() -> None:
    """worker/toy_snapshot uses p_data itself for a toy (not a KDE of its samples)."""
    from worker.training.figure1 import compute

    data = datasets.load("toy-1d", Path("/nonexistent")).train
    density = toys.true_density("toy-1d")
    fig = compute(1, lambda z: z + 4.0, lambda x: np.full(len(x), 0.5), data, 1, -1.0, 1.0, density=density)
    x = np.array(fig["x"])
    expected = np.exp(-0.5 * ((x - 4.0) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(fig["data_density"], expected, atol=1e-5)
