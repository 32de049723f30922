"""/models: the registry of trained generators, their versions and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from service.api.schemas import ModelOut, VersionOut
from service.db.engine import session_scope
from service.db.tables import ModelVersion
from service.evaluation import scores

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=list[ModelOut])
def list_models() -> list[ModelOut]:
    with session_scope() as session:
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)).all()
    scored = scores.summaries([row.id for row in rows])
    by_name: dict[str, list[VersionOut]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(VersionOut.of(row, scored.get(row.id)))
    return [ModelOut(name=name, latest=versions[-1].version, versions=versions)
            for name, versions in by_name.items()]
