"""Celery tasks: each takes a job id and hands it to the job body that does the work, under a lease."""

from __future__ import annotations

import service.datasets.store  # noqa: F401 - registers uploaded datasets with models.datasets
from service.jobs.queue import CLASSIFIER_TASK, PARZEN_TASK, SCORES_TASK, TRAIN_TASK
from worker import classifier_job, scores_job, scoring, train_job
from worker.celery_app import app
from worker.leases import claim_and_run


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> None:
    claim_and_run(job_id, train_job.run)


@app.task(name=PARZEN_TASK)
def parzen(job_id: str) -> None:
    claim_and_run(job_id, scoring.run)


@app.task(name=CLASSIFIER_TASK)
def classifier(job_id: str) -> None:
    claim_and_run(job_id, classifier_job.run)


@app.task(name=SCORES_TASK)
def scores(job_id: str) -> None:
    claim_and_run(job_id, scores_job.run)
