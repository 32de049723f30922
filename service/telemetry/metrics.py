"""Request ids, the request log, and Prometheus metrics (GET /metrics).

HTTP and inference figures are counted in this process. Job figures (jobs by status, queue depth, training
iterations/s) are read from PostgreSQL and Redis at scrape time, since the work happens in other processes:
any API replica reports the same truth. With several uvicorn processes per container, scrape each one.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db.tables import JobStatus
from service.telemetry import logs

log = logging.getLogger("ganserve.http")

HTTP_SECONDS = Histogram("ganserve_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route", "status"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
INFERENCE_SECONDS = Histogram("ganserve_inference_seconds", "one onnxruntime run (a whole micro-batch)",
                              buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
INFERENCE_BATCH = Histogram("ganserve_inference_batch_samples", "samples (rows of z) per onnxruntime run",
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096))
RATE_LIMITED = Counter("ganserve_rate_limited_total", "requests answered 429", ["route"])
RECONCILED = Counter("ganserve_reconciler_dispatches_total", "jobs re-sent by the reconciler", ["reason"])

# A client's X-Request-ID is echoed only when it is a plain token (it ends up in logs and headers).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def observe_inference(seconds: float, rows: int) -> None:
    INFERENCE_SECONDS.observe(seconds)
    INFERENCE_BATCH.observe(rows)


# HTTP_SECONDS' child per (method, route template, status): .labels() validates and converts its arguments and
# takes a lock on every call. As many entries as the histogram has series.
_HTTP_CHILDREN: dict[tuple[str, str, int], Histogram] = {}


def http_seconds(method: str, route: str, status: int) -> Histogram:
    child = _HTTP_CHILDREN.get((method, route, status))
    if child is None:
        child = _HTTP_CHILDREN[method, route, status] = HTTP_SECONDS.labels(method, route, str(status))
    return child


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a plain token, else a new random 128-bit id (32 hex digits)."""
    incoming = ""
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")  # the last one, as a dict of the headers would keep
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


class RequestContext:
    """Outermost middleware: request id (X-Request-ID in and out), latency histogram by route template and
    status, one log line per request, and the catch-all 500 in problem+json (no trace in the body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        id_header = (b"x-request-id", rid.encode("latin-1"))
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started:  # too late for a clean answer: the connection is cut
                log.error("failed mid-response", exc_info=exc)
                raise
            from service.api.problems import internal_error

            await internal_error(scope["method"], scope["path"], exc)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route") or _match(scope), "path", None) or "unmatched"
            http_seconds(scope["method"], route, status).observe(elapsed)
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            if log.isEnabledFor(level):  # probes and scrapes: not even the record is built at INFO
                log.log(level, "request", extra={"method": scope["method"], "path": scope["path"], "route": route,
                                                 "status": status, "ms": round(elapsed * 1000, 2)})
            logs.request_id.reset(token)


def _match(scope: Scope) -> Any:
    """The route a request refused before routing (401, 413, 429 from the middlewares) would have reached,
    so its log line and histogram name it; None when no route matches (a 404)."""
    for route in _flat(getattr(getattr(scope.get("app"), "router", None), "routes", ())):
        if route.matches(scope)[0] == Match.FULL:
            return route
    return None


def _flat(routes: Any) -> Iterator[Any]:
    """The app's routes; recent FastAPI keeps each included router whole (its `original_router`), older ones
    copy its routes into the app's list."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from _flat(inner.routes) if inner is not None else (route,)


class JobCollector(Collector):
    """Jobs by status, broker queue depth and training iterations/s of running jobs, read at scrape time.
    A dependency that is down makes its families go missing and ganserve_dependency_up 0; never a 500."""

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("ganserve_dependency_up", "1 when the dependency answered this scrape",
                               labels=["dependency"])
        try:
            yield from self._from_database()
            up.add_metric(["database"], 1)
        except Exception as exc:  # noqa: BLE001 - a scrape must survive an outage
            log.debug("metrics: database unavailable: %s", type(exc).__name__)
            up.add_metric(["database"], 0)
        try:
            yield self._queue_depth()
            up.add_metric(["broker"], 1)
        except Exception as exc:  # noqa: BLE001
            log.debug("metrics: broker unavailable: %s", type(exc).__name__)
            up.add_metric(["broker"], 0)
        yield up

    @staticmethod
    def _from_database() -> Iterator[Any]:
        from service.db.engine import get_engine

        with get_engine().connect() as conn:
            counts: dict[str, int] = {status: n for status, n in
                                      conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))}
            # The last two logged iterations of each running job: their slope is its current speed.
            rows = conn.execute(text(
                "SELECT j.id, j.model_name, m.iteration, extract(epoch FROM m.created_at) FROM jobs j "
                "JOIN LATERAL (SELECT iteration, created_at FROM job_metrics WHERE job_id = j.id "
                "ORDER BY iteration DESC LIMIT 2) m ON true WHERE j.status = 'running'")).all()
        jobs = GaugeMetricFamily("ganserve_jobs", "jobs by status", labels=["status"])
        for status in JobStatus.__args__:  # type: ignore[attr-defined]
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        speed = GaugeMetricFamily("ganserve_training_iterations_per_second",
                                  "training speed of each running job (last two logged points)",
                                  labels=["job_id", "model"])
        points: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for job, model, iteration, at in rows:
            points.setdefault((str(job), model), []).append((int(iteration), float(at)))
        for key, pts in points.items():
            if len(pts) == 2 and pts[0][1] > pts[1][1]:
                speed.add_metric(list(key), (pts[0][0] - pts[1][0]) / (pts[0][1] - pts[1][1]))
        yield speed

    @staticmethod
    def _queue_depth() -> GaugeMetricFamily:
        from service.jobs.reconciler import broker_client, queue_keys

        client = broker_client()
        depth = GaugeMetricFamily("ganserve_queue_depth", "messages waiting in the broker", labels=["queue"])
        depth.add_metric(["celery"], sum(int(client.llen(key)) for key in queue_keys()))
        return depth


REGISTRY.register(JobCollector())

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}})
def metrics() -> Response:
    """Prometheus text format: HTTP latency by route and status, inference latency and batch sizes, jobs by
    status, queue depth, training iterations/s."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
