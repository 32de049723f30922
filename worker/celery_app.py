"""The Celery app. Torch-free: the API imports it to send tasks by name; only the worker loads the tasks.

Redis only delivers work; PostgreSQL holds the truth (see worker/lease.py).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from service.settings import get_settings

TRAIN_TASK = "ganserve.train"
PARZEN_TASK = "ganserve.parzen"
TASK_FOR_KIND = {"train": TRAIN_TASK, "parzen": PARZEN_TASK}
# Sending a task (API, reconciler) gives up after ~1 s when Redis is down: the caller answers 503 or the
# reconciler retries on its next pass; a request must never hang on the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}


@setup_logging.connect
def _json_logs(**kwargs: Any) -> None:
    """Connecting this signal replaces Celery's log setup with ours: JSON lines with the job id."""
    from service.telemetry import logs

    logs.configure()


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("ganserve", broker=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        # A task is acknowledged only when it ends, and requeued when its worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis redelivers an unacknowledged message after this; it must outlast the longest job.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s,
                                  # A Redis that vanishes fails fast instead of hanging a publish.
                                  "socket_connect_timeout": 3},
        # Keep reconnecting to a restarted Redis instead of exiting after 100 tries.
        broker_connection_max_retries=None,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_concurrency=settings.worker_concurrency,
        worker_pool="prefork",
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


app = make_app()
