"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model
from pydantic.fields import FieldInfo

from models.config import PRESETS, option_fields
from service.bounds import DB_INT_MAX, MODEL_NAME
from service.db.tables import Job, ModelVersion
from service.jobs.status import JobStatus
from service.versions.refs import VersionParam

Preset = Literal[tuple(PRESETS)]  # type: ignore[valid-type]


class _JobRequestBase(BaseModel):
    """A training job (kind "train", the default) or an evaluation of a model version (kind "parzen").
    Every training option of models/config.py's TrainConfig made with `option(...)` is a field too (below)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"model": "mnist", "dataset": "mnist", "preset": "quick", "iterations": 300}]})

    kind: Literal["train", "parzen"] = "train"
    model: str = Field(pattern=MODEL_NAME, description="model name; versions are numbered per name")
    dataset: str | None = Field(default=None, description="default: the preset's dataset")
    preset: Preset = Field(default="quick", description="the recipe the options below override")
    version: VersionParam | None = Field(default=None, description="parzen: the version to score, a number or "
                                                                   "an alias (default latest)")
    epochs: Annotated[int, Strict()] | None = Field(
        default=None, ge=1, description="the budget in epochs instead of iterations (an epoch: epoch_examples / "
                                        "batch_size iterations, 500 for MNIST)")

    def overrides(self) -> dict[str, Any]:
        """The training options this request sets (epochs included), for models.config.resolve."""
        skip = {"kind", "model", "dataset", "preset", "version"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


def _optional(info: FieldInfo) -> tuple[Any, Any]:
    """A TrainConfig field as an optional request field: same type and bounds, None meaning the preset's."""
    annotated = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return annotated | None, Field(default=None, description=info.description)


JobRequest = create_model("JobRequest", __base__=_JobRequestBase, __module__=__name__,
                          **{name: _optional(info) for name, info in option_fields().items()})


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    model: str
    dataset: str
    status: JobStatus
    progress: float
    iteration: int
    attempts: int
    error: str | None
    cancel_requested: bool
    target_version: int | None
    config: dict[str, Any]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]
    warning: str | None = None   # e.g. a lost game (service/collapse.py): advice, the job runs on

    @classmethod
    def of(cls, job: Job, warning: str | None = None) -> JobOut:
        base = f"/jobs/{job.id}"
        return cls(warning=warning, id=job.id, kind=job.kind, model=job.model_name, dataset=job.dataset, status=job.status,
                   progress=job.progress, iteration=job.iteration, attempts=job.attempts, error=job.error,
                   cancel_requested=job.cancel_requested, target_version=job.target_version,
                   config=job.config, created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at,
                   links={"self": base, "metrics": f"{base}/metrics", "snapshots": f"{base}/snapshots",
                          "cancel": f"{base}/cancel"})


class VersionOut(BaseModel):
    version: int
    job_id: uuid.UUID
    dataset: str
    latent_dim: int
    noise: dict[str, Any]
    image_shape: list[int]
    artifact_sha256: str
    artifact_size: int
    metrics: dict[str, Any]
    config: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def of(cls, row: ModelVersion) -> VersionOut:
        return cls(version=row.version, job_id=row.job_id, dataset=row.dataset, latent_dim=row.latent_dim,
                   noise=row.noise, image_shape=list(row.image_shape), artifact_sha256=row.artifact_sha256,
                   artifact_size=row.artifact_size, metrics=row.metrics, config=row.config,
                   created_at=row.created_at)


class ModelOut(BaseModel):
    name: str
    latest: int
    versions: list[VersionOut]
    aliases: dict[str, int] = Field(default_factory=dict, description="alias -> version")


class ArtifactOut(BaseModel):
    sha256: str
    size: int = Field(description="bytes")
    format: Literal["onnx"]
    url: str = Field(description="GET it for the file (ETag = its sha256)")


class ModelCard(BaseModel):
    """GET /models/{name}/versions/{version}: everything known about one version."""

    name: str
    version: int
    job_id: uuid.UUID
    created_at: datetime | None
    dataset: str
    dataset_sha256: str | None = Field(description="the training data's sha256 (None: registered before it "
                                                   "was recorded)")
    latent_dim: int
    noise: dict[str, Any]
    image_shape: list[int]
    config: dict[str, Any] = Field(description="the resolved training config")
    metrics: dict[str, Any]
    scores: dict[str, dict[str, Any]] = Field(description="evaluations by kind, e.g. parzen: ll, se, sigma")
    aliases: list[str] = Field(description="the aliases pointing at this version")
    artifact: ArtifactOut
    links: dict[str, str]


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=DB_INT_MAX, description="the version number the alias points at")


class AliasOut(BaseModel):
    name: str
    alias: str
    version: int


class ParzenGridPoint(BaseModel):
    sigma: float
    ll: float = Field(description="mean validation log-likelihood at this sigma")


class ParzenReference(BaseModel):
    """A row to compare with: Table 1 of the paper, or the real-train row this server computed."""

    label: str
    ll: float
    se: float
    source: str
    reference: str | None = None
    sigma: float | None = None
    grid: list[ParzenGridPoint] | None = None
    n_samples: int | None = None
    n_test: int | None = None


class ParzenOut(BaseModel):
    """GET /parzen: a model version's Parzen-window log-likelihood on the test split."""

    model: str
    version: int
    dataset: str
    ll: float = Field(description="mean test log-likelihood (nats)")
    se: float = Field(description="standard error of the mean, std/sqrt(n_test)")
    sigma: float = Field(description="the bandwidth chosen on the validation images")
    grid: list[ParzenGridPoint]
    n_samples: int
    n_test: int
    n_valid: int
    seconds: float
    protocol: dict[str, Any]
    references: list[ParzenReference]
    caveat: str
    job_id: uuid.UUID | None
    evaluated_at: datetime | None
    artifact_sha256: str | None


class ParzenPending(BaseModel):
    """GET /parzen before the score exists: the evaluation job to follow (also in Location)."""

    status: Literal["pending"] = "pending"
    detail: str
    model: str
    version: int
    dataset: str
    job: JobOut
    references: list[ParzenReference]
    protocol: dict[str, Any]
    caveat: str
