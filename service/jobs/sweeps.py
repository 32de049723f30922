"""Seed sweeps on the API side: one training job per seed, created together, read back as one sweep.

POST /jobs with "seeds" makes a `sweeps` row and one `train` job per seed (the same config, its own seed),
each carrying the sweep's id. Each member is scored on the validation split at its end; when the last one
ends, its worker registers the versions (worker/sweep_member.py): the others first (unless keep is
"best-only"), the best by validation score last, so it is the model's latest version.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import func, select

from models import datasets
from models.config import ConfigError, resolve
from service.db.engine import session_scope
from service.db.tables import Job, JobMetric, Sweep
from service.errors import NotFound
from service.jobs import store
from service.jobs.status import JobStatus
from service.settings import get_settings

KEEP = ("all", "best-only")


def check_seeds(seeds: list[int], overrides: dict[str, Any]) -> None:
    limit = get_settings().max_sweep_seeds
    if "seed" in overrides:
        raise ConfigError("seeds", "give either seed (one job) or seeds (a sweep), not both")
    if len(seeds) > limit:
        raise ConfigError("seeds", f"at most {limit} seeds per sweep (settings.max_sweep_seeds), got {len(seeds)}")
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise ConfigError("seeds", f"each seed at most once; repeated: {', '.join(map(str, duplicates))}")


def _member_key(key: str | None, seed: int) -> str | None:
    return None if key is None else f"sweep:{hashlib.sha256(key.encode()).hexdigest()[:40]}:{seed}"


def submit(model: str, preset: str, dataset: str | None, overrides: dict[str, Any], seeds: list[int], keep: str,
           idempotency_key: str | None = None) -> tuple[Sweep, list[Job]]:
    """Validate, then create the sweep and its members (commit, then enqueue each)."""
    check_seeds(seeds, overrides)
    config = resolve(preset, dataset, **overrides)      # ConfigError names a bad field before anything is made
    if config.dataset in datasets.dataset_names() and store.has_no_validation_split(config.dataset):
        raise ConfigError("seeds", f"dataset {config.dataset!r} has no validation split: a sweep picks its best "
                                   "member by validation score")
    first = store.find_by_idempotency_key(_member_key(idempotency_key, seeds[0]) or "")
    if first is not None and first.sweep_id is not None:
        return get(first.sweep_id), members(first.sweep_id)
    sweep = Sweep(id=uuid.uuid4(), model_name=model, seeds=list(seeds), keep=keep, results={})
    with session_scope() as session:
        session.add(sweep)
    jobs = [store.submit_train(model, preset, dataset, {**overrides, "seed": seed}, _member_key(idempotency_key, seed),
                               sweep_id=sweep.id)[0] for seed in seeds]
    return sweep, jobs


def get(sweep_id: uuid.UUID) -> Sweep:
    with session_scope() as session:
        sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id}")
    return sweep


def members(sweep_id: uuid.UUID) -> list[Job]:
    with session_scope() as session:
        return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.created_at)))


def _latest_valid_ll(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    """The newest valid_ll of each running member that scores while it trains (score_every)."""
    with session_scope() as session:
        newest = (select(JobMetric.job_id, func.max(JobMetric.iteration).label("it"))
                  .where(JobMetric.job_id.in_(job_ids), JobMetric.values.has_key("valid_ll"))
                  .group_by(JobMetric.job_id).subquery())
        rows = session.execute(select(JobMetric.job_id, JobMetric.values["valid_ll"].as_float())
                               .join(newest, (JobMetric.job_id == newest.c.job_id)
                                     & (JobMetric.iteration == newest.c.it)))
        return {job_id: float(v) for job_id, v in rows}


def status_of(sweep: Sweep, jobs: list[Job]) -> JobStatus:
    """queued / running until every member has ended and the last one's worker registered the versions;
    then succeeded (a best member exists) or failed (none succeeded)."""
    if sweep.settled_at is None:
        return JobStatus.QUEUED if all(job.status == JobStatus.QUEUED for job in jobs) else JobStatus.RUNNING
    return JobStatus.SUCCEEDED if sweep.best_job_id is not None else JobStatus.FAILED


def describe(sweep: Sweep) -> dict[str, Any]:
    """The GET /sweeps/{id} body."""
    jobs = members(sweep.id)
    live = _latest_valid_ll([j.id for j in jobs if j.status == JobStatus.RUNNING])
    rows = []
    for job in jobs:
        result = sweep.results.get(str(job.id), {})
        rows.append({"job_id": job.id, "seed": job.config.get("seed"), "status": job.status,
                     "progress": job.progress, "iteration": job.iteration,
                     "valid_ll": result.get("valid_ll", live.get(job.id)), "valid_ll_se": result.get("valid_ll_se"),
                     "version": result.get("version"), "restarts": len(job.restarts or []), "error": job.error})
    best = next((r for r in rows if r["job_id"] == sweep.best_job_id), None)
    return {"id": sweep.id, "model": sweep.model_name, "status": status_of(sweep, jobs), "keep": sweep.keep,
            "seeds": sweep.seeds, "members": rows, "best": best, "created_at": sweep.created_at,
            "settled_at": sweep.settled_at}
