"""`ganserve up` with no URLs: embedded PostgreSQL and Redis, the API and a worker; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from service.cli.embedded import free_port

REPO = Path(__file__).resolve().parents[3]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def test_up_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GANSERVE_DATABASE_URL", "GANSERVE_REDIS_URL")}
    env["GANSERVE_HOME"] = str(tmp_path / "home")
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen([sys.executable, "-m", "service.cli", "up", "--port", str(port)], cwd=REPO, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and not ready:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.5)
        assert ready, (tmp_path / "up.log").read_text()
        # Wait for the worker to be up too, then record every process the command started.
        worker_log = tmp_path / "home" / "logs" / "worker-1.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b" ready." not in _read(worker_log):
            time.sleep(0.5)
        assert b" ready." in _read(worker_log), (tmp_path / "up.log").read_text()
        # pgserver's postgres is daemonized (not our child): find it by its data directory.
        seen = {p.pid for p in _descendants(up.pid)}
        seen |= {p.pid for p in psutil.process_iter(["cmdline"])
                 if str(tmp_path / "home") in " ".join(p.info["cmdline"] or [])}
        assert len(seen) >= 4, f"expected postgres, redis, api and worker processes, saw {len(seen)}"
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            pytest.fail("ganserve up did not stop within 60 s of Ctrl-C")
        log.close()
    time.sleep(1)
    alive = [pid for pid in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


def test_a_worker_killed_under_up_is_restarted_and_its_job_finishes_once(tmp_path: Path) -> None:
    """SIGKILL the training worker's process group mid-job, as the out-of-memory killer would: `ganserve up`
    says so and starts it again, the API keeps answering, and the job resumes from its checkpoint to one
    version."""
    import httpx

    from tests.conftest import mnist_available

    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist`")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GANSERVE_DATABASE_URL", "GANSERVE_REDIS_URL")}
    env.update(GANSERVE_HOME=str(tmp_path / "home"), GANSERVE_LEASE_TIMEOUT_S="3", GANSERVE_RECONCILE_INTERVAL_S="1",
               GANSERVE_HEARTBEAT_S="0.5", GANSERVE_PARZEN_AFTER_TRAINING="false")
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")
    up = subprocess.Popen([sys.executable, "-m", "service.cli", "up", "--port", str(port)], cwd=REPO, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers={"X-API-Key": env["GANSERVE_API_KEY"]})

    def until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert up.poll() is None, log_path.read_text()[-3000:]
            try:
                value = predicate()
            except httpx.TransportError:
                value = None
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()[-3000:]}")

    def trainer() -> psutil.Process | None:
        return next((p for p in psutil.Process(up.pid).children() if "worker1@" in " ".join(p.cmdline())), None)

    try:
        logs = tmp_path / "home" / "logs"
        until(lambda: all(b" ready." in _read(logs / name) for name in ("worker-1.log", "evaluation-worker.log")),
              180, "both workers")
        # Long enough to be still running when its worker is killed: these tiny nets train at hundreds of
        # iterations a second on an idle machine.
        body = {"model": "supervised", "preset": "quick", "iterations": 20000, "g_hidden": [32], "d_hidden": [16],
                "batch_size": 16, "checkpoint_seconds": 1, "log_every": 50, "snapshot_every": 1000}
        job_id = api.post("/jobs", json=body).json()["id"]
        until(lambda: api.get(f"/jobs/{job_id}").json()["iteration"] >= 100, 120, "the job to get going")
        time.sleep(1.5)                                           # a checkpoint written (every second)
        killed = trainer()
        assert killed is not None
        os.killpg(killed.pid, signal.SIGKILL)
        until(lambda: b"restarting it in" in log_path.read_bytes(), 30, "the restart line")
        assert api.get("/healthz").status_code == 200             # the API stayed up
        until(lambda: (t := trainer()) is not None and t.pid != killed.pid, 30, "a new worker")
        job = until(lambda: (j := api.get(f"/jobs/{job_id}").json())["status"] in ("succeeded", "failed") and j,
                    240, "the job to finish")
        assert job["status"] == "succeeded" and job["attempts"] >= 2, job
        models = {m["name"]: m for m in api.get("/models").json()}
        assert len(models["supervised"]["versions"]) == 1, models["supervised"]
    finally:
        api.close()
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
