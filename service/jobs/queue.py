"""The only place the API side talks to Celery: the task names, the broker settings both ends share, enqueue,
and the reconciler's reads of the broker.

The client here knows the broker only: it sends tasks by name and imports no task code (the worker's app,
worker/celery_app.py, is built from the same settings and registers the tasks under these names).
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import redis
from celery import Celery

from service.settings import Settings, get_settings

# Every job kind's task name, in one place: the worker registers its tasks under these names.
TRAIN_TASK = "ganserve.train"
PARZEN_TASK = "ganserve.parzen"
CLASSIFIER_TASK = "ganserve.classifier"
SCORES_TASK = "ganserve.scores"
TASK_FOR_KIND = {"train": TRAIN_TASK, "parzen": PARZEN_TASK, "classifier": CLASSIFIER_TASK, "scores": SCORES_TASK}
QUEUE = "celery"  # every task goes to this one queue; kombu keeps priorities 3/6/9 under suffixed keys
_PRIORITY_SEP = "\x06\x16"
UNACKED = "unacked"  # kombu's hash of messages delivered to a worker but not yet acknowledged
# Sending a task (API, reconciler) gives up after ~1 s when Redis is down: the caller answers 503 or the
# reconciler retries on its next pass; a request must never hang on the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}


def broker_conf(settings: Settings) -> dict[str, Any]:
    """The Celery settings of both ends of the broker: this client and the worker's app."""
    return {
        "broker_url": settings.redis_url,
        "task_default_queue": QUEUE,
        # Redis redelivers an unacknowledged message after this; it must outlast the longest job.
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s,
                                     # A Redis that vanishes fails fast instead of hanging a publish.
                                     "socket_connect_timeout": 3},
        # Keep reconnecting to a restarted Redis instead of exiting after 100 tries.
        "broker_connection_max_retries": None,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
    }


@lru_cache(maxsize=1)
def client() -> Celery:
    # Not the current app: in a worker process, the worker's own app stays the one its tasks belong to.
    app = Celery("ganserve", set_as_current=False)
    app.conf.update(broker_conf(get_settings()))
    return app


def enqueue(job_id: uuid.UUID, kind: str) -> None:
    """Hand a committed job to Celery (after the commit: a worker must find the row). Bounded: a broker that
    is down raises within about a second instead of hanging the request."""
    client().send_task(TASK_FOR_KIND[kind], args=[str(job_id)], retry=True, retry_policy=PUBLISH_RETRY_POLICY)


def queue_keys() -> list[str]:
    return [QUEUE] + [f"{QUEUE}{_PRIORITY_SEP}{p}" for p in (3, 6, 9)]


@lru_cache(maxsize=1)
def broker_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_connect_timeout=2, socket_timeout=5)


def messages_in_broker() -> str:
    """Every pending or delivered-unacked message, as one string to search for job ids (each message's
    headers carry its args in plain text). Queues hold a message per job, so this stays small."""
    pipe = broker_client().pipeline(transaction=False)
    for key in queue_keys():
        pipe.lrange(key, 0, -1)
    pipe.hvals(UNACKED)
    chunks: list[bytes] = []
    for result in pipe.execute():
        chunks.extend(result)
    return b"\n".join(chunks).decode("utf-8", "replace")
