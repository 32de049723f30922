"""Response bodies of the evaluation routes: Parzen (Table 1), the sample-quality scores and seed sweeps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.api.schemas import JobOut
from service.jobs.status import JobStatus


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


class ClassifierInfo(BaseModel):
    version: int
    test_accuracy: float
    artifact_sha256: str


class ScoresReference(BaseModel):
    """The same scores for 10,000 real training images in the samples' place: the floor of any generator."""

    fd: float
    kid: float | None = None
    kid_std: float | None = None
    precision: float | None = None
    recall: float | None = None
    classes_covered: int | None = None
    class_kl: float | None = None
    class_histogram: list[float] | None = None
    modes_covered: int | None = None
    n_samples: int
    n_test: int


class ScoresOut(BaseModel):
    """GET /scores: a version's sample-quality scores against the test split. Labelled image datasets: in the
    features of the dataset's classifier; images without labels (uploads): fd, kid and precision/recall in a
    fixed random projection of the pixels, no class statistics; toys: fd in data space (and modes_covered for
    the 2-D mixtures). `space` names which."""

    model: str
    version: int
    dataset: str
    fd: float = Field(description="Fréchet distance between the feature statistics of samples and test images")
    kid: float | None = Field(default=None, description="kernel inception distance (unbiased MMD², cubic kernel), "
                                                        "mean over subsets")
    kid_std: float | None = None
    precision: float | None = Field(default=None, description="share of samples inside the test manifold (k=3)")
    recall: float | None = Field(default=None, description="share of test images inside the samples' manifold")
    classes_covered: int | None = Field(default=None, description="classes with at least 1/4 of their test share")
    class_histogram: list[float] | None = None
    test_histogram: list[float] | None = None
    class_kl: float | None = Field(default=None, description="KL(test histogram || sample histogram)")
    n_classes: int | None = None
    modes_covered: int | None = None
    modes: int | None = None
    n_samples: int
    n_test: int = Field(description="test rows used: all of the test split when it is smaller than 10,000")
    space: str = Field(description="the feature space: the classifier's version, a random projection of the "
                                   "pixels (images without labels) or \"data\" (toys)")
    classifier: ClassifierInfo | None = None
    reference: ScoresReference | None
    parzen: ParzenOut | None
    protocol: dict[str, Any]
    job_id: uuid.UUID | None
    evaluated_at: datetime | None


class ScoresPending(BaseModel):
    """GET /scores while the scores job (or the dataset's classifier job before it) is queued or running."""

    status: Literal["pending"] = "pending"
    detail: str
    model: str
    version: int
    job: JobOut


class SweepMember(BaseModel):
    job_id: uuid.UUID
    seed: int | None
    status: JobStatus
    progress: float
    iteration: int
    valid_ll: float | None = Field(description="the validation score (Parzen protocol on the validation split): "
                                               "the member's final one once it ended, else its newest")
    valid_ll_se: float | None
    version: int | None = Field(description="the version it was registered as (none with best-only, or yet)")
    restarts: int
    error: str | None


class SweepOut(BaseModel):
    """GET /sweeps/{id}: the members of a seed sweep and, once all have ended, the best by validation score."""

    id: uuid.UUID
    model: str
    status: JobStatus = Field(description="queued, running (until the last member's worker has registered the "
                                          "versions), succeeded (a best member), failed (no member succeeded)")
    keep: Literal["all", "best-only"]
    seeds: list[int]
    members: list[SweepMember]
    best: SweepMember | None
    created_at: datetime | None
    settled_at: datetime | None
