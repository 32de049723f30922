"""`ganserve up`: the API and one worker (plus embedded PostgreSQL/Redis when no URLs are set); Ctrl-C stops all.

The terminal shows the URLs and a status board of the jobs (service/cli/board.py); the processes' JSON logs go
to GANSERVE_HOME/logs/, one file each."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service.cli.board import Board
from service.cli.embedded import EmbeddedPostgres, EmbeddedRedis
from service.jobs.status import JobStatus
from service.keys import new_key
from service.settings import get_settings

DEMO_JOB = {"model": "mnist", "dataset": "mnist", "preset": "quick"}
BOARD_REFRESH_S = 1.0


@dataclass
class Stack:
    logs: Path
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services: list[object] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child writing to logs/<name>.log. Each leads its own session: the terminal's Ctrl-C reaches
        only `ganserve up`, which stops the children in order."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            child = subprocess.Popen(args, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.children.append(child)
        return child

    def stop(self) -> None:
        # SIGTERM to each child alone: Celery's main process then stops its pool itself (a signal to the whole
        # group would kill the pool under it: a WorkerLostError in the log). The group is killed only on timeout.
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 20
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # anything the child left in its group
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


def wait_ready(base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the API at {base} did not become ready within {timeout:.0f} s")


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
    stack = Stack(settings.home / "logs")

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # leaves any wait at once; caught below, so no traceback

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        start_backing_services(stack, env)
        api_key = ensure_api_key(env)
        base = f"http://{host}:{port}"
        stack.spawn("api", api_command(host, port), env)
        wait_ready(base)  # the API ran the migrations; workers start on an up-to-date schema
        for i in range(workers):
            stack.spawn(f"worker-{i}" if i else "worker",
                        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO",
                         f"--concurrency={settings.worker_concurrency}", "--pool=prefork"], env)
        if demo:
            queue_demo_job(base, api_key)
        print(f"\nganserve is up\n  gallery   {base}/\n  samples   {base}/samples?model=mnist&n=64\n"
              f"  API docs  {base}/docs\n  logs      {stack.logs}/ (JSON lines: api.log, worker.log)\n"
              f"Ctrl-C stops everything.\n", flush=True)
        return watch(stack, base, api_key)
    except KeyboardInterrupt:
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the shutdown short
            signal.signal(signum, signal.SIG_IGN)
        print("stopping ganserve…", flush=True)
        stack.stop()


def watch(stack: Stack, base: str, api_key: str) -> int:
    """The status board until Ctrl-C (KeyboardInterrupt) or a child exits (1)."""
    with Board(base, api_key) as board:
        while True:
            if any(child.poll() is not None for child in stack.children):
                print(f"a ganserve process exited; stopping the rest (see {stack.logs}/)", file=sys.stderr,
                      flush=True)
                return 1
            board.update()
            time.sleep(BOARD_REFRESH_S)
