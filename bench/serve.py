"""Serving benchmark: `ganserve bench serve [--json] [--seconds S]`.

Registers a paper-mnist-sized generator (100 -> 1200 -> 1200 -> 784; random weights as initialised for
training, output bias = the logit of MNIST's mean pixel, so samples and PNG sizes look like an early
generator's rather than grey noise -- no training needed), starts the real API (one uvicorn process with
`ganserve up`'s command line and the production middleware; only the per-address rate limit is off, as every
client is 127.0.0.1) and drives GET /samples over loopback HTTP/1.1 keep-alive with 1 and with 16 closed-loop
clients.

The ceiling is the route's own work for one request -- noise, onnxruntime, grid assembly, PNG encoding, the
very functions the route calls -- back to back in this process, no HTTP. The machine's cores are shared with
whatever else runs, so every phase is measured in slices interleaved with slices of the ceiling (and the
batched / unbatched servers in alternating slices): slow drifts of background load then hit both sides of
each ratio alike. fraction_of_ceiling_K divides rps_K by the ceiling measured interleaved with that phase
(ceiling_rps_K); ceiling_rps pools every ceiling slice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.machine import cpu_name
from bench.serve_client import Server, Slice, drive
from bench.serve_model import PAPER_MNIST, mean_logit, mlp_generator_onnx, register_version
from models import datasets
from service.cli.embedded import EmbeddedPostgres
from service.db.engine import migrate
from service.serving.generate import render_samples
from service.serving.noise import sample_noise
from service.serving.registry import LoadedModel, VersionInfo
from service.settings import get_settings

MODEL = "bench-paper-mnist"
# Every benchmark client is 127.0.0.1, i.e. one client for the per-address rate limit: off here.
SERVER_ENV = {"GANSERVE_SAMPLE_RATE_PER_S": "0", "GANSERVE_SAMPLE_COST_PER_S": "0"}


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ganserve bench serve")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object, last line")
    p.add_argument("--seconds", type=float, default=10.0, help="measured HTTP time per phase")
    p.add_argument("--slice", type=float, default=2.0, help="measured seconds per interleaved slice")
    p.add_argument("--ceiling-slice", type=float, default=1.0, help="seconds of ceiling before each slice")
    p.add_argument("--warmup", type=float, default=0.3, help="unmeasured seconds at the start of each slice")
    p.add_argument("--n", type=int, default=64, help="samples per request")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients of the loaded phases")
    return p.parse_args(argv)


@contextlib.contextmanager
def database() -> Iterator[str]:
    """GANSERVE_DATABASE_URL when set, else an embedded PostgreSQL in a temporary home."""
    url = os.environ.get("GANSERVE_DATABASE_URL", "")
    if url:
        yield url
        return
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="ganserve-bench-")))
    try:
        yield pg.url
    finally:
        pg.stop()


def build_model() -> tuple[bytes, str]:
    latent, hidden, out = PAPER_MNIST
    bias, note = None, "zero output bias (MNIST not found)"
    with contextlib.suppress(Exception):
        bias = mean_logit(datasets.load("mnist", get_settings().resolved_data_dir).train)
        note = "output bias = logit of MNIST's mean pixel"
    return mlp_generator_onnx(latent, hidden, out, seed=0, output_bias=bias), note


class Ceiling:
    """The route's own work for one request, back to back in this process: noise, onnxruntime, grid, PNG."""

    def __init__(self, onnx_bytes: bytes, n: int) -> None:
        self.n = n
        self.info = VersionInfo(MODEL, 1, PAPER_MNIST[0], {"kind": "uniform", "low": -3**0.5, "high": 3**0.5},
                                (1, 28, 28), "mnist", "", "")
        self.model = LoadedModel(self.info, onnx_bytes)
        self.count: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.infer = self.render = self.cpu = 0.0
        self.png_bytes = 0
        self.measure("warm-up", 1.0)

    def measure(self, phase: str, seconds: float) -> None:
        count = 0
        cpu = time.process_time()
        start = time.perf_counter()
        while (t0 := time.perf_counter()) - start < seconds:
            z = sample_noise(self.info, self.n, count)
            x = self.model.run(z)
            t1 = time.perf_counter()
            body, _ = render_samples(self.info, count, z, x, "png", False)
            self.infer += t1 - t0
            self.render += time.perf_counter() - t1
            count += 1
            self.png_bytes = len(body)
        if phase != "warm-up":
            self.cpu += time.process_time() - cpu
        self.count[phase] = self.count.get(phase, 0) + count
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def rps(self, phase: str | None = None) -> float:
        phases = [phase] if phase else [p for p in self.count if p != "warm-up"]
        return sum(self.count[p] for p in phases) / sum(self.seconds[p] for p in phases)

    def result(self) -> dict[str, Any]:
        done = sum(self.count.values())
        measured = sum(n for p, n in self.count.items() if p != "warm-up")
        return {"ceiling_rps": self.rps(), "ceiling_infer_ms": 1e3 * self.infer / done,
                "ceiling_render_ms": 1e3 * self.render / done,
                "ceiling_cpu_ms_per_request": 1e3 * self.cpu / measured, "png_bytes": self.png_bytes}


