"""Changing the registry: aliases set and dropped, versions retired with everything they stored; and the
model card, everything known about one version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.db import blobs
from service.db.tables import Evaluation, JobSnapshot, ModelAlias, ModelVersion, RetiredVersion
from service.errors import InUse, NotFound
from service.versions import refs


def card(session: Session, row: ModelVersion) -> dict[str, Any]:
    """The model card's facts (service/api/schemas.py's ModelCard documents them)."""
    scores = {e.kind: {k: e.result[k] for k in ("ll", "se", "sigma", "n_samples", "n_test") if k in e.result}
              for e in session.scalars(select(Evaluation).where(Evaluation.model_version_id == row.id,
                                                                Evaluation.reference == ""))}
    aliases = [a for a, v in refs.aliases_of(session, row.name).items() if v == row.version]
    base = f"/models/{row.name}/versions/{row.version}"
    return {"name": row.name, "version": row.version, "job_id": row.job_id, "created_at": row.created_at,
            "dataset": row.dataset, "dataset_sha256": row.dataset_sha256, "latent_dim": row.latent_dim,
            "noise": row.noise, "image_shape": list(row.image_shape), "config": row.config,
            "metrics": row.metrics, "scores": scores, "aliases": aliases,
            "artifact": {"sha256": row.artifact_sha256, "size": row.artifact_size, "format": "onnx",
                         "url": f"{base}/onnx"},
            "links": {"self": base, "job": f"/jobs/{row.job_id}", "onnx": f"{base}/onnx",
                      "samples": f"/samples?model={row.name}&version={row.version}"}}


def set_alias(session: Session, name: str, alias: str, version: int) -> ModelAlias:
    """Point `alias` at `version` (created or moved); NotFound when the version does not exist."""
    refs.lock_name(session, name)
    refs.find(session, name, version)
    row = session.get(ModelAlias, (name, alias))
    if row is None:
        row = ModelAlias(name=name, alias=alias, version=version)
        session.add(row)
    else:
        row.version = version
        row.updated_at = func.now()
    session.flush()
    return row


def drop_alias(session: Session, name: str, alias: str) -> None:
    refs.lock_name(session, name)
    row = session.get(ModelAlias, (name, alias))
    if row is None:
        raise NotFound(refs.not_found_message(session, name, alias))
    session.delete(row)


def retire(session: Session, name: str, ref: refs.VersionRef) -> int:
    """Delete a version with its artifact, snapshots, checkpoints and scores; its number is never reused.
    Refused (InUse, 409) while an alias points at it. Returns the number retired."""
    refs.lock_name(session, name)
    row = refs.find(session, name, ref)
    pointing = [a for a, v in refs.aliases_of(session, name).items() if v == row.version]
    if pointing:
        raise InUse(f"version {row.version} of {name!r} is what alias(es) {', '.join(pointing)} point at: move "
                    f"or DELETE /models/{name}/aliases/{{alias}} first")
    snapshot_keys = session.scalars(select(JobSnapshot.blob_key).where(JobSnapshot.job_id == row.job_id)).all()
    session.execute(delete(JobSnapshot).where(JobSnapshot.job_id == row.job_id))
    for key in (*snapshot_keys, blobs.checkpoint_key(row.job_id), blobs.best_key(row.job_id)):
        blobs.delete(session, key)
    session.execute(delete(Evaluation).where(Evaluation.model_version_id == row.id))
    shared = session.scalar(select(func.count()).select_from(ModelVersion).where(
        ModelVersion.artifact_key == row.artifact_key, ModelVersion.id != row.id))
    if not shared:
        blobs.delete(session, row.artifact_key)
    number = row.version
    session.delete(row)
    session.add(RetiredVersion(name=name, version=number))
    return number
