"""GET /metrics: Prometheus' scrape, and the job figures the API reads for it.

This process's counters live in service/telemetry/metrics.py. Job figures (jobs by status, queue depth,
training iterations/s) are read from PostgreSQL and Redis at scrape time instead, since the work happens in
other processes: any API replica reports the same truth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from service.db.engine import get_engine
from service.jobs import queue
from service.jobs.status import JobStatus
from service.telemetry.metrics import CONTENT_TYPE, exposition

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}}})
def metrics() -> Response:
    """Prometheus text format: HTTP latency by route and status, inference latency and batch sizes, jobs by
    status, queue depth, training iterations/s."""
    return Response(exposition(), media_type=CONTENT_TYPE)


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
        with get_engine().connect() as conn:
            counts: dict[str, int] = {status: n for status, n in
                                      conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))}
            # The last two logged iterations of each running job: their slope is its current speed.
            rows = conn.execute(text(
                "SELECT j.id, j.model_name, m.iteration, extract(epoch FROM m.created_at) FROM jobs j "
                "JOIN LATERAL (SELECT iteration, created_at FROM job_metrics WHERE job_id = j.id "
                "ORDER BY iteration DESC LIMIT 2) m ON true WHERE j.status = :status"),
                {"status": JobStatus.RUNNING}).all()
        jobs = GaugeMetricFamily("ganserve_jobs", "jobs by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status, 0))
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
        client = queue.broker_client()
        depth = GaugeMetricFamily("ganserve_queue_depth", "messages waiting in the broker", labels=["queue"])
        for name in queue.QUEUES:
            depth.add_metric([name], sum(int(client.llen(key)) for key in queue.queue_keys((name,))))
        return depth


# Registered by the API only: the worker counts into the same registry but serves no scrape.
REGISTRY.register(JobCollector())
