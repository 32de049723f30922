"""Uploaded datasets in PostgreSQL, and the bridge that lets models.datasets reach them from any process.

Dependency direction: models.datasets knows nothing of the database; it asks registered sources for names it
does not define. Importing this module registers `DatabaseSource` (the API's service/main.py, the worker's
worker/tasks.py and the CLI import it), so `datasets.dataset_names()` lists uploads and
`datasets.load(name, …)` loads one on any worker: the row gives the blob key and sha256, the bytes come from
the blob store (through the local sha256-verified cache) and are decoded once per process and version.

The listing merges the code's datasets (builtin, toy; described without touching their files) with the rows.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import datasets
from models.datasets import StoredRef
from service.datasets.uploads import Prepared, UploadOptions
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Dataset, Job, ModelVersion
from service.errors import InvalidParameter, NotFound
from service.jobs.status import JobStatus

SOURCE_KEY = "database"


class DatasetInUse(RuntimeError):
    """DELETE of a dataset a model version or an unfinished job uses (→ 409)."""


def _read(blob_key: str, sha256: str) -> bytes:
    with session_scope() as session:
        return blobs.get_verified(session, blob_key, sha256)


class DatabaseSource:
    """models.datasets.DatasetSource over the `datasets` table."""

    def names(self) -> list[str]:
        with session_scope() as session:
            return list(session.scalars(select(Dataset.name).order_by(Dataset.created_at, Dataset.name)))

    def lookup(self, name: str) -> StoredRef | None:
        with session_scope() as session:
            row = session.get(Dataset, name)
        if row is None or row.blob_key is None:
            return None
        return StoredRef(name=row.name, sha256=row.sha256, image_shape=tuple(row.image_shape),
                         read=functools.partial(_read, row.blob_key, row.sha256), kind=row.kind)


datasets.register_source(SOURCE_KEY, DatabaseSource())


def blob_key(name: str, sha256: str) -> str:
    return f"datasets/{name}/{sha256}.npz"


def _models_by_dataset(session: Any) -> dict[str, list[str]]:
    rows = session.execute(select(ModelVersion.dataset, ModelVersion.name).distinct()
                           .order_by(ModelVersion.dataset, ModelVersion.name)).all()
    out: dict[str, list[str]] = {}
    for dataset, model in rows:
        out.setdefault(dataset, []).append(model)
    return out


def _code_entry(spec: datasets.DatasetSpec, models: list[str]) -> dict[str, Any]:
    train, valid, test = spec.counts or (0, 0, 0)
    return {"name": spec.name, "kind": spec.kind, "image_shape": list(spec.image_shape),
            "counts": {"train": train, "valid": valid, "test": test}, "source": spec.source,
            "sha256": spec.digest, "size": None, "seed": None, "options": {}, "created_at": None,
            "models": models}


def _row_entry(row: Dataset, models: list[str]) -> dict[str, Any]:
    return {"name": row.name, "kind": row.kind, "image_shape": list(row.image_shape), "counts": dict(row.counts),
            "source": row.source, "sha256": row.sha256, "size": row.size, "seed": row.seed,
            "options": dict(row.options), "created_at": row.created_at, "models": models}


def list_all() -> list[dict[str, Any]]:
    """Every dataset: the code's first (registry order), then uploads (oldest first)."""
    with session_scope() as session:
        used = _models_by_dataset(session)
        rows = list(session.scalars(select(Dataset).order_by(Dataset.created_at, Dataset.name)))
        entries = [_code_entry(spec, used.get(name, [])) for name, spec in datasets.DATASETS.items()]
        return entries + [_row_entry(row, used.get(row.name, [])) for row in rows]


def get(name: str) -> dict[str, Any]:
    with session_scope() as session:
        used = _models_by_dataset(session).get(name, [])
        if name in datasets.DATASETS:
            return _code_entry(datasets.DATASETS[name], used)
        row = session.get(Dataset, name)
        if row is None:
            raise NotFound(f"no dataset {name!r}; known datasets: {', '.join(datasets.dataset_names())}")
        return _row_entry(row, used)


def _taken(name: str) -> InvalidParameter:
    return InvalidParameter("name", f"{name!r} is taken; choose another name (GET /datasets lists them)")


def check_free(name: str) -> None:
    """Cheap check before the expensive decoding; the insert's primary key settles races."""
    if name in datasets.DATASETS:
        raise _taken(name)
    with session_scope() as session:
        if session.get(Dataset, name) is not None:
            raise _taken(name)


def create(name: str, prepared: Prepared, options: UploadOptions) -> dict[str, Any]:
    """The row and its array blob in one transaction: both or neither."""
    if name in datasets.DATASETS:
        raise _taken(name)
    key = blob_key(name, prepared.sha256)
    c, h, w = prepared.image_shape
    source = (f"upload of {prepared.filename!r} ({prepared.archive_format}, {sum(prepared.counts.values())} "
              f"images, {'RGB' if c == 3 else 'grayscale'} {w}x{h})")
    row = Dataset(name=name, kind="upload", image_shape=list(prepared.image_shape), counts=prepared.counts,
                  source=source, sha256=prepared.sha256, blob_key=key, size=len(prepared.npz), seed=options.seed,
                  options=options.to_json())
    try:
        with session_scope() as session:
            session.add(row)
            session.flush()  # the primary key conflict surfaces here, before the blob is written
            blobs.put(session, key, prepared.npz, "application/x-npz")
    except IntegrityError:
        raise _taken(name) from None
    return get(name)


def hold(session: Session, name: str) -> None:
    """Keep an uploaded dataset from being deleted until the session's transaction ends: a job registering a
    version on it takes this share lock, delete() the exclusive one, so one waits for the other and delete's
    checks see either the running job or its version, never neither."""
    session.execute(select(Dataset.name).where(Dataset.name == name).with_for_update(read=True))


def delete(name: str) -> None:
    """Refused while a model version was trained on it or an unfinished job names it."""
    if name in datasets.DATASETS:
        raise DatasetInUse(f"dataset {name!r} is {datasets.DATASETS[name].kind} (defined in code) and cannot be "
                           "deleted")
    with session_scope() as session:
        row = session.get(Dataset, name, with_for_update=True)
        if row is None:
            raise NotFound(f"no dataset {name!r}; known datasets: {', '.join(datasets.dataset_names())}")
        models = _models_by_dataset(session).get(name, [])
        if models:
            raise DatasetInUse(f"dataset {name!r} is used by model(s) {', '.join(models)}; it stays while a "
                               "model version records it")
        pending = session.scalar(select(func.count()).select_from(Job).where(
            Job.dataset == name, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))))
        if pending:
            raise DatasetInUse(f"dataset {name!r} is used by {pending} queued or running job(s); cancel them or "
                               "wait for them to finish")
        if row.blob_key:
            blobs.delete(session, row.blob_key)
        session.delete(row)


__all__ = ["DatabaseSource", "DatasetInUse", "blob_key", "check_free", "create", "delete", "get", "hold",
           "list_all"]
