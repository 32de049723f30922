"""Sample-quality scores through the real stack: POST /scores queues the dataset's classifier and then the
scores job; GET /scores answers 404 (never scored: how to ask), 202 + Location (computing, never queueing) and
200; GET /models carries the headline numbers. Real MNIST, PostgreSQL, Redis and Celery.

The classifier here is the tests' small one (tests/conftest.py: one epoch on 4,000 images); the full one's
accuracy is measured by `ganserve bench scores`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import mnist_available, wait_for_job
from tests.factories import register_model


@pytest.fixture(scope="module", autouse=True)
def _mnist() -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")


@pytest.fixture(scope="module")
def scored(client, worker) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    reg = register_model("sc-random", latent_dim=16, hidden=(32,))
    never = client.get("/scores", params={"model": "sc-random"})
    assert never.status_code == 404, never.text
    assert "POST /scores?model=sc-random&version=1" in never.json()["detail"]
    assert client.get("/scores", params={"model": "sc-random"}).status_code == 404   # a GET queued nothing
    asked = client.post("/scores", params={"model": "sc-random"}, headers={"Idempotency-Key": "sc-1"})
    assert asked.status_code == 202, asked.text
    job_id = asked.json()["job"]["id"]
    assert asked.headers["Location"] == f"/jobs/{job_id}" and asked.json()["job"]["kind"] == "scores"
    repeat = client.post("/scores", params={"model": "sc-random"}, headers={"Idempotency-Key": "sc-1"})
    assert repeat.json()["job"]["id"] == job_id
    pending = client.get("/scores", params={"model": "sc-random", "version": reg.version})
    assert pending.status_code in (200, 202)
    if pending.status_code == 202:
        assert pending.headers["Location"] == f"/jobs/{job_id}"
    # One classifier job for MNIST in the whole session: this one's, or an earlier test's (the gallery's scores
    # panel test scores an MNIST model first when the whole suite runs); never a second.
    classifier_jobs = [j for j in client.get("/jobs", params={"limit": 1000}).json()
                       if j["kind"] == "classifier" and j["dataset"] == "mnist"]
    assert len(classifier_jobs) == 1, classifier_jobs
    job = wait_for_job(client, job_id, timeout=600)
    assert job["status"] == "succeeded", job
    body = client.get("/scores", params={"model": "sc-random"})
    assert body.status_code == 200, body.text
    return body.json()


def test_scores_of_a_random_generator(scored: dict[str, Any]) -> None:
    assert scored["n_samples"] == 10_000 and scored["n_test"] == 10_000
    assert scored["classifier"]["version"] == 1 and scored["classifier"]["test_accuracy"] > 0.6
    assert len(scored["class_histogram"]) == 10 and abs(sum(scored["class_histogram"]) - 1) < 1e-9
    assert abs(sum(scored["test_histogram"]) - 1) < 1e-9
    assert 0 <= scored["precision"] <= 1 and 0 <= scored["recall"] <= 1
    assert scored["kid_std"] >= 0 and scored["class_kl"] >= 0 and 0 <= scored["classes_covered"] <= 10


def test_the_reference_row_is_the_floor(scored: dict[str, Any]) -> None:
    """Real training digits against the test digits: far closer than a random net's samples."""
    ref = scored["reference"]
    assert ref is not None and ref["n_samples"] == 10_000
    assert ref["fd"] < scored["fd"] / 5 and ref["kid"] < scored["kid"]
    assert ref["classes_covered"] == 10 and ref["class_kl"] < 0.2
    assert ref["precision"] > 0.5 and ref["recall"] > 0.5


def test_models_list_the_scores(client, scored: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    model = next(m for m in client.get("/models").json() if m["name"] == "sc-random")
    assert model["versions"][0]["scores"]["fd"] == pytest.approx(scored["fd"])


def test_scores_bad_input(client, worker) -> None:  # type: ignore[no-untyped-def]
    unknown = client.get("/scores", params={"model": "no-such-model"})
    assert unknown.status_code == 404
    bad_version = client.post("/scores", params={"model": "sc-random", "version": 0})
    assert bad_version.status_code == 422 and "version" in bad_version.text
    keyless = client.post("/scores", params={"model": "sc-random"}, headers={"X-API-Key": ""})
    assert keyless.status_code == 401


TINY = {"dataset": "mnist", "preset": "quick", "iterations": 20, "g_hidden": [32], "d_hidden": [16],
        "batch_size": 32, "log_every": 10, "snapshot_every": 20}


def test_curves_carry_scores_with_score_every(client, scored: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Once the dataset has a classifier, a job that scores while training logs valid_fd beside valid_ll."""
    response = client.post("/jobs", json={"model": "sc-curve", "score_every": 10, **TINY})
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    rows = client.get(f"/jobs/{job['id']}/metrics").json()
    scored_rows = [r for r in rows if "valid_ll" in r]
    assert len(scored_rows) == 2 and all(r["valid_fd"] > 0 and 0 <= r["valid_classes_covered"] <= 10
                                         for r in scored_rows)


def test_training_queues_the_scores(client, scored: dict[str, Any], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With scores_after_training on (the default; the test session turns it off), the training job queues
    the new version's scores job itself. The session's worker shares the queue, so the test trains until
    a job lands on its own worker (whose log names the job)."""
    from tests.conftest import WorkerProcess

    own = WorkerProcess(tmp_path / "worker.log", {"GANSERVE_SCORES_AFTER_TRAINING": "true"}, name="scoring")
    try:
        for _ in range(6):
            response = client.post("/jobs", json={"model": "sc-auto", **TINY})
            job = wait_for_job(client, response.json()["id"])
            assert job["status"] == "succeeded", job
            if job["id"].encode() in own.log_path.read_bytes():
                break
        else:
            pytest.skip("every training job went to the session's worker")
        version = next(v for v in client.get("/models").json() if v["name"] == "sc-auto")["latest"]
        # The worker queues the scores just after it marks the training job succeeded: poll for them.
        deadline = time.monotonic() + 30
        while True:
            queued = [j for j in client.get("/jobs", params={"model": "sc-auto"}).json()
                      if j["kind"] == "scores" and j["target_version"] == version]
            if queued or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(queued) == 1
        assert wait_for_job(client, queued[0]["id"], timeout=300)["status"] == "succeeded"
        assert client.get("/scores", params={"model": "sc-auto", "version": version}).status_code == 200
    finally:
        own.stop()
