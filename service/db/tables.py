"""Database tables (SQLAlchemy 2 typed ORM). PostgreSQL is the source of truth for jobs and versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    # The fully resolved TrainConfig (or the evaluation's parameters): what the worker runs.
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # For evaluation jobs: which version of model_name they score.
    target_version: Mapped[int | None] = mapped_column(Integer)
    # A service.jobs.status.JobStatus value, written only by that module.
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    iteration: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # A worker owns a running job through its lease token; every write it makes is fenced by it.
    lease_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # A member of a seed sweep (POST /jobs with "seeds"): the sweep it belongs to.
    sweep_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sweeps.id"), index=True)
    # Each time a lost game started the run over (on_lost "restart"): {iteration, seed, next_seed, reason}.
    restarts: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class Sweep(Base):
    """One training job per seed; when all have ended the best by validation score is registered last."""

    __tablename__ = "sweeps"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    model_name: Mapped[str] = mapped_column(String(64))
    seeds: Mapped[list[Any]] = mapped_column(JSONB)
    # "all": every member becomes a version (the best last); "best-only": only the best does.
    keep: Mapped[str] = mapped_column(String(16))
    # job id -> what the member left for registration (artifact key, sha256, size, metrics, valid_ll ...).
    results: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    best_job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Classifier(Base):
    """A dataset's classifier (ONNX: features and class probabilities), whose outputs the scores read."""

    __tablename__ = "classifiers"
    __table_args__ = (UniqueConstraint("dataset", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"))
    artifact_key: Mapped[str] = mapped_column(String(300))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    n_classes: Mapped[int] = mapped_column(Integer)
    features: Mapped[int] = mapped_column(Integer)
    test_accuracy: Mapped[float] = mapped_column(Float)
    # Training details: epochs, the best epoch, held-out accuracy per epoch, seconds.
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"), unique=True)
    artifact_key: Mapped[str] = mapped_column(String(300))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    latent_dim: Mapped[int] = mapped_column(Integer)
    # The noise prior, e.g. {"kind": "uniform", "low": -1.732, "high": 1.732}.
    noise: Mapped[dict[str, Any]] = mapped_column(JSONB)
    image_shape: Mapped[list[Any]] = mapped_column(JSONB)
    dataset: Mapped[str] = mapped_column(String(64))
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The learned inference net E(x) -> z trained with G, {"key", "sha256", "size"} of its ONNX blob; or None.
    encoder: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModelAlias(Base):
    """A name for one version of a model ("production" -> 3), moved by PUT and dropped by DELETE. The foreign
    key keeps a version from being deleted while an alias points at it."""

    __tablename__ = "model_aliases"
    __table_args__ = (ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class RetiredVersion(Base):
    """A deleted version's number, so it is never given again, and a 404 can say it was retired."""

    __tablename__ = "retired_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Blob(Base):
    """The artifact store: ONNX files, checkpoints, snapshots, datasets. Every worker and API reaches it.
    The bytes are in BlobChunk rows (service/db/blobs.py)."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BlobChunk(Base):
    """One piece of a blob, in order: a bytea value holds at most 1 GB, and one row is read at a time."""

    __tablename__ = "blob_chunks"

    key: Mapped[str] = mapped_column(String(300), ForeignKey("blobs.key", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobMetric(Base):
    """One logging interval of a training job (see worker/train.py for the keys)."""

    __tablename__ = "job_metrics"
    __table_args__ = (UniqueConstraint("job_id", "iteration"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class JobSnapshot(Base):
    """A sample grid from a fixed z at one iteration, so the gallery can show training progress."""

    __tablename__ = "job_snapshots"
    __table_args__ = (UniqueConstraint("job_id", "iteration"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Evaluation(Base):
    """A Parzen score: of a model version, or of a reference (real images as centres) for a dataset."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("kind", "model_version_id", "dataset", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    # Empty for a model version's own score; e.g. "real-train" for the real-data reference row.
    reference: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Dataset(Base):
    """A dataset stored in the database: an upload (POST /datasets), its splits made once and kept.

    Builtin and toy datasets are defined in code (models.datasets) and listed from there; `kind` is stored so
    the row says what it is without the code. The array itself is a blob (blob_key, sha256 = the blob's)."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="upload")
    image_shape: Mapped[list[Any]] = mapped_column(JSONB)
    # {"train": n, "valid": n, "test": n}
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str | None] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    # The split seed and what was asked (size, color, fractions): enough to redo the upload identically.
    seed: Mapped[int] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # A labelled upload (one folder per class): the class names, class k = label_names[k]; None if unlabelled.
    label_names: Mapped[list[Any] | None] = mapped_column(JSONB, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
