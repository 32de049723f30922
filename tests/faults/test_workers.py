"""Worker faults on a real stack: kill -9 mid-training, a message delivered twice, cancel, a crash in export."""

from __future__ import annotations

import time
from datetime import datetime

import redis

from tests.faults.conftest import FaultStack, log_events, wait_until


def _claims(stack: FaultStack, job_id: str) -> list[tuple[str, datetime]]:
    """(worker name, when) of every successful claim of the job, from the workers' JSON logs."""
    claims = []
    for proc in stack.workers:
        for event in log_events(proc.log_path):
            if event.get("job_id") == job_id and event["message"].startswith("claimed the job"):
                claims.append((proc.log_path.stem, datetime.fromisoformat(event["ts"])))
    return sorted(claims, key=lambda c: c[1])


def _versions(stack: FaultStack, model: str) -> int:
    return int(stack.scalar("SELECT count(*) FROM model_versions WHERE name = :n", n=model))


def test_kill_9_mid_training_resumes_elsewhere_from_the_checkpoint(fault_stack: FaultStack) -> None:
    ITERATIONS = 20_000
    a, b = fault_stack.start_workers("a", "b")
    # Long enough that the owner is still training when it is killed, even on an idle machine (~1,000 it/s).
    job_id = fault_stack.post_job("killed", iterations=ITERATIONS)["id"]
    checkpoint = f"checkpoints/{job_id}.pt"
    # Mid-training: a checkpoint exists and the run is far from done.
    wait_until(lambda: fault_stack.scalar("SELECT count(*) FROM blobs WHERE key = :k", k=checkpoint), 60,
               "the first checkpoint")
    owner_name = _claims(fault_stack, job_id)[0][0]
    owner, survivor = (a, b) if owner_name == a.log_path.stem else (b, a)
    at_kill = fault_stack.job(job_id)
    assert at_kill["status"] == "running" and 0 < at_kill["iteration"] < ITERATIONS
    owner.kill()
    killed_at = datetime.now().astimezone()

    job = fault_stack.wait_job(job_id, timeout=300)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2 and job["iteration"] == ITERATIONS
    assert _versions(fault_stack, "killed") == 1
    # Never twice at once: the survivor claimed only after the owner was dead, and only once.
    claims = _claims(fault_stack, job_id)
    assert [name for name, _ in claims] == [owner_name, survivor.log_path.stem]
    assert claims[1][1] > killed_at
    resumed = [e for e in log_events(survivor.log_path) if "resuming from its checkpoint" in e["message"]]
    assert resumed, "the survivor did not resume from the checkpoint"
    # The checkpoint is dropped in the transaction that registered the version.
    assert fault_stack.scalar("SELECT count(*) FROM blobs WHERE key = :k", k=checkpoint) == 0


def test_the_same_message_delivered_twice_runs_once(fault_stack: FaultStack) -> None:
    broker = redis.Redis.from_url(fault_stack.redis.url)
    job_id = fault_stack.post_job("twice", iterations=600)["id"]  # no worker yet: the message waits
    messages = broker.lrange("celery", 0, -1)
    original = next(m for m in messages if job_id.encode() in m)
    broker.lpush("celery", original)  # the very same message (same task id), a second time
    fault_stack.start_workers("a", "b")  # both idle: each takes one copy at once

    job = fault_stack.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert _versions(fault_stack, "twice") == 1
    assert len(_claims(fault_stack, job_id)) == 1
    seen = [e["message"] for proc in fault_stack.workers for e in log_events(proc.log_path)
            if e.get("job_id") == job_id]
    assert any(m.startswith(("duplicate delivery", "nothing to do")) for m in seen), seen


