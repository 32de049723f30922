"""The spine: POST /jobs → Redis → a real Celery worker trains on real MNIST and exports ONNX → GET /samples."""

from __future__ import annotations

import csv
import io
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from tests.conftest import mnist_available, wait_for_job

TINY = {"model": "tiny", "dataset": "mnist", "preset": "quick", "iterations": 40, "g_hidden": [64],
        "d_hidden": [32], "batch_size": 32, "log_every": 10, "snapshot_every": 20, "seed": 7}


@pytest.fixture(scope="module")
def trained(client, worker) -> dict:  # type: ignore[no-untyped-def]
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    response = client.post("/jobs", json=TINY)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/jobs/{response.json()['id']}"
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_job_succeeds_and_registers_a_version(client, trained) -> None:  # type: ignore[no-untyped-def]
    assert trained["progress"] == 1.0 and trained["iteration"] == 40
    models = {m["name"]: m for m in client.get("/models").json()}
    version = models["tiny"]["versions"][-1]
    assert version["job_id"] == trained["id"]
    assert version["latent_dim"] == 100 and version["image_shape"] == [1, 28, 28]
    assert version["noise"]["kind"] == "uniform"
    assert version["metrics"]["onnx_max_abs_diff"] <= 1e-5
    assert len(version["artifact_sha256"]) == 64


def test_samples_png_is_an_8x8_grid_of_varied_pixels(client, trained) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/samples", params={"model": "tiny", "n": 64, "seed": 3})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    # 8 columns of 28 px plus 2 px padding each side: 8 * 30 + 2.
    assert image.shape == (242, 242)
    assert image.std() > 0
    assert response.headers["X-Seed"] == "3"


def test_metrics_and_snapshots_were_recorded(client, trained) -> None:  # type: ignore[no-untyped-def]
    rows = client.get(f"/jobs/{trained['id']}/metrics").json()
    assert [r["iteration"] for r in rows] == [10, 20, 30, 40]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "value", "jsd", "lr"} <= set(rows[0])
    snaps = client.get(f"/jobs/{trained['id']}/snapshots").json()
    assert [s["iteration"] for s in snaps] == [20, 40]
    png = client.get(snaps[0]["url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_metrics_download_as_csv_and_svg_chart(client, trained) -> None:  # type: ignore[no-untyped-def]
    rows = client.get(f"/jobs/{trained['id']}/metrics").json()
    response = client.get(f"/jobs/{trained['id']}/metrics", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [float(r["iteration"]) for r in table] == [r["iteration"] for r in rows]
    assert [float(r["d_fake"]) for r in table] == pytest.approx([r["d_fake"] for r in rows])
    response = client.get(f"/jobs/{trained['id']}/metrics", params={"format": "svg"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    svg = ElementTree.fromstring(response.text)                   # well-formed XML
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 5                                        # D(x), D(G(z)), D loss, G loss, JSD
    assert all(len(line.get("points", "").split()) == len(rows) for line in lines)
    bad = client.get(f"/jobs/{trained['id']}/metrics", params={"format": "pdf"})
    assert bad.status_code == 422 and "format" in bad.text


def test_jobs_are_listed_and_health_endpoints_answer(client, trained) -> None:  # type: ignore[no-untyped-def]
    assert any(j["id"] == trained["id"] for j in client.get("/jobs").json())
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert client.get("/openapi.json").status_code == 200


def test_keep_best_registers_the_best_validation_score(client, worker) -> None:  # type: ignore[no-untyped-def]
    """score_every + keep "best": every score joins its metrics row; the version is the best-scoring G."""
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    body = {**TINY, "model": "tiny-best", "iterations": 60, "score_every": 20, "keep": "best"}
    job = wait_for_job(client, client.post("/jobs", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    rows = client.get(f"/jobs/{job['id']}/metrics").json()
    scored = {r["iteration"]: r for r in rows if "valid_ll" in r}
    assert sorted(scored) == [20, 40, 60]
    assert all({"d_loss", "valid_ll_se", "valid_sigma"} <= set(r) for r in scored.values())
    best = max(scored.values(), key=lambda r: r["valid_ll"])
    version = {m["name"]: m for m in client.get("/models").json()}["tiny-best"]["versions"][-1]
    assert version["metrics"]["selected_iteration"] == best["iteration"]
    assert version["metrics"]["valid_ll"] == pytest.approx(best["valid_ll"])
    assert version["metrics"]["iterations"] == 60
    svg = ElementTree.fromstring(client.get(f"/jobs/{job['id']}/metrics", params={"format": "svg"}).text)
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 6 and len(lines[-1].get("points", "").split()) == 3    # + the validation LL panel
    table = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/metrics", params={"format": "csv"}).text)))
    assert [float(r["valid_ll"]) for r in table if r["valid_ll"]] == pytest.approx([r["valid_ll"] for r in scored.values()])


def test_keep_best_without_scores_is_a_422_naming_keep(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", json={**TINY, "keep": "best"})
    assert response.status_code == 422 and "keep" in response.text and "score_every" in response.text


def test_a_diverging_run_fails_with_a_clear_error_and_registers_nothing(client, worker) -> None:  # type: ignore[no-untyped-def]
    """lr 10 on the paper's SGD: the losses overflow within a few dozen iterations."""
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    body = {"model": "tiny-diverges", "dataset": "mnist", "preset": "paper-mnist", "iterations": 2000,
            "g_hidden": [64], "d_hidden": [32], "batch_size": 32, "log_every": 10, "lr": 10.0, "seed": 7}
    job = wait_for_job(client, client.post("/jobs", json=body).json()["id"])
    assert job["status"] == "failed", job
    assert "the run diverged" in job["error"] and "smaller lr" in job["error"], job["error"]
    assert job["iteration"] < 2000
    assert "tiny-diverges" not in {m["name"] for m in client.get("/models").json()}
