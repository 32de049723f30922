"""/parzen: a model version's Parzen-window log-likelihood beside Table 1 of the paper."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from service.api import problems
from service.api.auth import credentials_valid, scope_keys
from service.api.evaluation_schemas import ParzenOut, ParzenPending
from service.api.schemas import JobOut
from service.evaluation import parzen, stored_results
from service.jobs.status import FINISHED, JobStatus
from service.versions.refs import VERSION_HELP, VersionParam

router = APIRouter(tags=["evaluation"])

# How soon a client polling a pending score should ask again: one evaluation takes seconds on MNIST.
RETRY_AFTER_S = 3


@router.get("/parzen", response_model=ParzenOut, responses={
    202: {"model": ParzenPending, "description": "no score yet: the evaluation job to follow (Location)"}})
def get_parzen(request: Request, model: str = Query(description="model name, see GET /models"),
               version: Annotated[VersionParam | None, Query(description=VERSION_HELP)] = None) -> Any:
    """The score of `model`/`version` (mean test log-likelihood ± standard error, the chosen σ and the whole
    σ grid) with Table 1's rows, the real-data reference row and the protocol.

    No score yet: 202 with `Location: /jobs/{id}` of the pending evaluation, queued here if none is queued or
    running (at most one automatic evaluation per version, so polling is safe). Queuing runs a worker job, so
    it needs an API key like any job: without one, 401 when nothing is queued yet. Its last evaluation failed or
    was cancelled: 409; queue a new one with `POST /jobs {"kind": "parzen", "model": …, "version": …}`.

    Caveat: the Parzen window estimate has high variance and is poor in high dimensions (the paper), and
    Theis et al. (2016) show it can rank models unlike their true likelihood; see `caveat` in the body."""
    row = stored_results.find_version(model, version)  # 404 listing the known models and versions
    body = parzen.result_for(row)
    if body is not None:
        return body
    field = "version" if version is not None else "model"
    last = parzen.latest_job(row)
    if last is not None and last.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        why = f": {last.error}" if last.error else ""
        message = (f"the last Parzen evaluation of {row.name} v{row.version} (job /jobs/{last.id}) was "
                   f"{last.status}{why}; queue a new one with POST /jobs {{\"kind\": \"parzen\", \"model\": "
                   f"\"{row.name}\", \"version\": {row.version}}}")
        return problems.problem(409, message, [{"field": field, "message": message}])
    parzen.check_dataset(row, field)  # 422 when the dataset has no validation/test split
    job = last if last is not None and last.status not in FINISHED else None
    if job is None:
        if not credentials_valid(scope_keys(request.scope)):
            raise HTTPException(401, f"no Parzen score for {row.name} v{row.version} and no evaluation queued; "
                                     f"queuing one needs an API key (X-API-Key or Bearer)",
                                headers={"WWW-Authenticate": "Bearer"})
        job = parzen.ensure_queued(row)
    pending = ParzenPending.model_validate({
        "detail": f"no Parzen score for {row.name} v{row.version} yet; job {job.id} is {job.status}: "
                  f"follow /jobs/{job.id} and ask again",
        "model": row.name, "version": row.version, "dataset": row.dataset, "job": JobOut.of(job),
        "references": parzen.references(row.dataset),
        "protocol": parzen.describe_protocol(job.config, row.dataset), "caveat": parzen.CAVEAT})
    return JSONResponse(pending.model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/jobs/{job.id}", "Retry-After": str(RETRY_AFTER_S)})
