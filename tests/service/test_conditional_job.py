"""Conditional and encoder jobs on the real stack: a labelled upload (one folder per class below a wrapper
folder) and MNIST → a real worker trains G(z, c) and E → the version serves labelled samples and /encode."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import mnist_available, wait_for_job
from tests.service.api.test_datasets import png, upload, zip_of

TINY = {"preset": "quick", "iterations": 30, "g_hidden": [32], "d_hidden": [16], "e_hidden": [32],
        "batch_size": 16, "log_every": 10, "snapshot_every": 15, "seed": 3, "encoder_iterations": 50}


def _labelled_archive() -> bytes:
    """24 images in two class folders (dark and bright) below one wrapper folder, plus a macOS resource file."""
    members = {f"shapes/{'dark' if i % 2 else 'bright'}/img{i:03d}.png": png(i) for i in range(24)}
    return zip_of({**members, "__MACOSX/shapes/._x": b"junk"})


@pytest.fixture(scope="module")
def labelled(client: Any) -> dict[str, Any]:
    created = upload(client, "two-class", _labelled_archive(), seed=2)
    assert created.status_code == 201, created.text
    return created.json()


def test_class_folders_make_a_labelled_upload(client: Any, labelled: dict[str, Any]) -> None:
    assert labelled["label_names"] == ["bright", "dark"]
    flat = upload(client, "flat-set", zip_of({f"img{i}.png": png(i) for i in range(20)}))
    assert flat.status_code == 201 and flat.json()["label_names"] == []
    assert client.get("/datasets/mnist").json()["label_names"] == [str(k) for k in range(10)]


@pytest.mark.parametrize("dataset", ["flat-set", "toy-1d"])
def test_conditional_needs_a_labelled_dataset(client: Any, labelled: dict[str, Any], dataset: str) -> None:
    preset = {"preset": "toy-1d"} if dataset.startswith("toy") else {}
    response = client.post("/jobs", json={"model": "nolabels", "dataset": dataset, "conditional": True, **preset})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "conditional"
    fused = client.post("/jobs", json={"model": "nolabels", "dataset": "mnist", "conditional": True,
                                       "engine": "fused"})
    assert fused.status_code == 422 and fused.json()["errors"][0]["field"] == "engine"


@pytest.fixture(scope="module")
def trained(client: Any, worker: Any, labelled: dict[str, Any]) -> dict[str, Any]:
    # With the encoder's second phase: the worker hands E the upload's images and their labels.
    response = client.post("/jobs", json={"model": "two-class-gan", "dataset": "two-class", "conditional": True,
                                          "encoder": True, "encoder_data_iterations": 20, **TINY})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_the_version_records_labels_and_both_graphs(client: Any, trained: dict[str, Any]) -> None:
    version = next(m for m in client.get("/models").json() if m["name"] == "two-class-gan")["versions"][-1]
    assert version["label_names"] == ["bright", "dark"]
    assert version["encoder"]["sha256"] != version["artifact_sha256"]
    assert version["metrics"]["onnx_max_abs_diff"] <= 1e-5
    assert version["metrics"]["encoder_onnx_max_abs_diff"] <= 1e-5


def test_labelled_samples_and_encode(client: Any, trained: dict[str, Any]) -> None:
    def grid(label: str) -> bytes:
        response = client.get("/samples", params={"model": "two-class-gan", "n": 4, "seed": 5, "label": label})
        assert response.status_code == 200, response.text
        return response.content

    assert grid("dark") == grid("1") != grid("bright")
    image = np.asarray(Image.open(io.BytesIO(png(3))))
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    encoded = client.post("/encode", params={"model": "two-class-gan", "label": "dark"},
                          files={"image": ("x.png", out.getvalue())})
    assert encoded.status_code == 200, encoded.text
    assert len(encoded.json()["z"]) == 100 and encoded.json()["reconstruction"].startswith("data:image/png")


def test_conditional_mnist_job(client: Any, worker: Any) -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    response = client.post("/jobs", json={"model": "cond-mnist", "dataset": "mnist", "conditional": True,
                                          **TINY, "iterations": 10})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["config"]["label_names"] == [str(k) for k in range(10)]
    rows = client.get("/samples", params={"model": "cond-mnist", "n": 2, "seed": 1, "label": "all"})
    assert rows.status_code == 200
