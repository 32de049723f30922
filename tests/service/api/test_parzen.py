"""Issue 4 through the real stack: GET /parzen, POST /jobs {"kind": "parzen"}, the worker's evaluation job,
the automatic evaluation after training, and `ganserve parzen`. Real MNIST, real PostgreSQL/Redis/Celery.

Model versions come from tests.factories (a random MLP registered as a training job would) except in the
training test, which trains a tiny model for real. One evaluation of the paper's protocol costs ~1.5-3 s here.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import numpy as np
import pytest

from tests.conftest import mnist_available, wait_for_job
from tests.factories import mlp_generator_onnx, register_model

TINY_TRAIN = {"model": "pz-trained", "dataset": "mnist", "preset": "quick", "iterations": 20, "g_hidden": [64],
              "d_hidden": [32], "batch_size": 32, "log_every": 10, "snapshot_every": 20, "seed": 3}
TABLE_1_MNIST = {"DBN": (138, 2), "Stacked CAE": (121, 1.6), "Deep GSN": (214, 1.1), "Adversarial nets": (225, 2)}


@pytest.fixture(scope="module", autouse=True)
def _mnist() -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def _check_score(body: dict[str, Any], model: str, version: int) -> None:
    assert (body["model"], body["version"], body["dataset"]) == (model, version, "mnist")
    assert math.isfinite(body["ll"]) and 0 < body["se"] < 50
    assert body["n_samples"] == 10_000 and body["n_test"] == 10_000 and body["n_valid"] == 1000
    sigmas = [g["sigma"] for g in body["grid"]]
    assert np.allclose(sigmas, np.logspace(-1, 0, 10))
    best = max(body["grid"], key=lambda g: g["ll"])
    assert body["sigma"] == best["sigma"]  # chosen by validation LL
    assert body["protocol"]["sigmas"] == sigmas and "train[50000:51000]" in body["protocol"]["sigma_selection"]
    assert "Theis" in body["caveat"] and "high variance" in body["caveat"]
    refs = {r["label"]: r for r in body["references"]}
    for label, (ll, se) in TABLE_1_MNIST.items():
        assert (refs[label]["ll"], refs[label]["se"]) == (ll, se)
    real = [r for r in body["references"] if r.get("reference") == "real-train"]
    assert len(real) == 1 and real[0]["n_samples"] == 10_000
    # Real digits as centres: the estimator's value for a "perfect memorizer"; far above a random net.
    assert 150 < real[0]["ll"] < 300 and real[0]["ll"] > body["ll"]


@pytest.fixture(scope="module")
def scored(client, worker) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A registered version, scored through GET /parzen's 202 path; returns the first 202 and the job."""
    reg = register_model("pz-random", latent_dim=16, hidden=(32,))
    first = client.get("/parzen", params={"model": "pz-random"})
    assert first.status_code == 202, first.text
    job_id = first.json()["job"]["id"]
    assert first.headers["Location"] == f"/jobs/{job_id}"
    again = client.get("/parzen", params={"model": "pz-random", "version": reg.version})
    assert again.status_code in (200, 202)  # it may already have finished
    if again.status_code == 202:  # polling does not queue a second evaluation
        assert again.headers["Location"] == first.headers["Location"]
    job = wait_for_job(client, job_id, timeout=180)
    assert job["status"] == "succeeded", job
    return {"pending": first.json(), "job": job, "version": reg.version}


def test_202_body_names_the_job_and_the_protocol(scored) -> None:  # type: ignore[no-untyped-def]
    pending = scored["pending"]
    assert pending["status"] == "pending" and pending["model"] == "pz-random"
    assert pending["job"]["kind"] == "parzen" and pending["job"]["target_version"] == scored["version"]
    assert pending["job"]["config"]["n_samples"] == 10_000 and pending["job"]["config"]["n_valid"] == 1000
    assert "Theis" in pending["caveat"]
    assert {r["label"] for r in pending["references"]} >= set(TABLE_1_MNIST)


def test_scored_version_returns_ll_se_sigma_grid_and_references(client, scored) -> None:  # type: ignore[no-untyped-def]
    job = scored["job"]
    assert job["progress"] == 1.0 and job["error"] is None
    response = client.get("/parzen", params={"model": "pz-random", "version": scored["version"]})
    assert response.status_code == 200, response.text
    body = response.json()
    _check_score(body, "pz-random", scored["version"])
    assert body["job_id"] == job["id"]


def test_unknown_model_or_version_is_404(client, scored) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(client.get("/parzen", params={"model": "no-such-model"}), 404)
    assert "known models" in problem["detail"] and "pz-random" in problem["detail"]
    problem = _problem(client.get("/parzen", params={"model": "pz-random", "version": 99}), 404)
    assert "known versions" in problem["detail"]
    problem = _problem(client.post("/jobs", json={"kind": "parzen", "model": "pz-random", "version": 99}), 404)
    assert "known versions" in problem["detail"]
    problem = _problem(client.get("/parzen", params={"model": "pz-random", "version": 0}), 422)
    assert problem["errors"][0]["field"] == "version"


