"""Redis only delivers: it can be down, restarted or flushed mid-job, and every job still finishes."""

from __future__ import annotations

import redis

from tests.faults.conftest import TINY, FaultStack, log_events, wait_until


def _job_count(stack: FaultStack) -> int:
    return int(stack.scalar("SELECT count(*) FROM jobs"))


def test_broker_down_is_503_with_retry_after_and_nothing_is_queued(fault_stack: FaultStack) -> None:
    before = _job_count(fault_stack)
    fault_stack.redis.stop()
    try:
        response = fault_stack.http.post("/jobs", json={"model": "no-broker", **TINY})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) > 0
        assert _job_count(fault_stack) == before  # the row was taken back: a 503 means nothing happened
        ready = fault_stack.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] != "ok"
        assert fault_stack.http.get("/jobs").status_code == 200  # reads do not need the broker
    finally:
        fault_stack.redis.start()
    wait_until(lambda: fault_stack.http.get("/readyz").status_code == 200, 30, "readiness after Redis")
    assert fault_stack.http.post("/jobs", json={"model": "no-broker", **TINY, "iterations": 1}).status_code == 202


def _two_jobs(stack: FaultStack, model: str) -> tuple[str, str]:
    """A running job and one waiting behind it in the queue (the only worker is busy)."""
    running = stack.post_job(model, iterations=1500)["id"]
    wait_until(lambda: stack.job(running)["iteration"] > 0, 60, "the first job to train")
    waiting = stack.post_job(model, iterations=200)["id"]
    assert stack.job(waiting)["status"] == "queued"
    return running, waiting


def test_jobs_finish_across_a_redis_restart(fault_stack: FaultStack) -> None:
    fault_stack.worker("a")
    running, waiting = _two_jobs(fault_stack, "redis-restart")
    fault_stack.redis.stop()
    fault_stack.redis.start()  # the append-only file brings the waiting message back
    for job_id in (running, waiting):
        job = fault_stack.wait_job(job_id, timeout=120)
        assert job["status"] == "succeeded", job
    assert fault_stack.scalar("SELECT count(*) FROM model_versions WHERE name = 'redis-restart'") == 2


def test_jobs_finish_after_redis_is_flushed_and_restarted(fault_stack: FaultStack) -> None:
    fault_stack.worker("a")
    running, waiting = _two_jobs(fault_stack, "redis-flush")
    redis.Redis.from_url(fault_stack.redis.url).flushall()  # every message is gone
    fault_stack.redis.stop()
    fault_stack.redis.start()
    for job_id in (running, waiting):
        job = fault_stack.wait_job(job_id, timeout=120)
        assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert fault_stack.scalar("SELECT count(*) FROM model_versions WHERE name = 'redis-flush'") == 2
    resent = [e for e in log_events(fault_stack.api.log_path)
              if e["message"] == "re-dispatching a queued job the broker lost" and e.get("job_id") == waiting]
    assert resent, "the reconciler did not re-send the lost message"
