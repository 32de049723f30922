"""The Celery app. Torch-free: the API imports it to send tasks by name; only the worker loads the tasks.

Redis only delivers work; PostgreSQL holds the truth (see worker/lease.py).
"""

from __future__ import annotations

from celery import Celery

from service.settings import get_settings

TRAIN_TASK = "ganserve.train"
PARZEN_TASK = "ganserve.parzen"
TASK_FOR_KIND = {"train": TRAIN_TASK, "parzen": PARZEN_TASK}


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("ganserve", broker=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        # A task is acknowledged only when it ends, and requeued when its worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis redelivers an unacknowledged message after this; it must outlast the longest job.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
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
