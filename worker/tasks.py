"""Celery tasks: each takes a job id, claims the row, and calls the code that does the work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import Task

from worker import training_job
from worker.celery_app import PARZEN_TASK, TRAIN_TASK, app
from worker.lease import Busy, Lease, claim, stale_after

log = logging.getLogger(__name__)


def _run_claimed(task: Task, job_id: str, work: Callable[[Lease], None]) -> None:
    try:
        lease = claim(uuid.UUID(job_id))
    except Busy as exc:
        # Another live worker runs it (a duplicate delivery): look again once its heartbeat could be stale.
        raise task.retry(exc=exc, countdown=stale_after().total_seconds(), max_retries=None) from exc
    if lease is None:
        log.info("job %s: nothing to do (finished, cancelled or unknown)", job_id)
        return
    work(lease)


@app.task(name=TRAIN_TASK, bind=True)
def train(self: Task, job_id: str) -> None:
    _run_claimed(self, job_id, training_job.run)


@app.task(name=PARZEN_TASK, bind=True)
def parzen(self: Task, job_id: str) -> None:
    from worker import parzen_job

    _run_claimed(self, job_id, parzen_job.run)
