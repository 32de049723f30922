"""A job's status: the transition table, its guard in the database, and one module that writes the status."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from service.db.engine import session_scope
from service.db.tables import Job
from service.jobs import status
from service.jobs.status import FINISHED, TRANSITIONS, JobStatus
from tests.conftest import REPO

STATUS_MODULE = Path("service/jobs/status.py")
SCANNED = ("service", "worker", "models")
STATUS_WORDS = {member.value for member in JobStatus}
# A status spelled inside SQL text: `status = 'running'`, `IN ('queued', ...)`.
QUOTED_STATUS = re.compile(r"'(" + "|".join(STATUS_WORDS) + r")'")
RAW_STATUS_WRITE = re.compile(r"\b(update\s+jobs\b[\s\S]*\bset\b[\s\S]*\bstatus\s*=|insert\s+into\s+jobs\b)",
                              re.IGNORECASE)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _on_jobs(call: ast.Call) -> bool:
    """Whether a method call chain starts at update(Job) / insert(Job) / Job.__table__.update()."""
    expr: ast.expr = call
    while isinstance(expr, ast.Call):
        if _name(expr.func) in ("update", "insert"):
            if expr.args:
                return _name(expr.args[0]) == "Job"
            owner = expr.func.value if isinstance(expr.func, ast.Attribute) else None
            return isinstance(owner, ast.Attribute) and owner.attr == "__table__" and _name(owner.value) == "Job"
        if not isinstance(expr.func, ast.Attribute):
            return False
        expr = expr.func.value
    return False


def _names_status(mapping: ast.expr) -> bool:
    """A dict display with a "status" key or a Job.status key."""
    return isinstance(mapping, ast.Dict) and any(
        (isinstance(key, ast.Constant) and key.value == "status")
        or (isinstance(key, ast.Attribute) and key.attr == "status" and _name(key.value) == "Job")
        for key in mapping.keys if key is not None)


def _sets_status(call: ast.Call) -> bool:
    keywords = {kw.arg for kw in call.keywords}
    dicts = [*call.args, *(kw.value for kw in call.keywords if kw.arg in (None, "set_"))]
    return "status" in keywords or any(_names_status(d) for d in dicts)


def status_writes(source: str) -> list[int]:
    """Lines that write a job's status: Job(status=...), .values(status=...) (and dict forms, on_conflict's
    set_) on update(Job) / insert(Job), lease.write(status=...), `x.status = ...`, setattr(x, "status", ...),
    and SQL text that updates jobs' status or inserts jobs. Only Job rows have a `.status` attribute here."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = _name(node.func)
            if ((func in ("Job", "write") or _on_jobs(node)) and _sets_status(node)) \
                    or (func == "setattr" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                        and node.args[1].value == "status"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in flat):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_STATUS_WRITE.search(node.value):
            lines.append(node.lineno)
    return sorted(set(lines))


def status_strings(source: str) -> list[int]:
    """Lines spelling a status as a string: the exact word, or quoted inside SQL text."""
    return sorted({node.lineno for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and (node.value in STATUS_WORDS or QUOTED_STATUS.search(node.value))})


def python_files() -> dict[Path, str]:
    return {path.relative_to(REPO): path.read_text() for package in SCANNED for path in (REPO / package).rglob("*.py")}


def test_only_the_status_module_writes_a_job_status() -> None:
    found = {path: lines for path, text in python_files().items() if (lines := status_writes(text))}
    assert found.pop(STATUS_MODULE, None), "the checker no longer sees the writes it must allow"
    assert not found, f"only {STATUS_MODULE} may write Job.status; use its functions instead: {found}"


def test_only_the_status_module_spells_a_status() -> None:
    found = {path: lines for path, text in python_files().items() if (lines := status_strings(text))}
    assert found.pop(STATUS_MODULE, None)
    assert not found, f"use JobStatus members, not strings: {found}"


@pytest.mark.parametrize("code", [
    'Job(id=i, status="queued")',
    'tables.Job(status=JobStatus.RUNNING)',
    'update(Job).where(Job.id == i).values(status="failed")',
    'sa.update(Job).values({"status": "failed"})',
    'update(Job).values({Job.status: "failed"})',
    'update(Job).where(x).values(**{"status": s}).returning(Job.id)',
    'Job.__table__.update().values(status="failed")',
    'insert(Job).values(id=i).on_conflict_do_update(index_elements=["id"], set_={"status": "queued"})',
    'lease.write(session, status="succeeded", progress=1.0)',
    'job.status = "cancelled"',
    'row.status, row.error = "failed", "boom"',
    'setattr(job, "status", "failed")',
    'session.execute(text("UPDATE jobs SET error = NULL, status = :s WHERE id = :i"))',
])
def test_the_checker_sees_each_way_of_writing_a_status(code: str) -> None:
    assert status_writes(code) == [1]


