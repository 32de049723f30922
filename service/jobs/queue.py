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
QUEUE = "celery"  # training; kombu keeps priorities 3/6/9 under suffixed keys
# Evaluation jobs have their own queue and worker, so a score arrives in seconds while a long training job runs.
EVALUATION_QUEUE = "evaluation"
EVALUATION_TASKS = frozenset({PARZEN_TASK, CLASSIFIER_TASK, SCORES_TASK})
QUEUES = (QUEUE, EVALUATION_QUEUE)
_PRIORITY_SEP = "\x06\x16"
UNACKED = "unacked"  # kombu's hash of messages delivered to a worker but not yet acknowledged
UNACKED_INDEX = "unacked_index"  # kombu's sorted set of those deliveries, scored by delivery time
BROKER_PAGE = 500
# Sending a task (API, reconciler) gives up after ~1 s when Redis is down: the caller answers 503 or the
# reconciler retries on its next pass; a request must never hang on the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}


def broker_conf(settings: Settings) -> dict[str, Any]:
    """The Celery settings of both ends of the broker: this client and the worker's app."""
    return {
        "broker_url": settings.redis_url,
        "task_default_queue": QUEUE,
        "task_routes": {task: {"queue": EVALUATION_QUEUE} for task in EVALUATION_TASKS},
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
    task = TASK_FOR_KIND[kind]
    client().send_task(task, args=[str(job_id)], queue=queue_of(task), retry=True,
                       retry_policy=PUBLISH_RETRY_POLICY)


def queue_of(task: str) -> str:
    return EVALUATION_QUEUE if task in EVALUATION_TASKS else QUEUE


def queue_keys(names: tuple[str, ...] = QUEUES) -> list[str]:
    """The Redis lists holding the messages of these queues, every priority."""
    return [key for name in names for key in (name, *(f"{name}{_PRIORITY_SEP}{p}" for p in (3, 6, 9)))]


@lru_cache(maxsize=1)
def broker_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_connect_timeout=2, socket_timeout=5)


def missing_from_broker(job_ids: list[str], delivered_after: float) -> list[str]:
    """Those of `job_ids` that no message in the broker names: not in the queues (read a page at a time,
    stopping once every id is found; each message's headers carry its args in plain text), and not in the
    unacked set as a delivery newer than `delivered_after` (epoch seconds). An older delivery of a job that is
    still queued went to a worker that died before claiming it, or one busy with another job: Redis would
    hand it back only after the visibility timeout (days), so it counts as lost."""
    wanted = set(job_ids)
    r = broker_client()
    for key in queue_keys():
        start = 0
        while wanted and (page := r.lrange(key, start, start + BROKER_PAGE - 1)):
            text = b"\n".join(page).decode("utf-8", "replace")
            wanted = {job_id for job_id in wanted if job_id not in text}
            start += BROKER_PAGE
    if wanted:
        tags = r.zrangebyscore(UNACKED_INDEX, delivered_after, "+inf")
        if tags:
            text = b"\n".join(m for m in r.hmget(UNACKED, tags) if m).decode("utf-8", "replace")
            wanted = {job_id for job_id in wanted if job_id not in text}
    return [job_id for job_id in job_ids if job_id in wanted]


def claim_pass(name: str, seconds: float) -> bool:
    """True for one caller per `seconds` across every API replica (a Redis key set if absent, expiring)."""
    return bool(broker_client().set(f"ganserve:pass:{name}", "1", nx=True, px=max(1, int(seconds * 1000))))