def test_post_parzen_job_rescores_the_version(client, scored) -> None:  # type: ignore[no-untyped-def]
    before = client.get("/parzen", params={"model": "pz-random"}).json()
    body = {"kind": "parzen", "model": "pz-random", "version": scored["version"]}
    response = client.post("/jobs", json=body, headers={"Idempotency-Key": "pz-rescore-1"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert (job["kind"], job["model"], job["target_version"], job["dataset"]) == \
        ("parzen", "pz-random", scored["version"], "mnist")
    repeat = client.post("/jobs", json=body, headers={"Idempotency-Key": "pz-rescore-1"})
    assert repeat.json()["id"] == job["id"]
    assert wait_for_job(client, job["id"], timeout=180)["status"] == "succeeded"
    after = client.get("/parzen", params={"model": "pz-random"}).json()
    assert after["job_id"] == job["id"]
    assert after["ll"] == pytest.approx(before["ll"], rel=1e-5)  # same seed, same samples, same score


def test_dataset_without_splits_is_422(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reg = register_model("pz-nosplit", dataset="no-such-dataset")
    problem = _problem(client.get("/parzen", params={"model": "pz-nosplit"}), 422)
    assert problem["errors"][0]["field"] == "model"
    assert "no validation or test split" in problem["detail"]
    problem = _problem(client.post("/jobs", json={"kind": "parzen", "model": "pz-nosplit", "version": reg.version}),
                       422)
    assert problem["errors"][0]["field"] == "version"
    # A registered dataset without a validation split (e.g. one shipped as train/test only).
    from models import datasets

    monkeypatch.setitem(datasets.DATASETS, "train-test-only", datasets.DATASETS["mnist"])
    real_load = datasets.load

    def load(name: str, data_dir: Any, fetch_missing: bool = False) -> datasets.Splits:
        s = real_load("mnist", data_dir)
        return datasets.Splits(name, s.train, None, s.test, s.image_shape, s.sha256) \
            if name == "train-test-only" else real_load(name, data_dir, fetch_missing)

    monkeypatch.setattr(datasets, "load", load)
    register_model("pz-trainonly", dataset="train-test-only")
    problem = _problem(client.get("/parzen", params={"model": "pz-trainonly", "version": 1}), 422)
    assert problem["errors"][0]["field"] == "version" and "no validation split" in problem["detail"]
    jobs = client.get("/jobs", params={"model": "pz-trainonly"}).json()
    assert [j for j in jobs if j["kind"] == "parzen"] == []  # nothing was queued


def test_failed_evaluation_is_409_and_not_requeued(client, worker) -> None:  # type: ignore[no-untyped-def]
    # 100 output values per sample cannot be scored against 784-pixel MNIST: the job fails with the reason.
    register_model("pz-broken", onnx_bytes=mlp_generator_onnx(16, (8,), 100), latent_dim=16)
    pending = client.get("/parzen", params={"model": "pz-broken"})
    assert pending.status_code == 202, pending.text
    job = wait_for_job(client, pending.json()["job"]["id"], timeout=120)
    assert job["status"] == "failed" and "outputs 100 values" in job["error"]
    problem = _problem(client.get("/parzen", params={"model": "pz-broken"}), 409)
    assert "POST /jobs" in problem["detail"] and problem["errors"][0]["field"] == "model"
    parzen_jobs = [j for j in client.get("/jobs", params={"model": "pz-broken"}).json() if j["kind"] == "parzen"]
    assert len(parzen_jobs) == 1


def test_training_queues_the_evaluation(client, worker) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("GANSERVE_PARZEN_AFTER_TRAINING", "true").lower() in ("false", "0", "no"):
        pytest.skip("GANSERVE_PARZEN_AFTER_TRAINING is off in this environment")
    response = client.post("/jobs", json=TINY_TRAIN)
    assert response.status_code == 202, response.text
    train = wait_for_job(client, response.json()["id"], timeout=300)
    assert train["status"] == "succeeded", train
    evaluations = [j for j in client.get("/jobs", params={"model": "pz-trained"}).json() if j["kind"] == "parzen"]
    assert len(evaluations) == 1 and evaluations[0]["target_version"] == 1  # queued by the training job
    assert wait_for_job(client, evaluations[0]["id"], timeout=180)["status"] == "succeeded"
    response = client.get("/parzen", params={"model": "pz-trained"})
    assert response.status_code == 200, response.text
    _check_score(response.json(), "pz-trained", 1)


def test_cli_prints_table_1_and_stores_the_score(client, capsys) -> None:  # type: ignore[no-untyped-def]
    from service.cli import parzen as parzen_cli

    reg = register_model("pz-cli", latent_dim=8, hidden=(16,), seed=5)
    args = argparse.Namespace(model="pz-cli", version=None, recompute=False, fine_grid=False,
                              full_validation=False, json=False)
    assert parzen_cli.main(args) == 0  # computed in-process (no job) and stored
    out = capsys.readouterr().out
    assert "Adversarial nets" in out and "225.0 ± 2.0" in out and "pz-cli v1 (this server)" in out
    assert "Real training images" in out and "Theis" in out
    stored = client.get("/parzen", params={"model": "pz-cli", "version": reg.version})
    assert stored.status_code == 200 and stored.json()["job_id"] is None
    args.fine_grid, args.json = True, True
    assert parzen_cli.main(args) == 0  # another protocol: printed, not stored
    assert '"n_samples": 10000' in capsys.readouterr().out
    assert client.get("/parzen", params={"model": "pz-cli"}).json()["ll"] == stored.json()["ll"]
    args.model = "no-such-model"
    assert parzen_cli.main(args) == 2
