"""What `ganserve up` shows and where its processes log: the URLs and a line per job on its own output, each
process's JSON lines in a file under GANSERVE_HOME/logs, and Ctrl-C mid-job ends everything with exit 0 and
no traceback (the training worker hands its task back instead of losing it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.cli.embedded import free_port
from tests.conftest import REPO, mnist_available

# Tiny nets, many iterations: still running when Ctrl-C comes.
JOB = {"model": "up-status", "preset": "quick", "iterations": 20000, "g_hidden": [32], "d_hidden": [16],
       "batch_size": 16, "log_every": 50, "checkpoint_seconds": 1, "snapshot_every": 5000}


def _until(predicate, timeout: float, what: str, up: subprocess.Popen[bytes], out: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert up.poll() is None, out.read_text()
        try:
            if value := predicate():
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{out.read_text()[-3000:]}")


def _json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_up_shows_urls_and_job_lines_logs_to_files_and_ctrl_c_mid_job_exits_cleanly(tmp_path: Path) -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist`")
    port, home = free_port(), tmp_path / "home"
    # Its own embedded PostgreSQL and Redis (no URLs given), as `make run` has: the suite's own worker, on the
    # shared test broker, would otherwise take the job.
    env = {**{k: v for k, v in os.environ.items() if k not in ("GANSERVE_DATABASE_URL", "GANSERVE_REDIS_URL")},
           "GANSERVE_HOME": str(home), "GANSERVE_PARZEN_AFTER_TRAINING": "false"}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        up = subprocess.Popen([sys.executable, "-m", "service.cli", "up", "--port", str(port)], cwd=REPO, env=env,
                              stdout=stdout, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    job_id: str | None = None
    try:
        _until(lambda: "ganserve is up" in out.read_text(), 120, "the URLs", up, out)
        with httpx.Client(base_url=base, timeout=10, headers={"X-API-Key": env["GANSERVE_API_KEY"]}) as api:
            job_id = api.post("/jobs", json=JOB).json()["id"]
            line = _until(lambda: next((ln for ln in out.read_text().splitlines()
                                        if ln.startswith(f"job {job_id[:8]}") and "running" in ln), None),
                          120, "the job's running line", up, out)
            _until(lambda: api.get(f"/jobs/{job_id}").json()["iteration"] >= 200, 60, "iterations", up, out)
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
    text = out.read_text() + err.read_text()
    assert f"gallery {base}/" in text and f"API docs {base}/docs" in text
    assert "up-status" in line and "[" in line and f"/{JOB['iterations']}" in line, line
    logs = home / "logs"
    assert f"logs (JSON lines, one file per process): {logs}" in text
    assert "Traceback" not in text and "ERROR" not in text, text
    assert '{"ts"' not in text                    # the JSON lines went to the files, not the terminal
    api_lines, worker_lines = _json_lines(logs / "api.log"), _json_lines(logs / "worker-1.log")
    assert any(r.get("path") == "/jobs" and r.get("method") == "POST" for r in api_lines), api_lines[-5:]
    assert any(r.get("job_id") == job_id for r in worker_lines), worker_lines[-5:]
    assert (logs / "evaluation-worker.log").exists()
    worker_text = (logs / "worker-1.log").read_text()
    assert "WorkerLostError" not in worker_text and "Traceback" not in worker_text, worker_text[-3000:]
