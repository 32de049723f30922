"""Celery tasks: each takes a job id and hands it to the job body that does the work, under a lease."""

from __future__ import annotations

import service.datasets.store  # noqa: F401 - registers uploaded datasets with models.datasets
from service.jobs.queue import PARZEN_TASK, TRAIN_TASK
from worker import scoring, train_job
from worker.celery_app import app
from worker.leases import claim_and_run


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> None:
    claim_and_run(job_id, train_job.run)


@app.task(name=PARZEN_TASK)
def parzen(job_id: str) -> None:
    claim_and_run(job_id, scoring.run)
