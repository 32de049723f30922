"""/jobs: queue training and evaluation jobs, follow them, cancel them."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Header, Path, Query, Response

from models.config import ConfigError
from service.api.deps import ApiKey
from service.api.schemas import JobOut, JobRequest
from service.bounds import DB_INT_MAX, MODEL_NAME
from service.db import blobs
from service.db.engine import session_scope
from service.errors import NotFound
from service.evaluation import collapse, curves, parzen, scores
from service.jobs import store, sweeps
from service.jobs.status import JobStatus
from service.versions import sweep_settle

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=202, response_model=JobOut)
def create_job(_: ApiKey, body: JobRequest, response: Response,
               idempotency_key: str | None = Header(default=None, max_length=200)) -> JobOut:
    """Queue a job. 202 with its Location; an `Idempotency-Key` repeat returns the first job. With `seeds`, a
    sweep: one training job per seed; the body is the first member's, with `sweep_id`, and Location the sweep."""
    if body.seeds is not None or body.sweep_keep is not None:
        if body.kind != "train" or body.seeds is None:
            raise ConfigError("seeds" if body.seeds is None else "kind",
                              "a sweep is a list of seeds for a training job (kind 'train')")
        sweep, members = sweeps.submit(body.model, body.preset, body.dataset, body.overrides(), body.seeds,
                                       body.sweep_keep or "all", idempotency_key)
        response.headers["Location"] = f"/sweeps/{sweep.id}"
        return JobOut.of(members[0])
    if body.kind == "parzen":
        job, _ = parzen.submit(body.model, body.version, idempotency_key)
    else:
        job, _ = store.submit_train(body.model, body.preset, body.dataset, body.overrides(), idempotency_key)
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobOut.of(job)


@router.get("", response_model=list[JobOut])
def list_jobs(status: JobStatus | None = None,
              model: str | None = Query(default=None, pattern=MODEL_NAME),
              limit: int = Query(default=100, ge=1, le=1000)) -> list[JobOut]:
    return [JobOut.of(job) for job in store.list_jobs(status, model, limit)]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID) -> JobOut:
    job = store.get(job_id)
    return JobOut.of(job, collapse.warning(job))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(_: ApiKey, job_id: uuid.UUID) -> JobOut:
    """A queued job is cancelled now; a running one at its next iteration check. A sweep whose last member was
    cancelled while queued is settled here: no worker will end that member."""
    job = store.cancel(job_id)
    if job.sweep_id is not None and job.status == JobStatus.CANCELLED:
        for name, number in sweep_settle.settle(job.sweep_id):
            scores.queue_all_for_version(name, number)
    return JobOut.of(job)


@router.get("/{job_id}/metrics", responses={200: {"content": {"application/json": {}, "text/csv": {},
                                                                "image/svg+xml": {}}}})
def job_metrics(job_id: uuid.UUID, after: int = Query(default=-1, ge=-1, le=DB_INT_MAX),
                format: Literal["json", "csv", "svg"] = "json") -> object:
    """The training curves: one row per logging interval (iteration, lr, losses, D(x), D(G(z)), V, JSD…);
    `format=csv` for a spreadsheet, `format=svg` for a chart of D(x) / D(G(z)), the losses and the JSD."""
    job = store.get(job_id)                  # 404 for an unknown job rather than an empty list
    rows = store.metrics(job_id, after)
    if format == "csv":
        return Response(curves.to_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{job_id}-metrics.csv"'})
    if format == "svg":
        title = f"{job.model_name} · {job.config.get('preset', '')} · job {str(job_id)[:8]}"
        return Response(curves.to_svg(rows, title), media_type="image/svg+xml")
    return rows


@router.get("/{job_id}/snapshots")
def job_snapshots(job_id: uuid.UUID) -> list[dict[str, object]]:
    """Sample grids from a fixed z, one per snapshot interval."""
    return [{"iteration": s.iteration, "url": f"/jobs/{job_id}/snapshots/{s.iteration}"}
            for s in store.snapshots(job_id)]


@router.get("/{job_id}/snapshots/{iteration}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def job_snapshot(job_id: uuid.UUID, iteration: int = Path(ge=0, le=DB_INT_MAX)) -> Response:
    snap = next((s for s in store.snapshots(job_id) if s.iteration == iteration), None)
    if snap is None:
        raise NotFound(f"job {job_id} has no snapshot at iteration {iteration}")
    with session_scope() as session:
        png = blobs.get(session, snap.blob_key)
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})