@pytest.mark.parametrize("code", [
    'problem(status=404, detail="no job")',                       # HTTP statuses
    '_record(scope, status=500, elapsed=0.1)',
    'log.info("done", extra={"status": 200})',
    'message = {"type": "http.response.start", "status": 200}',
    'JSONResponse({"status": "ok"}, status_code=200)',
    'update(Job).where(Job.status == JobStatus.RUNNING).values(updated_at=now)',   # reads of the status
    'select(Job).where(Job.status.in_(FINISHED))',
    'update(Dataset).values(status="ready")',                     # another table
    'text("SELECT status, count(*) FROM jobs GROUP BY status")',
])
def test_the_checker_leaves_other_statuses_alone(code: str) -> None:
    assert status_writes(code) == []


def test_the_transition_table() -> None:
    q, r, s, f, c = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED,
                     JobStatus.CANCELLED)
    assert TRANSITIONS == {q: {r, c, f}, r: {r, s, c, f}, s: set(), f: set(), c: set()}
    assert set(FINISHED) == {s, f, c} and all(not TRANSITIONS[done] for done in FINISHED)
    assert status.sources(r) == (q, r) and status.sources(s) == (r,) and status.sources(q) == ()
    assert [member.value for member in JobStatus] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert JobStatus.QUEUED == "queued" and f"{JobStatus.FAILED}" == "failed"   # the column's and the API's strings
    with pytest.raises(ValueError, match="not a finished status"):
        status.finish(Job.id == uuid.uuid4(), JobStatus.RUNNING)


def test_the_database_refuses_what_the_table_does_not_allow(stack: None) -> None:
    """Each write, tried on a job in every status: only the table's moves land."""
    writes = {
        JobStatus.RUNNING: lambda where: status.claim(where, uuid.uuid4()),
        JobStatus.CANCELLED: lambda where: status.finish(where, JobStatus.CANCELLED),
        JobStatus.SUCCEEDED: lambda where: status.finish(where, JobStatus.SUCCEEDED, progress=1.0),
        JobStatus.FAILED: lambda where: status.finish(where, JobStatus.FAILED, "boom"),
    }
    ids = {(start, target): uuid.uuid4() for start in JobStatus for target in writes}
    with session_scope() as session:
        session.add_all(Job(id=job_id, kind="train", model_name="status-guard", dataset="mnist", config={},
                            status=start, progress=0.0, iteration=0, attempts=0, cancel_requested=False)
                        for (start, _), job_id in ids.items())
    try:
        with session_scope() as session:
            for (_, target), job_id in ids.items():
                session.execute(writes[target](Job.id == job_id))
            after = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(list(ids.values())))).all())
        for (start, target), job_id in ids.items():
            assert after[job_id] == (target if target in TRANSITIONS[start] else start), (start, target)
    finally:                          # never real jobs: no reconciler may send them to a worker
        with session_scope() as session:
            session.execute(delete(Job).where(Job.id.in_(list(ids.values()))))


def test_cancel_moves_only_a_queued_job(stack: None) -> None:
    ids = {start: uuid.uuid4() for start in JobStatus}
    with session_scope() as session:
        session.add_all(Job(id=job_id, kind="train", model_name="status-cancel", dataset="mnist", config={},
                            status=start, progress=0.0, iteration=0, attempts=0, cancel_requested=False)
                        for start, job_id in ids.items())
    try:
        with session_scope() as session:
            for job_id in ids.values():
                session.execute(status.cancel_queued(job_id))
            after = {row.id: (row.status, row.cancel_requested)
                     for row in session.scalars(select(Job).where(Job.id.in_(list(ids.values()))))}
        assert after.pop(ids[JobStatus.QUEUED]) == (JobStatus.CANCELLED, True)
        assert after == {ids[start]: (start, False) for start in JobStatus if start != JobStatus.QUEUED}
    finally:
        with session_scope() as session:
            session.execute(delete(Job).where(Job.id.in_(list(ids.values()))))
