"""`ganserve up` with no URLs: embedded PostgreSQL and Redis, the API and a worker, the logs in files and a
status board on the terminal; Ctrl-C leaves nothing behind and prints no traceback."""

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
        # Wait for the worker to be up too (its log is a file), then record every process the command started.
        worker_log = tmp_path / "home" / "logs" / "worker.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (worker_log.exists() and b" ready." in worker_log.read_bytes()):
            time.sleep(0.5)
        assert worker_log.exists() and b" ready." in worker_log.read_bytes(), (tmp_path / "up.log").read_text()
        board = (tmp_path / "up.log").read_text()
        assert f"http://127.0.0.1:{port}/" in board and str(tmp_path / "home" / "logs") in board
        assert '"level"' not in board  # the JSON log lines went to the files, not the terminal
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
    assert up.returncode == 0
    output = (tmp_path / "up.log").read_text()
    assert "Traceback" not in output and "stopping ganserve" in output, output
    worker = (tmp_path / "home" / "logs" / "worker.log").read_text()
    assert "WorkerLostError" not in worker and "Traceback" not in worker, worker[-3000:]
