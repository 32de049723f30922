"""PostgreSQL down: the API answers 503 + Retry-After (never a 500 with a trace) and /readyz fails; once it is
back, the same API and worker processes recover on their own and the interrupted job finishes."""

from __future__ import annotations

import time

from tests.faults.conftest import TINY, FaultStack, wait_until


def test_postgres_down_is_503_and_everything_recovers_without_restarts(own_stack: FaultStack) -> None:
    fault_stack = own_stack
    worker = fault_stack.worker("a")
    api_pid = fault_stack.api.process.pid
    job_id = fault_stack.post_job("pg-down", iterations=2500)["id"]
    wait_until(lambda: fault_stack.scalar("SELECT count(*) FROM blobs WHERE key = :k",
                                          k=f"checkpoints/{job_id}.pt"), 60, "the first checkpoint")
    fault_stack.pg.stop()
    stopped = time.monotonic()
    try:
        for method, path in (("GET", "/jobs"), ("GET", f"/jobs/{job_id}"), ("GET", "/models"),
                             ("POST", "/jobs"), ("GET", "/samples?model=pg-down")):
            response = fault_stack.http.request(method, path, json={"model": "pg-down", **TINY}
                                                if method == "POST" else None)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert int(response.headers["retry-after"]) > 0
            assert "Traceback" not in response.text
        ready = fault_stack.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
        assert fault_stack.http.get("/healthz").status_code == 200  # alive, just not ready
        metrics = fault_stack.http.get("/metrics")
        assert metrics.status_code == 200 and 'ganserve_dependency_up{dependency="database"} 0.0' in metrics.text
        time.sleep(max(0.0, 3 - (time.monotonic() - stopped)))  # an outage longer than the lease timeout
    finally:
        fault_stack.pg.start()
    restarted = time.monotonic()
    wait_until(lambda: fault_stack.http.get("/readyz").status_code == 200, 30, "readiness after PostgreSQL")
    ready_after = time.monotonic() - restarted

    job = fault_stack.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    assert fault_stack.scalar("SELECT count(*) FROM model_versions WHERE name = 'pg-down'") == 1
    follow_up = fault_stack.post_job("pg-down", iterations=200)["id"]
    assert fault_stack.wait_job(follow_up, timeout=60)["status"] == "succeeded"
    # Recovered in place: the very same processes.
    assert fault_stack.api.process.pid == api_pid and fault_stack.api.process.poll() is None
    assert worker.process.poll() is None
    print(f"\nPostgreSQL back: /readyz green after {ready_after:.2f} s; interrupted job finished "
          f"(attempts={job['attempts']})")
