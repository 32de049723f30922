"""/scores: a model version's sample-quality scores (FD, KID, precision/recall, classes covered) beside Parzen."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from service.api.deps import ApiKey
from service.api.evaluation_schemas import ScoresOut, ScoresPending
from service.api.schemas import JobOut
from service.db.tables import Job, ModelVersion
from service.errors import NotFound
from service.evaluation import scores, stored_results
from service.jobs.status import FINISHED

router = APIRouter(tags=["evaluation"])

RETRY_AFTER_S = 5
_MODEL = Query(description="model name, see GET /models")
_VERSION = Query(default=None, ge=1, le=2**31 - 1, description="default: the latest")


def _pending(row: ModelVersion, job: Job, status_code: int) -> JSONResponse:
    body = ScoresPending(detail=f"the scores of {row.name} v{row.version} are being computed by job {job.id} "
                                f"({job.status}): follow /jobs/{job.id} and ask again",
                         model=row.name, version=row.version, job=JobOut.of(job))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code,
                        headers={"Location": f"/jobs/{job.id}", "Retry-After": str(RETRY_AFTER_S)})


@router.get("/scores", response_model=ScoresOut, responses={
    202: {"model": ScoresPending, "description": "queued or running: the job to follow (Location)"}})
def get_scores(model: str = _MODEL, version: int | None = _VERSION) -> Any:
    """The scores of `model`/`version` with the real-train reference row and the Parzen score, 202 + Location
    while they are computed. A GET never queues work: the service scores every version after training; a
    version never scored answers 404 saying how to ask (`POST /scores?model=…&version=…`)."""
    row = stored_results.find_version(model, version)
    found = scores.saved(row)
    job = scores.latest_job(row)
    if job is not None and job.status not in FINISHED:
        return _pending(row, job, 202)
    if found is not None:
        return scores.compose(row, *found)
    why = f"its last scores job /jobs/{job.id} {job.status}{f': {job.error}' if job.error else ''}; " if job else ""
    raise NotFound(f"{row.name} v{row.version} has no scores ({why}ask for them with POST /scores?model={row.name}"
                   f"&version={row.version})")


@router.post("/scores", status_code=202, response_model=ScoresPending)
def post_scores(_: ApiKey, model: str = _MODEL, version: int | None = _VERSION,
                idempotency_key: str | None = Header(default=None, max_length=200)) -> Any:
    """Queue a (re)computation of the version's scores (and, first, its dataset's classifier if it has none);
    202 with the job's Location. An `Idempotency-Key` repeat returns the first job."""
    row = stored_results.find_version(model, version)
    job, _ = scores.submit(model, version, idempotency_key)
    return _pending(row, job, 202)
