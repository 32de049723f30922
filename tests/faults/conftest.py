"""Throwaway stacks for the fault tests: their own PostgreSQL and Redis (the machine's shared servers are never
stopped), the API as a uvicorn subprocess and Celery workers as real processes that can be killed.

Timings are shrunk (lease timeout 3 s, reconciler every 1 s) so a fault is noticed in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from service.cli.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from service.db.engine import sqlalchemy_url
from tests.conftest import REPO, TEST_API_KEY, WorkerProcess, mnist_available

FAST = {
    "GANSERVE_HEARTBEAT_S": "0.5",
    "GANSERVE_LEASE_TIMEOUT_S": "3",
    "GANSERVE_RECONCILE_INTERVAL_S": "1",
    "GANSERVE_RECONCILE_QUEUED_AFTER_S": "2",
    "GANSERVE_SAMPLE_RATE_PER_S": "0",
    "GANSERVE_SAMPLE_COST_PER_S": "0",
    "GANSERVE_API_KEY": TEST_API_KEY,
    # Each test counts its own jobs: no automatic Parzen evaluation after a training job.
    "GANSERVE_PARZEN_AFTER_TRAINING": "false",
}
# A tiny generator on real MNIST: a few seconds of training, a checkpoint every second.
TINY = {"dataset": "mnist", "preset": "quick", "iterations": 3000, "g_hidden": [32], "d_hidden": [16],
        "batch_size": 16, "checkpoint_seconds": 1, "log_every": 50, "snapshot_every": 1000}


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a process (Celery's banner and other plain lines are skipped)."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def restore_dump(url: str, dump: Path) -> None:
    """psql < the dump: the embedded server's own client when it has one, else the machine's."""
    import gzip
    import shutil

    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    psql = str(bundled) if bundled.exists() else shutil.which("psql") or "psql"
    # pg_dump 15.14+ wraps a dump in \restrict … \unrestrict, which older clients do not know; the dump is
    # ours, so the guard is dropped.
    sql = b"\n".join(line for line in gzip.decompress(dump.read_bytes()).split(b"\n")
                     if not line.startswith((b"\\restrict", b"\\unrestrict")))
    result = subprocess.run([psql, "-v", "ON_ERROR_STOP=1", "-q", url], input=sql, capture_output=True,
                            timeout=120, check=False)
    if result.returncode:
        raise RuntimeError(f"restoring {dump} failed: {result.stderr.decode(errors='replace')[-3000:]}")


class ApiProcess:
    """`uvicorn service.main:app` in its own process group (so its reconciler runs for real)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--timeout-graceful-shutdown", "3"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._ready, 60, f"the API to answer:\n{log_path}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


class FaultStack:
    def __init__(self, root: Path, restore: Path | None = None, **settings: str) -> None:
        """restore: a gzipped plain-SQL dump loaded before the API starts (and migrates it to head)."""
        self.root = root
        self.pg = EmbeddedPostgres(root)
        self.redis = EmbeddedRedis(root)
        if restore is not None:
            restore_dump(self.pg.url, restore)
        self.env = {**os.environ, **FAST, **settings, "GANSERVE_HOME": str(root),
                    "GANSERVE_CACHE_DIR": str(root / "cache"), "GANSERVE_DATABASE_URL": self.pg.url,
                    "GANSERVE_REDIS_URL": self.redis.url}
        # NullPool: the test's own queries must not reuse connections across a PostgreSQL restart.
        self.engine: Engine = create_engine(sqlalchemy_url(self.pg.url), poolclass=NullPool)
        self.api = ApiProcess(self.env, root / "api.log")
        self.http = httpx.Client(base_url=self.api.url, timeout=30, headers={"X-API-Key": TEST_API_KEY})
        self.workers: list[WorkerProcess] = []
        self._started = 0

    def worker(self, name: str, app: str = "worker.celery_app", queues: str = "celery,evaluation",
               **settings: str) -> WorkerProcess:
        return self.start_workers(name, app=app, queues=queues, **settings)[0]

    def start_workers(self, *names: str, app: str = "worker.celery_app", queues: str = "celery,evaluation",
                      **settings: str) -> list[WorkerProcess]:
        """Real `celery worker` processes, started together (each takes seconds to import torch)."""
        started = []
        for name in names:
            self._started += 1  # a fresh log per worker, even when a later test reuses the name
            # One CPU per worker, alternating: tiny nets on a busy 2-core machine train ~5x faster with one
            # torch thread each than with two threads per worker fighting over the cores.
            cpus = sorted(os.sched_getaffinity(0))
            started.append(WorkerProcess(self.root / f"{name}-{self._started}.log", {**self.env, **settings},
                                         app=app, name=name, cpus={cpus[self._started % len(cpus)]}, wait=False,
                                         queues=queues))
        self.workers.extend(started)
        for proc in started:
            proc.wait_ready()
        return started

    def post_job(self, model: str, **overrides: Any) -> dict[str, Any]:
        response = self.http.post("/jobs", json={"model": model, **TINY, **overrides})
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id}).mappings().one()
        return dict(row)

    def wait_job(self, job_id: str, until: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
                 timeout: float = 120) -> dict[str, Any]:
        return wait_until(lambda: (job := self.job(job_id))["status"] in until and job, timeout,
                          f"job {job_id} to reach {until}", every=0.2)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def stop_workers(self) -> None:
        """SIGKILL: instant, and a worker dying mid-job is exactly what the stack must shrug off."""
        for proc in self.workers:
            proc.kill()
            proc.log.close()
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        self.http.close()
        self.api.stop()
        self.engine.dispose()
        self.redis.stop()
        self.pg.stop()


def _new_stack(tmp_path_factory: pytest.TempPathFactory, name: str) -> FaultStack:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    return FaultStack(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = _new_stack(tmp_path_factory, "faults")
    yield stack
    stack.close()


@pytest.fixture()
def fault_stack(shared_stack: FaultStack) -> Iterator[FaultStack]:
    """The shared throwaway stack; the workers a test starts die at its end, so none lingers into the next.
    (Tests that take PostgreSQL down use their own: `own_stack`.)"""
    yield shared_stack
    shared_stack.stop_workers()


@pytest.fixture()
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    stack = _new_stack(tmp_path_factory, "own")
    yield stack
    stack.close()
