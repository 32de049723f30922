"""A seed sweep's settlement: once every member has ended, register the members' versions in one transaction,
the others first (unless keep is "best-only"), the best by validation score last (so it is the latest) and
under the alias `best`.

Whoever sees the last member end settles: the worker of a member that ran (worker/train_job.py), or
POST /jobs/{id}/cancel when the last member was cancelled while still queued (no worker ever runs it).
Idempotent: the first caller registers, the others find the sweep settled. The callers queue the new
versions' scores (service/evaluation/scores.py's queue_all_for_version) after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from sqlalchemy import exists, func, select

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Job, ModelVersion, Sweep
from service.jobs.status import FINISHED
from service.versions import manage, refs

log = logging.getLogger(__name__)

BEST_ALIAS = "best"


def _order(sweep: Sweep) -> list[str]:
    """Member job ids to register, best last; the best alone with keep "best-only"."""
    ranked = sorted(sweep.results, key=lambda j: sweep.results[j]["valid_ll"])
    return ranked[-1:] if sweep.keep == "best-only" else ranked


def settle(sweep_id: uuid.UUID) -> list[tuple[str, int]]:
    """Register the sweep's versions once every member has ended; returns the (name, version) registered, best
    last ([] while members are still queued or running, when already settled, or when none succeeded)."""
    registered: list[tuple[str, int]] = []
    with session_scope() as session:
        sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
        if sweep is None or sweep.settled_at is not None:
            return []
        statuses = session.scalars(select(Job.status).where(Job.sweep_id == sweep_id)).all()
        if any(s not in FINISHED for s in statuses):
            return []
        refs.lock_name(session, sweep.model_name)
        first = refs.next_number(session, sweep.model_name)   # past retired numbers too: never reused
        order = _order(sweep)
        results = {k: dict(v) for k, v in sweep.results.items()}
        for number, job_id in enumerate(order, start=first):
            fields = results[job_id]["fields"]
            fields["metrics"] = {**fields["metrics"], "sweep_id": str(sweep_id), "sweep_best": job_id == order[-1]}
            session.add(ModelVersion(name=sweep.model_name, version=number, job_id=uuid.UUID(job_id), **fields))
            results[job_id]["version"] = number
            registered.append((sweep.model_name, number))
        dropped = {results[j]["fields"]["artifact_key"] for j in results if j not in order}
        kept = {results[j]["fields"]["artifact_key"] for j in order}
        for key in dropped - kept:
            blobs.delete(session, key)
        if registered:
            session.flush()
            manage.set_alias(session, sweep.model_name, BEST_ALIAS, registered[-1][1])
        sweep.results = results
        sweep.best_job_id = uuid.UUID(order[-1]) if order else None
        sweep.settled_at = func.now()
    log.info("sweep %s settled: registered %s", sweep_id, registered)
    return registered


def settle_ended(then: Callable[[str, int], None]) -> int:
    """Settle every unsettled sweep whose members have all ended, calling then(name, version) for each version
    registered; returns how many sweeps. For members ended where nothing settles their sweep: by the
    reconciler's time limit, or after the claim's attempt limit (a worker or a cancel settles the others)."""
    unfinished = exists().where(Job.sweep_id == Sweep.id, Job.status.not_in(FINISHED))
    with session_scope() as session:
        ended = session.scalars(select(Sweep.id).where(Sweep.settled_at.is_(None), ~unfinished)).all()
    for sweep_id in ended:
        for name, number in settle(sweep_id):
            then(name, number)
    return len(ended)


__all__ = ["BEST_ALIAS", "settle", "settle_ended"]
