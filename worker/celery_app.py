"""The worker's Celery app: the broker settings of service.jobs.queue, plus how this side runs and acknowledges.

Redis only delivers work; PostgreSQL holds the truth (see worker/leases.py).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from service.jobs.queue import broker_conf
from service.settings import get_settings
from service.telemetry import logs


@setup_logging.connect
def _json_logs(**kwargs: Any) -> None:
    """Connecting this signal replaces Celery's log setup with ours: JSON lines with the job id."""
    logs.configure()


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("ganserve", include=["worker.tasks"])
    app.conf.update(
        broker_conf(settings),
        # A task is acknowledged only when it ends, and requeued when its worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_pool="prefork",
        worker_hijack_root_logger=False,
    )
    return app


app = make_app()
