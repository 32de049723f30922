"""The serving benchmark's moving parts: the API as a child process and loopback HTTP/1.1 load generators.

The clients are deliberately minimal -- a blocking socket for one client, raw asyncio streams on uvloop for
many -- because they share the machine's cores with the server they measure. Each drive returns a `Slice`
(latencies, measured seconds, CPU seconds of server and client), so a phase can be measured in several
slices interleaved with other measurements and pooled afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uvloop

from service.cli.embedded import free_port
from service.cli.up import api_command


class Server:
    """The API on a free port, started with the very command `ganserve up` uses (service.cli.up.api_command)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the server; closed in stop()
        self.process = subprocess.Popen(api_command("127.0.0.1", self.port), env={**os.environ, **env},
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        asyncio.run(self._wait())

    async def _wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}; see {self.log.name}")
            with contextlib.suppress(OSError):
                status, _ = await fetch_once(self.port, "/healthz")
                if status == 200:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"uvicorn did not answer within {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class Slice:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def add(self, other: Slice) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu

    def summary(self) -> dict[str, float]:
        ms = np.asarray(self.latencies) * 1e3
        return {"rps": len(ms) / self.seconds, "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)), "requests": len(ms),
                "server_cpu_ms_per_request": 1e3 * self.server_cpu / len(ms),
                "client_cpu_ms_per_request": 1e3 * self.client_cpu / len(ms)}


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), await reader.readexactly(length)


async def fetch_once(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        return await _read_response(reader)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive_many(port: int, pid: int, path: str, clients: int, seconds: float, warmup: float) -> Slice:
    """`clients` keep-alive connections, each sending its next request as soon as the previous answer is in.
    Requests that start in the warm-up are not counted; CPU is read at the window's edges."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    out = Slice(seconds=seconds)
    t_start = time.perf_counter() + warmup
    t_end = t_start + seconds
    failures: list[int] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (now := time.perf_counter()) < t_end:
            writer.write(request)
            status, _ = await _read_response(reader)
            if now >= t_start:
                out.latencies.append(time.perf_counter() - now)
                if status != 200:
                    failures.append(status)
        writer.close()

    async def account() -> None:
        await asyncio.sleep(t_start - time.perf_counter())
        server, client_cpu = cpu_seconds(pid), time.process_time()
        await asyncio.sleep(t_end - time.perf_counter())
        out.server_cpu, out.client_cpu = cpu_seconds(pid) - server, time.process_time() - client_cpu

    await asyncio.gather(account(), *(client() for _ in range(clients)))
    if failures:
        raise RuntimeError(f"{len(failures)} requests to {path} failed, e.g. HTTP {failures[0]}")
    return out


def _drive_one(port: int, pid: int, path: str, seconds: float, warmup: float) -> Slice:
    """One client as a plain blocking socket: the cheapest client there is, for the latency-bound phase. It
    receives straight into one preallocated buffer (no per-line reads, no copies), finds the header's end and
    Content-Length there and reads until the whole body is in: still a full HTTP/1.1 response read."""
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    out = Slice(seconds=seconds)
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t_start = time.perf_counter() + warmup
        t_end = t_start + seconds
        started: tuple[float, float] | None = None
        while (now := time.perf_counter()) < t_end:
            if started is None and now >= t_start:
                started = (cpu_seconds(pid), time.process_time())
                now = time.perf_counter()
            sock.sendall(request)
            status = _read_one(sock, buffer, view)
            if status != 200:
                raise RuntimeError(f"HTTP {status} from {path}")
            if started is not None:
                out.latencies.append(time.perf_counter() - now)
        assert started is not None
        out.server_cpu, out.client_cpu = cpu_seconds(pid) - started[0], time.process_time() - started[1]
    return out


def _read_one(sock: socket.socket, buffer: bytearray, view: memoryview) -> int:
    """Receive one whole response (head and Content-Length body) into `buffer`; its status code."""
    got, head_end = 0, -1
    while head_end < 0:
        received = sock.recv_into(view[got:])
        if not received:
            raise ConnectionError("the server closed the connection")
        got += received
        head_end = buffer.find(b"\r\n\r\n", 0, got)
    head = bytes(view[:head_end]).lower()
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            length = int(line[15:])
    total = head_end + 4 + length
    if total > len(buffer):
        raise RuntimeError(f"a response of {total} bytes does not fit the client's buffer")
    while got < total:
        received = sock.recv_into(view[got:total])
        if not received:
            raise ConnectionError("the server closed the connection mid-response")
        got += received
    if got != total:
        raise RuntimeError("the server sent more than one response")
    return int(head[9:12])


def drive(server: Server, path: str, clients: int, seconds: float, warmup: float) -> Slice:
    if clients == 1:
        return _drive_one(server.port, server.process.pid, path, seconds, warmup)
    return uvloop.run(_drive_many(server.port, server.process.pid, path, clients, seconds, warmup))
