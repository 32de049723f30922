"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from models.config import PRESETS, Int, option_fields
from service.bounds import DB_INT_MAX, MODEL_NAME
from service.db.tables import Job, ModelVersion
from service.jobs.status import JobStatus
from service.versions.refs import VersionParam

Preset = Literal[tuple(PRESETS)]  # type: ignore[valid-type]


class _JobRequestBase(BaseModel):
    """A training job (kind "train", the default) or an evaluation of a model version (kind "parzen").
    Every training option of models/config.py's TrainConfig made with `option(...)` is a field too (below).

    Rules across fields, each a 422 naming the field: the nets' parameters (from g_hidden, d_hidden,
    d_pieces, latent_dim and the data's size) at most the server's max_parameters, and a checkpoint (Adam keeps
    two moments per parameter) at most max_checkpoint_bytes; log_every, snapshot_every and checkpoint_seconds
    at least the server's minimum intervals; epochs or iterations, not both; k = 1 with update "simultaneous";
    score_every a multiple of log_every; keep "best" needs score_every; the dataset must exist and suit the
    architecture; a parzen job names an existing version."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={
        "examples": [{"model": "mnist", "dataset": "mnist", "preset": "quick", "iterations": 300}]})

    kind: Literal["train", "parzen"] = "train"
    model: str = Field(pattern=MODEL_NAME, description="model name; versions are numbered per name")
    dataset: str | None = Field(default=None, description="default: the preset's dataset")
    preset: Preset = Field(default="quick", description="the recipe the options below override")
    version: VersionParam | None = Field(default=None, description="parzen: the version to score, a number or "
                                                                   "an alias (default latest)")
    seeds: list[Annotated[Int, Field(ge=0, le=2**63 - 1)]] | None = Field(
        default=None, min_length=1, description="a seed sweep: one training job per seed (at most "
                                                "settings.max_sweep_seeds, each once; not with seed); the 202 body "
                                                "carries sweep_id, GET /sweeps/{id} follows it")
    sweep_keep: Literal["all", "best-only"] | None = Field(
        default=None, description="a sweep's versions: all (the best registered last) or best-only")
    epochs: Int | None = Field(
        default=None, ge=1, description="the budget in epochs instead of iterations (an epoch: epoch_examples / "
                                        "batch_size iterations, 500 for MNIST)")

    def overrides(self) -> dict[str, Any]:
        """The training options this request sets (epochs included), for models.config.resolve."""
        skip = {"kind", "model", "dataset", "preset", "version", "seeds", "sweep_keep"}
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
    sweep_id: uuid.UUID | None = Field(default=None, description="the seed sweep this job belongs to")
    restarts: list[dict[str, Any]] = Field(default_factory=list, description="on_lost restart: each time a lost "
                                           "game started the run over with the next seed, and why")

    @classmethod
    def of(cls, job: Job, warning: str | None = None) -> JobOut:
        base = f"/jobs/{job.id}"
        links = {"self": base, "metrics": f"{base}/metrics", "snapshots": f"{base}/snapshots",
                 "cancel": f"{base}/cancel"}
        if job.sweep_id:
            links["sweep"] = f"/sweeps/{job.sweep_id}"
        return cls(warning=warning, sweep_id=job.sweep_id, restarts=list(job.restarts or []), id=job.id, kind=job.kind, model=job.model_name, dataset=job.dataset, status=job.status,
                   progress=job.progress, iteration=job.iteration, attempts=job.attempts, error=job.error,
                   cancel_requested=job.cancel_requested, target_version=job.target_version,
                   config=job.config, created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at, links=links)


class EncoderOut(BaseModel):
    """E's ONNX graph, stored beside G's in the same version."""

    sha256: str
    size: int


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
    scores: dict[str, Any] | None = Field(default=None, description="the headline sample-quality scores (GET "
                                                                    "/scores has them all); null: not scored")
    label_names: list[str] = Field(default=[], description="a conditional model's classes (its G takes z and "
                                                           "c; /samples takes label); [] when unconditional")
    encoder: EncoderOut | None = Field(default=None, description="the learned inference net E(x) -> z trained "
                                                                 "with G (POST /encode runs it); null if none")

    @classmethod
    def of(cls, row: ModelVersion, scores: dict[str, Any] | None = None) -> VersionOut:
        config = row.config or {}
        names = list(config.get("label_names") or []) if config.get("conditional") else []
        encoder = EncoderOut(sha256=row.encoder["sha256"], size=row.encoder["size"]) if row.encoder else None
        return cls(scores=scores, version=row.version, job_id=row.job_id, dataset=row.dataset,
                   latent_dim=row.latent_dim,
                   noise=row.noise, image_shape=list(row.image_shape), artifact_sha256=row.artifact_sha256,
                   artifact_size=row.artifact_size, metrics=row.metrics, config=row.config,
                   created_at=row.created_at, label_names=names, encoder=encoder)


class EncodeOut(BaseModel):
    """POST /encode: where an image sits in z, and what G makes of it."""

    model: str
    version: int
    label: str | None = Field(description="the class given (conditional models), else null")
    z: list[float] = Field(description="E(x): latent_dim values; /interpolate takes them as z0 or z1")
    image: str = Field(description="the input as the model sees it (converted and resized), a PNG data URL")
    reconstruction: str = Field(description="G(E(x)) as a PNG data URL")


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
