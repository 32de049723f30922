"""The Prometheus counters and histograms of this process, served by GET /metrics (service/api/metrics.py).

HTTP figures are counted by service/api/context.py, inference figures by the serving registry, the rest by
the code that does the work. Job figures are not counted here: the API reads them from PostgreSQL and Redis
at scrape time (service/api/metrics.py). With several uvicorn processes per container, scrape each one.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_SECONDS = Histogram("ganserve_http_request_duration_seconds", "HTTP request latency",
                         ["method", "route", "status"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
INFERENCE_SECONDS = Histogram("ganserve_inference_seconds", "one onnxruntime run (a whole micro-batch)",
                              buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
INFERENCE_BATCH = Histogram("ganserve_inference_batch_samples", "samples (rows of z) per onnxruntime run",
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096))
RATE_LIMITED = Counter("ganserve_rate_limited_total", "requests answered 429", ["route"])
RECONCILED = Counter("ganserve_reconciler_dispatches_total", "jobs re-sent by the reconciler", ["reason"])


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


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format; registered collectors read theirs now."""
    return generate_latest(REGISTRY)
