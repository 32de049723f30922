"""`ganserve up`: the API, a training worker and an evaluation worker (plus embedded PostgreSQL/Redis when no URLs
are set). A process that dies is restarted with backoff; Ctrl-C stops all. The terminal shows the URLs and one
line per job (service/cli/board.py); each process's JSON log lines go to a file under settings.home/logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from service.cli.board import Board
from service.cli.client import Api
from service.cli.embedded import EmbeddedPostgres, EmbeddedRedis
from service.jobs.queue import EVALUATION_QUEUE, QUEUE
from service.jobs.status import JobStatus
from service.keys import new_key
from service.settings import get_settings

DEMO_JOB = {"model": "mnist", "dataset": "mnist", "preset": "quick"}


# A child that dies is started again after a delay that doubles from RESTART_MIN_S up to RESTART_MAX_S; one
# that ran RESTART_RESET_S before dying starts again at the minimum.
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
RESTART_RESET_S = 60.0
# How long a stopping child may take before its whole process group is killed.
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    """One supervised process: what it runs, the running process, and when to start it again if it died."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    # What asks it to stop. Celery workers get SIGQUIT, a cold shutdown: their main process ends the pool and
    # hands running tasks back to the queue (a training job resumes from its checkpoint on the next start).
    # SIGTERM to the whole group instead kills the pool processes under the main one, which then logs an
    # ERROR with a WorkerLostError traceback.
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    started_at: float = 0.0
    delay_s: float = RESTART_MIN_S
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        # Its own session: the terminal's Ctrl-C reaches only `ganserve up`, which stops the children in order;
        # and a process group to kill with its children (Celery's pool) if one does not stop.
        if self.log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = open(self.log_path, "ab")  # noqa: SIM115 - held for the child's lifetimes, closed in stop
        self.process = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    def supervise(self, now: float) -> None:
        """Notice a death (schedule a restart with backoff, and say so) or carry out a scheduled restart."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start()
            return
        if self.process is None or self.process.poll() is None:
            return
        if now - self.started_at >= RESTART_RESET_S:
            self.delay_s = RESTART_MIN_S
        self.restart_at = now + self.delay_s
        print(f"ganserve: the {self.name} (pid {self.process.pid}) exited with code {self.process.returncode}; "
              f"restarting it in {self.delay_s:g} s (its log: {self.log_path})", file=sys.stderr, flush=True)
        self.delay_s = min(RESTART_MAX_S, self.delay_s * 2)


@dataclass
class Stack:
    children: list[Child] = field(default_factory=list)
    services: list[object] = field(default_factory=list)

    log_dir: Path = field(default_factory=lambda: get_settings().home / "logs")

    def spawn(self, name: str, args: list[str], env: dict[str, str], stop_signal: int = signal.SIGTERM) -> Child:
        child = Child(name, args, env, self.log_dir / f"{name.replace(' ', '-').lower()}.log", stop_signal)
        child.start()
        self.children.append(child)
        return child

    def supervise(self) -> None:
        now = time.monotonic()
        for child in self.children:
            child.supervise(now)

    def stop(self) -> None:
        """Each child's main process is asked to stop (its stop_signal); whatever is left of its process group
        when it has exited, or after STOP_TIMEOUT_S, is killed."""
        # Only those still running: a pid reaped earlier may since name someone else's group.
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            child.process.send_signal(child.stop_signal)  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in running:
            process = child.process
            assert process is not None
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # the group is empty: all stopped
                pass
            process.wait()
        for child in self.children:
            if child.log is not None:
                child.log.close()
        for service in reversed(self.services):
            service.stop()  # type: ignore[attr-defined]


def start_backing_services(stack: Stack, env: dict[str, str]) -> None:
    """Fill in GANSERVE_DATABASE_URL / GANSERVE_REDIS_URL, starting embedded servers where unset."""
    settings = get_settings()
    if not settings.database_url:
        print(f"starting embedded PostgreSQL under {settings.home / 'postgres'}", flush=True)
        pg = EmbeddedPostgres(settings.home)
        stack.services.append(pg)
        env["GANSERVE_DATABASE_URL"] = pg.url
    if not settings.redis_url:
        print(f"starting embedded Redis under {settings.home / 'redis'}", flush=True)
        rd = EmbeddedRedis(settings.home)
        stack.services.append(rd)
        env["GANSERVE_REDIS_URL"] = rd.url


def ensure_api_key(env: dict[str, str]) -> str:
    """The key for POST /jobs. With none configured, one is generated once and kept in GANSERVE_HOME/api_key
    (mode 0600) so mutating endpoints are never open; the key itself is never printed or logged."""
    settings = get_settings()
    plain = settings.api_key.get_secret_value()
    if plain or settings.api_keys:
        return plain
    path = settings.home / "api_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key() + "\n")
    key = path.read_text().strip()
    env["GANSERVE_API_KEY"] = key
    print(f"API key for POST /jobs and cancel: `cat {path}` (send it as the X-API-Key header)", flush=True)
    return key


def api_command(host: str, port: int) -> list[str]:
    """The API process, as `ganserve up` runs it and `ganserve bench serve` measures it: uvloop and httptools
    (both come with uvicorn[standard]; named so a missing one fails loudly instead of falling back to the
    slower pure-Python loop and parser) and no uvicorn access log, since service.observability writes one
    JSON line per request, with its id."""
    return [sys.executable, "-m", "uvicorn", "service.main:app", "--host", host, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def worker_command(name: str, queue: str, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO",
            "-n", f"{name}@%h", "-Q", queue, f"--concurrency={concurrency}", "--pool=prefork"]


def wait_ready(base: str, api: Child, stopping: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        if api.process is not None and api.process.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.process.returncode} before it was ready; "
                               f"its log: {api.log_path}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    if not stopping():
        raise RuntimeError(f"the API at {base} did not become ready within {timeout:.0f} s; its log: {api.log_path}")


def queue_demo_job(base: str, api_key: str) -> None:
    """Queue a quick MNIST job unless an `mnist` model or job already exists."""
    with urllib.request.urlopen(f"{base}/models", timeout=10) as r:
        if any(m["name"] == "mnist" for m in json.load(r)):
            return
    with urllib.request.urlopen(f"{base}/jobs?model=mnist", timeout=10) as r:
        if any(j["status"] in (JobStatus.QUEUED, JobStatus.RUNNING) for j in json.load(r)):
            return
    request = urllib.request.Request(f"{base}/jobs", data=json.dumps(DEMO_JOB).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-API-Key": api_key})
    with urllib.request.urlopen(request, timeout=10) as r:
        job = json.load(r)
    print(f"queued a quick MNIST training job: {base}/jobs/{job['id']}", flush=True)


def up(host: str, port: int, demo: bool, workers: int = 1) -> int:
    settings = get_settings()
    env = dict(os.environ)
    stack = Stack()
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        start_backing_services(stack, env)
        api_key = ensure_api_key(env)
        base = f"http://{host}:{port}"
        print(f"logs (JSON lines, one file per process): {stack.log_dir}", flush=True)
        api = stack.spawn("API", api_command(host, port), env)
        wait_ready(base, api, lambda: stopping)  # the API ran the migrations; workers start on an up-to-date schema
        if stopping:
            return 0
        for i in range(workers):
            stack.spawn(f"worker {i + 1}", worker_command(f"worker{i + 1}", QUEUE, settings.worker_concurrency),
                        env, signal.SIGQUIT)
        # Scores never wait behind training: their own queue and worker.
        stack.spawn("evaluation worker", worker_command("evaluation", EVALUATION_QUEUE, 1), env, signal.SIGQUIT)
        if demo:
            queue_demo_job(base, api_key)
        print(f"\nganserve is up: gallery {base}/   samples {base}/samples?model=mnist&n=64   "
              f"API docs {base}/docs\nA process that dies is restarted; Ctrl-C stops everything.\n", flush=True)
        with Api(base, api_key, timeout=2.0) as client, Board(client) as board:
            while not stopping:
                stack.supervise()  # a killed worker's job resumes from its checkpoint once it is back
                board.refresh()
                time.sleep(0.5)
        return 0
    except RuntimeError as exc:
        print(f"ganserve: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping ganserve…", flush=True)
        stack.stop()
