"""The real stack for the tests: PostgreSQL, Redis and Celery worker processes.

With GANSERVE_DATABASE_URL / GANSERVE_REDIS_URL set (CI) the tests use those servers; otherwise they start
the embedded ones under a temporary GANSERVE_HOME. Nothing is mocked: no eager Celery, no fake database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_API_KEY = "test-key-not-secret"
_embedded: list[Any] = []


def pytest_configure(config: pytest.Config) -> None:
    """Fix the environment before any service module reads its settings."""
    home = Path(tempfile.mkdtemp(prefix="ganserve-test-"))
    os.environ.setdefault("GANSERVE_HOME", str(home))
    # Real datasets are shared with `make run` (the default data folder), not refetched per test run.
    os.environ.setdefault("GANSERVE_DATA_DIR", str(Path.home() / ".ganserve" / "data"))
    os.environ.setdefault("GANSERVE_CACHE_DIR", str(home / "cache"))
    os.environ["GANSERVE_HEARTBEAT_S"] = "0.5"
    # Mutating endpoints always need a key; the `client` fixture sends this one.
    os.environ.setdefault("GANSERVE_API_KEY", TEST_API_KEY)
    # Tests fire many sample requests from one client: no rate limit unless a test turns it on.
    os.environ.setdefault("GANSERVE_SAMPLE_RATE_PER_S", "0")
    os.environ.setdefault("GANSERVE_SAMPLE_COST_PER_S", "0")
    # Scoring every throwaway model would train MNIST's classifier (minutes) and hold the one worker: tests ask
    # for scores with POST /scores; tests/service/api/test_scores.py runs the automatic path with its own worker.
    # The classifier the tests train is a small one (seconds): its accuracy is the bench's to measure.
    os.environ.setdefault("GANSERVE_SCORES_AFTER_TRAINING", "false")
    os.environ.setdefault("GANSERVE_CLASSIFIER_EPOCHS", "1")
    os.environ.setdefault("GANSERVE_CLASSIFIER_TRAIN_EXAMPLES", "4000")
    os.environ.setdefault("GANSERVE_CLASSIFIER_HELD_OUT", "500")
    from service.cli.embedded import EmbeddedPostgres, EmbeddedRedis

    if not os.environ.get("GANSERVE_DATABASE_URL"):
        pg = EmbeddedPostgres(home)
        _embedded.append(pg)
        os.environ["GANSERVE_DATABASE_URL"] = pg.url
    if not os.environ.get("GANSERVE_REDIS_URL"):
        rd = EmbeddedRedis(home)
        _embedded.append(rd)
        os.environ["GANSERVE_REDIS_URL"] = rd.url


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in reversed(_embedded):
        server.stop()


def reset_state() -> None:
    """An empty schema at head and an empty broker database."""
    import redis
    from sqlalchemy import text

    from service.db.engine import get_engine, migrate
    from service.settings import get_settings

    with get_engine().begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate()
    redis.Redis.from_url(get_settings().redis_url).flushdb()


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    reset_state()
    yield


class WorkerProcess:
    """`celery worker` as a child process in its own process group, so a test can kill it for real."""

    def __init__(self, log_path: Path, extra_env: dict[str, str] | None = None, app: str = "worker.celery_app",
                 name: str = "worker", cpus: set[int] | None = None, wait: bool = True,
                 queues: str = "celery,evaluation") -> None:
        self.log_path = log_path
        self.log = open(log_path, "wb")
        env = {**os.environ, **(extra_env or {})}
        # app: a test may load a variant module that wraps the real app (e.g. one that crashes on export);
        # name: distinct node names when a test runs several workers; cpus: pin the worker and the pool
        # processes it forks (the trainer sizes its torch threads to the CPUs it may use, and tiny nets crawl
        # when two threads fight other processes for 2 cores).
        pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus and shutil.which("taskset") else []
        self.process = subprocess.Popen(
            [*pin, sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel=INFO", "-n", f"{name}@%h",
             "--concurrency=1", "--pool=prefork", "--without-gossip", "--without-mingle", "-Q", queues],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:  # wait=False: the caller starts several at once, then calls wait_ready() on each
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group: the parent and its pool child die without any cleanup."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture(scope="session")
def worker(stack: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(stack: None) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.main import app

    with TestClient(app, headers={"X-API-Key": os.environ["GANSERVE_API_KEY"]}) as test_client:
        yield test_client


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(stack: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real API as a uvicorn subprocess on a free port, with the tests' environment; yields its base URL.
    For clients that need a socket (a browser), which the in-process TestClient cannot give."""
    import httpx

    port = free_port()
    log_path = tmp_path_factory.mktemp("live_server") / "uvicorn.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port),
         # Open event streams must not hold the shutdown at the end of the session.
         "--timeout-graceful-shutdown", "3"],
        cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn not up within 60 s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def wait_for_job(client: Any, job_id: str, timeout: float = 300.0,
                 until: tuple[str, ...] = ("succeeded", "failed", "cancelled")) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout} s: {job}")


def mnist_available() -> bool:
    from models import datasets
    from service.settings import get_settings

    try:
        datasets.load("mnist", get_settings().resolved_data_dir)
        return True
    except datasets.DatasetError:
        return False
