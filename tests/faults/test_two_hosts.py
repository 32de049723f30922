"""Two hosts: network namespaces A and B (ip netns, veth pairs to this one), each running an API and a worker;
PostgreSQL and Redis run here and are reached over TCP from both. A job posted to A trains on B's worker;
B's worker is killed mid-job and A's resumes it; both APIs serve the version. Each host has its own
GANSERVE_HOME and cache, so the artifact travels only through the database.
Skipped, saying why, where namespaces cannot be made (not root, no `ip`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.cli.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from tests.conftest import REPO, TEST_API_KEY, mnist_available
from tests.faults.conftest import FAST, TINY, log_events, wait_until


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=10)


class Hosts:
    """Namespaces host-a (10.217.1.2) and host-b (10.217.2.2), each on a veth pair to this namespace."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.names = {"a": f"gsa-{tag}", "b": f"gsb-{tag}"}
        self.addr: dict[str, str] = {}
        self.gateway: dict[str, str] = {}
        for i, (host, ns) in enumerate(self.names.items(), start=1):
            _ip("netns", "add", ns)
            outer, inner = f"v{host}o{tag}", f"v{host}i{tag}"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("addr", "add", f"10.217.{i}.1/24", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("addr", "add", f"10.217.{i}.2/24", "dev", inner, netns=ns)
            _ip("link", "set", inner, "up", netns=ns)
            _ip("link", "set", "lo", "up", netns=ns)
            self.addr[host], self.gateway[host] = f"10.217.{i}.2", f"10.217.{i}.1"

    def close(self) -> None:
        for ns in self.names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)  # drops its veth too


def _namespaces_allowed() -> str | None:
    if shutil.which("ip") is None:
        return "no `ip` command"
    if shutil.which("socat") is None:
        return "no `socat` to forward PostgreSQL's socket over TCP"
    probe = f"gsprobe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    if made.returncode:
        return f"network namespaces are not permitted here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path, netns: str | None = None) -> None:
        self.log_path = log
        self._log = open(log, "wb")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.process = subprocess.Popen([*prefix, *args], cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


@pytest.fixture()
def two_hosts(tmp_path: Path) -> Iterator[dict[str, Any]]:
    why = _namespaces_allowed()
    if why:
        pytest.skip(why)
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist`")
    procs: list[Proc] = []
    pg = EmbeddedPostgres(tmp_path / "db")
    redis = EmbeddedRedis(tmp_path / "db")
    hosts = Hosts()
    try:
        pg_port, redis_port = free_port(), free_port()
        socket_dir = pg.url.split("host=")[1].split("&")[0]
        # Both servers, as a network sees them: TCP on every address of this namespace.
        procs.append(Proc(["socat", f"TCP-LISTEN:{pg_port},fork,reuseaddr",
                           f"UNIX-CONNECT:{socket_dir}/.s.PGSQL.5432"], dict(os.environ), tmp_path / "socat-pg.log"))
        procs.append(Proc(["socat", f"TCP-LISTEN:{redis_port},fork,reuseaddr", f"TCP:127.0.0.1:{redis.port}"],
                          dict(os.environ), tmp_path / "socat-redis.log"))
        env: dict[str, dict[str, str]] = {}
        for host in ("a", "b"):
            gateway = hosts.gateway[host]
            home = tmp_path / f"host-{host}"
            env[host] = {**os.environ, **FAST, "GANSERVE_HOME": str(home), "GANSERVE_CACHE_DIR": str(home / "cache"),
                         "GANSERVE_DATABASE_URL": f"postgresql://postgres@{gateway}:{pg_port}/postgres",
                         "GANSERVE_REDIS_URL": f"redis://{gateway}:{redis_port}/0"}
        apis = {}
        for host in ("a", "b"):
            procs.append(Proc([sys.executable, "-m", "uvicorn", "service.main:app", "--host", "0.0.0.0",
                               "--port", "8000"], env[host], tmp_path / f"api-{host}.log", hosts.names[host]))
            apis[host] = httpx.Client(base_url=f"http://{hosts.addr[host]}:8000", timeout=30,
                                      headers={"X-API-Key": TEST_API_KEY})

        def ready(client: httpx.Client) -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        for host, client in apis.items():
            wait_until(lambda c=client: ready(c), 120, f"the API on host {host}", every=0.5)

        def worker(host: str) -> Proc:
            proc = Proc([sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO",
                         "-n", f"host-{host}@%h", "--concurrency=1", "--pool=prefork", "--without-gossip",
                         "--without-mingle", "-Q", "celery,evaluation"], env[host], tmp_path / f"worker-{host}.log",
                        hosts.names[host])
            procs.append(proc)
            wait_until(lambda: b" ready." in proc.log_path.read_bytes(), 120, f"the worker on host {host}")
            return proc

        yield {"apis": apis, "worker": worker, "hosts": hosts}
    finally:
        for proc in reversed(procs):
            proc.kill()
        hosts.close()
        redis.stop()
        pg.stop()


def test_a_job_posted_to_a_trains_on_b_resumes_on_a_and_both_serve_it(two_hosts: dict[str, Any]) -> None:
    apis, start_worker = two_hosts["apis"], two_hosts["worker"]
    b_worker = start_worker("b")
    # Long enough to be still running when its worker is killed: these tiny nets train at hundreds of
    # iterations a second on an idle machine.
    job = apis["a"].post("/jobs", json={"model": "two-hosts", **TINY, "iterations": 20000}).json()
    wait_until(lambda: apis["b"].get(f"/jobs/{job['id']}").json()["iteration"] >= 150, 180, "training on B")
    time.sleep(1.5)                                                  # a checkpoint (every second) is stored
    assert any("claimed the job" in e.get("message", "") for e in log_events(b_worker.log_path))
    b_worker.kill()                                                  # host B's worker dies mid-job
    a_worker = start_worker("a")
    done = wait_until(lambda: (j := apis["a"].get(f"/jobs/{job['id']}").json())["status"] in
                      ("succeeded", "failed") and j, 240, "the job to finish on A")
    assert done["status"] == "succeeded" and done["attempts"] >= 2, done
    assert any("resuming from its checkpoint" in e.get("message", "") for e in log_events(a_worker.log_path))
    params = {"model": "two-hosts", "version": 1, "n": 16, "seed": 7}
    served = [apis[h].get("/samples", params=params) for h in ("a", "b")]
    assert all(r.status_code == 200 for r in served), [r.text for r in served]
    assert served[0].content == served[1].content                    # the same artifact, from the database