def test_cancel_mid_training_frees_the_worker_for_the_next_job(fault_stack: FaultStack) -> None:
    fault_stack.worker("a")
    long_job = fault_stack.post_job("cancelled", iterations=1_000_000)["id"]
    checkpoint = f"checkpoints/{long_job}.pt"
    wait_until(lambda: fault_stack.scalar("SELECT count(*) FROM blobs WHERE key = :k", k=checkpoint), 60,
               "the first checkpoint")
    asked = time.monotonic()
    response = fault_stack.http.post(f"/jobs/{long_job}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    job = fault_stack.wait_job(long_job, timeout=30)
    cancel_seconds = time.monotonic() - asked
    assert job["status"] == "cancelled" and job["lease_token"] is None, job
    assert cancel_seconds < 5, f"cancel took {cancel_seconds:.1f} s"
    assert _versions(fault_stack, "cancelled") == 0
    # Nothing will resume a cancelled job: the reconciler deletes its checkpoint.
    wait_until(lambda: not fault_stack.scalar("SELECT count(*) FROM blobs WHERE key = :k", k=checkpoint), 30,
               "the cancelled job's checkpoint to be deleted")

    next_job = fault_stack.post_job("after-cancel", iterations=300)["id"]
    assert fault_stack.wait_job(next_job, timeout=60)["status"] == "succeeded"
    print(f"\ncancel → cancelled in {cancel_seconds:.2f} s")


def test_a_crash_during_export_registers_nothing_and_the_retry_succeeds(fault_stack: FaultStack) -> None:
    crashing = fault_stack.worker("crashing", app="tests.faults.crashing_app")
    job_id = fault_stack.post_job("export-crash", iterations=300)["id"]
    marker = fault_stack.root / "export-crashed"
    wait_until(marker.exists, 60, "the export crash")
    crashing.kill()  # keep the retry away from the crashing worker
    # Nothing half-served: no version row, no artifact, and the API has nothing to sample.
    assert fault_stack.job(job_id)["status"] == "running"
    assert _versions(fault_stack, "export-crash") == 0
    assert fault_stack.scalar("SELECT count(*) FROM blobs WHERE key LIKE 'models/export-crash/%'") == 0
    assert fault_stack.http.get("/samples", params={"model": "export-crash"}).status_code == 404

    fault_stack.worker("healthy")
    job = fault_stack.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert _versions(fault_stack, "export-crash") == 1
    response = fault_stack.http.get("/samples", params={"model": "export-crash", "n": 4, "seed": 1})
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_a_job_over_its_time_limit_fails_with_a_clear_error(fault_stack: FaultStack) -> None:
    fault_stack.worker("limited", GANSERVE_JOB_TIME_LIMIT_S="2")
    job_id = fault_stack.post_job("too-slow", iterations=1_000_000)["id"]
    job = fault_stack.wait_job(job_id, timeout=60)
    assert job["status"] == "failed" and "time limit exceeded" in job["error"], job
    assert _versions(fault_stack, "too-slow") == 0


def test_a_score_arrives_while_a_long_training_job_runs(fault_stack: FaultStack) -> None:
    """Evaluation has its own queue and worker: a Parzen job is not stuck behind training."""
    import subprocess
    import sys

    from tests.conftest import REPO

    fault_stack.worker("trainer", queues="celery")
    fault_stack.worker("evaluator", queues="evaluation")
    training = fault_stack.post_job("long-training", iterations=2_000_000, checkpoint_seconds=30)
    wait_until(lambda: fault_stack.job(training["id"])["status"] == "running", 60, "training to start")
    subprocess.run([sys.executable, "-c", "from tests.factories import register_model; register_model('scored')"],
                   cwd=REPO, env=fault_stack.env, check=True, capture_output=True, timeout=120)
    response = fault_stack.http.post("/jobs", json={"kind": "parzen", "model": "scored"})
    assert response.status_code == 202, response.text
    score = fault_stack.wait_job(response.json()["id"], timeout=120)
    assert score["status"] == "succeeded", score
    assert fault_stack.job(training["id"])["status"] == "running"   # it did not wait for training to end
    fault_stack.http.post(f"/jobs/{training['id']}/cancel")