def measure(args: argparse.Namespace, servers: dict[str, Server], ceiling: Ceiling,
            phases: list[tuple[str, str, str, int]], log: Any) -> dict[str, Slice]:
    """Round-robin over the phases (label, server, path, clients), one slice each per round; before each
    slice of a phase whose label is a client count, a slice of the ceiling."""
    pooled = {label: Slice() for label, *_ in phases}
    for label, server, path, clients in phases:  # warm each phase's server path once
        drive(servers[server], path, clients, 0.5, 0.5)
    for _ in range(max(1, round(args.seconds / args.slice))):
        for label, server, path, clients in phases:
            if label.isdigit():
                ceiling.measure(label, args.ceiling_slice)
            pooled[label].add(drive(servers[server], path, clients, args.slice, args.warmup))
    for label, server, path, clients in phases:
        got = pooled[label].summary()
        log(f"{path} x{clients} ({server}): {got['rps']:.1f} req/s, p50 {got['p50_ms']:.2f} ms, "
            f"p99 {got['p99_ms']:.2f} ms; CPU per request: server {got['server_cpu_ms_per_request']:.2f} ms, "
            f"client {got['client_cpu_ms_per_request']:.2f} ms"
            + (f"; ceiling alongside {ceiling.rps(label):.1f} req/s" if label.isdigit() else ""))
    return pooled


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    c = args.clients
    with database() as url:
        os.environ["GANSERVE_DATABASE_URL"] = url  # before get_settings() first reads the environment
        migrate()
        onnx_bytes, note = build_model()
        registered = register_version(MODEL, onnx_bytes, latent_dim=PAPER_MNIST[0],
                                      config={"source": "bench serve", "weights": "random", "note": note})
        log(f"model {MODEL} v{registered.version}: 100-1200-1200-784, random weights, {note}")
        ceiling = Ceiling(onnx_bytes, args.n)
        logs = Path(tempfile.mkdtemp(prefix="ganserve-bench-serve-")) / "uvicorn.log"
        servers: dict[str, Server] = {}
        try:
            for name, batching in (("batched", "true"), ("unbatched", "false")):
                servers[name] = Server({**SERVER_ENV, "GANSERVE_DATABASE_URL": url,
                                        "GANSERVE_BATCHING": batching}, logs)
            grid, single = f"/samples?model={MODEL}&n={args.n}", f"/samples?model={MODEL}&n=1"
            pooled = measure(args, servers, ceiling, [("1", "batched", grid, 1)], log)
            pooled |= measure(args, servers, ceiling, [(str(c), "batched", grid, c)], log)
            pooled |= measure(args, servers, ceiling, [("n1_batched", "batched", single, c),
                                                      ("n1_unbatched", "unbatched", single, c)], log)
        finally:
            for server in servers.values():
                server.stop()
        settings = get_settings()
    result: dict[str, Any] = {}
    for label in ("1", str(c)):
        result.update({f"{k}_{label}": v for k, v in pooled[label].summary().items()})
        result[f"ceiling_rps_{label}"] = ceiling.rps(label)
        result[f"fraction_of_ceiling_{label}"] = result[f"rps_{label}"] / ceiling.rps(label)
    for label in ("n1_batched", "n1_unbatched"):
        got = pooled[label].summary()
        result.update({f"rps_{c}_{label}": got["rps"], f"p50_ms_{c}_{label}": got["p50_ms"],
                       f"p99_ms_{c}_{label}": got["p99_ms"],
                       f"server_cpu_ms_per_request_{c}_{label}": got["server_cpu_ms_per_request"]})
    result.update(ceiling.result())
    # Load-independent view of the single client: the ceiling's CPU per request over the whole path's
    # (server + client) CPU per request; on an idle machine the wall-clock fraction approaches it.
    result["cpu_fraction_1"] = result["ceiling_cpu_ms_per_request"] / (
        result["server_cpu_ms_per_request_1"] + result["client_cpu_ms_per_request_1"])
    result.update({
        f"p99_over_p50_{c}": result[f"p99_ms_{c}"] / result[f"p50_ms_{c}"],
        "n": args.n, "seconds_per_phase": args.seconds, "clients": c, "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu_name(),
        "loadavg_1min_at_end": os.getloadavg()[0],
        "settings": {**{k: getattr(settings, k) for k in ("batch_wait_ms", "batch_max_samples",
                                                           "png_compress_level")},
                     "inference_threads": ceiling.model.session.get_session_options().intra_op_num_threads},
        "model": f"100-1200-1200-784, random weights ({note})"})
    return result


def main(argv: list[str]) -> int:
    args = _parse(argv)
    result = run(args, lambda line: print(line, file=sys.stderr if args.json else sys.stdout, flush=True))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
