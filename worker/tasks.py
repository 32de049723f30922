"""Celery tasks: each takes a job id, claims the row, and calls the code that does the work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import Task

import service.datasets.store  # noqa: F401 - registers uploaded datasets with models.datasets (issue 8)
from service.telemetry import logs
from worker import train_job
from worker.celery_app import PARZEN_TASK, TRAIN_TASK, app
from worker.leases import Busy, Lease, claim

log = logging.getLogger(__name__)


def _run_claimed(task: Task, job_id: str, work: Callable[[Lease], None]) -> None:
    with logs.job_context(job_id):  # every log line of this job carries its id
        try:
            lease = claim(uuid.UUID(job_id))
        except Busy:
            # A duplicate delivery while a live worker runs the job: drop it. Should that worker die, its
            # heartbeat goes stale and the reconciler (service/reconciler.py) sends the job again.
            log.info("duplicate delivery: the job is running on another worker")
            return
        if lease is None:
            log.info("nothing to do (finished, cancelled or unknown)")
            return
        log.info("claimed the job (attempt %d)", lease.attempt)
        work(lease)


@app.task(name=TRAIN_TASK, bind=True)
def train(self: Task, job_id: str) -> None:
    _run_claimed(self, job_id, train_job.run)


@app.task(name=PARZEN_TASK, bind=True)
def parzen(self: Task, job_id: str) -> None:
    from worker import scoring

    _run_claimed(self, job_id, scoring.run)
