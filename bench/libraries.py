"""Hand-written code that stays because it is faster than the library: `ganserve bench libraries [--json]`.

Each pair does the same job on the same input, timed best-of-repeats in this process, so the reason a hand
version is kept can be re-checked on any machine:
  png      the PNG writer of sample grids (service/serving/images.py) vs Pillow at the same zlib level, on a
           64-image grid (MNIST training images when MNIST is in the data folder, else a random generator's);
  logline  the JSON log formatter (service/telemetry/logs.py) vs python-json-logger giving the same line;
  latency  recording one request's latency sample: ours (service/api/context.py: the route the router already
           matched, a cached histogram child) vs prometheus-fastapi-instrumentator's middleware, as the extra
           microseconds each adds to a request through a FastAPI app.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import FastAPI, Response
from PIL import Image
from prometheus_client import CollectorRegistry, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import latency as latency_metric
from pythonjsonlogger import json as jsonlogger

from bench.machine import cpu_name
from models import datasets
from service.serving import images
from service.settings import get_settings
from service.telemetry.logs import _IDS, _STANDARD, JsonFormatter


def best_us(fn: Callable[[], Any], number: int, repeats: int = 5) -> float:
    """The best of `repeats` mean times of `number` calls, in microseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - started) / number)
    return best * 1e6


def grid_images() -> tuple[np.ndarray, str]:
    """64 images in [0, 1], (64, 784): real MNIST digits when present, else a random MLP generator's."""
    try:
        train = datasets.load("mnist", get_settings().resolved_data_dir).train
        return np.asarray(train[:64], np.float32).reshape(64, -1), "64 MNIST training images"
    except datasets.DatasetError:
        rng = np.random.default_rng(0)
        h = np.maximum(rng.uniform(-1, 1, (64, 100)) @ rng.normal(0, 0.1, (100, 1200)), 0)
        x = 1 / (1 + np.exp(-(h @ rng.normal(0, 0.05, (1200, 784)) - 2)))
        return x.astype(np.float32), "64 images of a random generator (MNIST absent)"


def png(number: int) -> dict[str, Any]:
    x, source = grid_images()
    shape = (1, 28, 28)
    level = 1
    tiles = images.to_uint8(x, shape)
    mosaic = images.tile(tiles, images.grid_columns(len(tiles)))

    def pillow() -> bytes:
        out = io.BytesIO()
        Image.fromarray(mosaic[:, :, 0]).save(out, format="PNG", compress_level=level)
        return out.getvalue()

    ours_us = best_us(lambda: images.encode_png(mosaic, level), number)
    pil_us = best_us(pillow, number)
    return {"input": f"{source}, {mosaic.shape[1]}x{mosaic.shape[0]} grid, zlib level {level}",
            "ours_us": ours_us, "library_us": pil_us, "speedup": pil_us / ours_us,
            "ours_bytes": len(images.encode_png(mosaic, level)), "library_bytes": len(pillow())}


class LibraryFormatter(jsonlogger.JsonFormatter):
    """python-json-logger configured to write exactly the line service/telemetry/logs.py writes."""

    def __init__(self) -> None:
        super().__init__(json_default=str, json_ensure_ascii=False, reserved_attrs=sorted(_STANDARD))

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]) -> None:
        log_data.update(ts=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                        level=record.levelname, logger=record.name, message=record.message)
        super().add_fields(log_data, record, message)
        for key in _IDS:
            if log_data.get(key) is None:
                log_data.pop(key, None)


def logline(number: int) -> dict[str, Any]:
    record = logging.LogRecord("ganserve.http", logging.INFO, __file__, 1, "request", (), None)
    record.__dict__.update(request_id="5f0c" * 8, job_id=None, method="GET", path="/samples",
                           route="/samples", status=200, ms=4.21)
    ours, library = JsonFormatter(), LibraryFormatter()
    assert json.loads(ours.format(record)) == json.loads(library.format(record)), "the two lines differ"
    ours_us = best_us(lambda: ours.format(record), number)
    lib_us = best_us(lambda: library.format(record), number)
    return {"input": "one request log line", "ours_us": ours_us, "library_us": lib_us,
            "speedup": lib_us / ours_us}


def _timed(app: FastAPI) -> None:
    """Our way around `app`: the route the router matched, a cached histogram child per (method, route,
    status), as service/api/context.py records a request."""
    histogram = Histogram("bench_seconds", "", ["method", "route", "status"], registry=CollectorRegistry())
    children: dict[tuple[str, str, int], Any] = {}
    inner = app.build_middleware_stack

    def stack() -> Any:
        wrapped = inner()

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            started, status = time.perf_counter(), [500]

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            await wrapped(scope, receive, sending)
            key = (scope["method"], getattr(scope.get("route"), "path", "unmatched"), status[0])
            child = children.get(key) or children.setdefault(key, histogram.labels(*key))
            child.observe(time.perf_counter() - started)
        return timed

    app.build_middleware_stack = stack  # type: ignore[method-assign]


def _app(kind: str) -> FastAPI:
    """31 routes answering b"x": bare, with our latency recording, or with the instrumentator's."""
    app = FastAPI()

    async def answer() -> Response:
        return Response(b"x")

    for path in ("/samples", *(f"/route{i}" for i in range(30))):
        app.add_api_route(path, answer)
    if kind == "library":
        registry = CollectorRegistry()
        instrumentator = Instrumentator(should_group_status_codes=False, registry=registry)
        instrumentator.add(latency_metric(metric_namespace="bench", registry=registry))
        instrumentator.instrument(app)
    elif kind == "ours":
        _timed(app)
    return app


async def _per_request_us(app: FastAPI, number: int) -> float:
    scope = {"type": "http", "method": "GET", "path": "/samples", "raw_path": b"/samples", "query_string": b"",
             "headers": [], "root_path": "", "scheme": "http", "server": ("bench", 80), "client": ("c", 1),
             "http_version": "1.1"}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(number):
        await app(dict(scope, app=app), receive, send)
    return (time.perf_counter() - started) / number * 1e6


def latency(number: int) -> dict[str, Any]:
    apps = {kind: _app(kind) for kind in ("bare", "ours", "library")}
    best = dict.fromkeys(apps, float("inf"))
    for _ in range(7):  # interleaved, so background load hits the three alike
        for kind, app in apps.items():
            best[kind] = min(best[kind], asyncio.run(_per_request_us(app, number)))
    ours, library = best["ours"] - best["bare"], best["library"] - best["bare"]
    return {"input": "GET /samples on a FastAPI app of 31 routes, in process; microseconds added to a request",
            "bare_us": best["bare"], "ours_us": ours, "library_us": library,
            "speedup": library / ours if ours > 0.5 else None}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench libraries", description=__doc__.split("\n")[0])
    p.add_argument("--number", type=int, default=2000, help="calls per timing (best of 5)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    results = {"png": png(max(1, args.number // 10)), "logline": logline(args.number),
               "latency": latency(args.number)}
    labels = {"png": ("our PNG writer", "Pillow"), "logline": ("our JSON formatter", "python-json-logger"),
              "latency": ("our latency histogram", "prometheus-fastapi-instrumentator")}
    for name, r in results.items():
        ours, library = labels[name]
        ratio = f"{r['speedup']:.1f}x" if r["speedup"] else "ours within the noise"
        print(f"{name:8} {ours} {r['ours_us']:.1f} us vs {library} {r['library_us']:.1f} us: {ratio}  ({r['input']})")
    if args.json:
        print(json.dumps({"cpu": cpu_name(), **results}))
    return 0
