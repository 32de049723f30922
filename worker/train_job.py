"""A training job end to end: claim → Algorithm 1 (resuming from a checkpoint) → ONNX → register a version.

Every write is fenced by the job's lease, so a worker that lost its job can never register a version.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import deque
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from models import datasets
from models.config import TrainConfig
from service.datasets import store as dataset_store
from service.db import blobs
from service.db.blobs import best_key, checkpoint_key
from service.db.engine import session_scope
from service.db.tables import Job, JobMetric, JobSnapshot, ModelVersion, Sweep
from service.evaluation import collapse, scores
from service.jobs.status import JobStatus
from service.serving.images import grid_png
from service.settings import get_settings
from service.versions import refs, sweep_settle
from worker import figure1_store as toy_snapshot
from worker import sweep_member
from worker.export import Exported, export_encoder, export_generator
from worker.leases import Lease, run_leased
from worker.quality_curve import CurveScorer
from worker.training.checkpoint import load_checkpoint, save_checkpoint
from worker.training.device import training_device
from worker.training.encoder import train_encoder
from worker.training.hooks import NonFiniteLoss, TrainingStopped, TrainOutcome
from worker.training.loop import train
from worker.training.validation import ValidationScorer, ValidationUnavailable

log = logging.getLogger(__name__)


class GameLost(Exception):
    """The collapse detector fired on a run whose on_lost is "restart"."""

    def __init__(self, why: str, row: dict[str, float]) -> None:
        super().__init__(why)
        self.row = row


class LostWatch:
    """GET /jobs/{id}'s collapse detector (service/evaluation/collapse.py) over a run's recent metrics rows:
    raises GameLost when it fires."""

    def __init__(self, log_every: int) -> None:
        self.rows: deque[dict[str, float]] = deque(maxlen=collapse.LOOKBACK // log_every + 1)

    def __call__(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        why = collapse.diagnose(list(self.rows))
        if why:
            raise GameLost(why, row)


def next_seed(seed: int, taken: set[int]) -> int:
    """The first seed after `seed` that no earlier run of the job (or member of its sweep) used."""
    seed += 1
    while seed in taken:
        seed += 1
    return seed


class DatabaseHooks:
    """Training callbacks that write metrics, snapshots and checkpoints to PostgreSQL, fenced by the lease."""

    def __init__(self, lease: Lease, config: TrainConfig, image_shape: tuple[int, ...],
                 valid: np.ndarray | None, may_restart: bool = False) -> None:
        self.lease = lease
        self.config = config
        self.image_shape = image_shape
        self.iteration = 0
        # on_lost "restart" with restarts left: the collapse detector over the recent rows.
        self.watch = LostWatch(config.log_every) if may_restart else None
        self.scorer = ValidationScorer(config, valid) if config.score_every and valid is not None else None
        self.quality = CurveScorer.for_job(config, valid)
        # A resumed run starts from the best score its earlier attempts stored (with its weights, if kept).
        self.best = best_score(lease.job_id) if config.keep == "best" else None

    def on_metrics(self, row: dict[str, float]) -> None:
        self.iteration = int(row["iteration"])
        with session_scope() as session:
            self.lease.write(session, iteration=self.iteration, progress=self._progress())
            # A resumed run logs some iterations again; the first record of an iteration is kept.
            session.execute(insert(JobMetric).values(job_id=self.lease.job_id, iteration=self.iteration,
                                                     values=row).on_conflict_do_nothing())
        if self.watch is not None:
            self.watch(row)

    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None:
        if datasets.is_toy(self.config.dataset):
            return  # points, not images: a toy's progress is drawn by on_figure1 (the paper's Figure 1)
        key = f"snapshots/{self.lease.job_id}/{iteration:09d}.png"
        png = grid_png(samples, self.image_shape)
        with session_scope() as session:
            self.lease.write(session, heartbeat_at=func.now())
            blobs.put(session, key, png, "image/png")
            session.execute(insert(JobSnapshot).values(job_id=self.lease.job_id, iteration=iteration,
                                                       blob_key=key).on_conflict_do_nothing())

    def on_figure1(self, iteration: int, generator: Any, discriminator: Any, stage: str | None = None) -> None:
        """1-D toys: data density, G's histogram and D(x) on one axis, stored for the gallery."""
        toy_snapshot.record(self.lease, iteration, generator, discriminator, self.config, stage)

    def on_checkpoint(self, iteration: int, blob: bytes) -> None:
        with session_scope() as session:
            self.lease.write(session, iteration=iteration, heartbeat_at=func.now())
            blobs.put(session, checkpoint_key(self.lease.job_id), blob)

    def on_score(self, iteration: int, generator: Any) -> dict[str, float]:
        """Score G on the validation split (the values join the metrics row of `iteration`); with keep "best",
        a new best stores G's weights."""
        assert self.scorer is not None, "run() refuses score_every without a validation split"
        score = self.scorer(generator)
        if self.quality is not None:
            score = {**score, **self.quality(generator)}
        if self.config.keep == "best" and (self.best is None or score["valid_ll"] > self.best):
            with session_scope() as session:
                self.lease.write(session, heartbeat_at=func.now())
                blobs.put(session, best_key(self.lease.job_id),
                          save_checkpoint({"iteration": iteration, **score, "generator": generator.state_dict()}))
            self.best = score["valid_ll"]
        return score

    def should_stop(self) -> bool:
        # Flags only, set by the lease's heartbeat thread: a cancel as soon as its NOTIFY arrives (or at the
        # next beat), so the run stops at its next iteration check.
        return self.lease.should_stop()

    def _progress(self) -> float:
        return min(1.0, self.iteration / self.config.iterations)


def run(lease: Lease) -> None:
    """Run a claimed training job to one of succeeded / failed / cancelled (worker.leases.run_leased); a sweep
    member then settles its sweep if it was the last to end, whatever its own outcome."""
    hooks: list[DatabaseHooks] = []

    def body(lease: Lease) -> None:
        with session_scope() as session:
            job = session.get(Job, lease.job_id)
            assert job is not None
            config = TrainConfig.from_dict(job.config)
            try:
                resume_bytes: bytes | None = blobs.get(session, checkpoint_key(job.id))
            except blobs.BlobMissing:
                resume_bytes = None
        splits = datasets.load(config.dataset, get_settings().resolved_data_dir, fetch_missing=True)
        if config.score_every and splits.valid is None:
            raise ValidationUnavailable(f"dataset {config.dataset!r} has no validation split to score G on "
                                        "(score_every needs one)")
        if resume_bytes:
            # After a worker died or the database went away: the next claim resumes from the checkpoint.
            log.info("job %s: resuming from its checkpoint (attempt %d)", lease.job_id, lease.attempt)
        labels = datasets.train_labels(config.dataset, get_settings().resolved_data_dir) \
            if config.conditional else None
        config, outcome = train_restarting(lease, job, config, splits, resume_bytes, hooks, labels)
        if config.keep == "best":
            outcome = keep_best(lease.job_id, outcome)
        about = {"ganserve.dataset": config.dataset, "ganserve.dataset_sha256": splits.sha256,
                 "ganserve.job_id": str(lease.job_id)}
        exported = export_generator(outcome.generator, config, splits.image_shape, about)
        if job.sweep_id is not None:
            sweep_member.finish(lease, job.sweep_id, job.model_name, config, splits, outcome, exported,
                                registered_metrics(outcome, exported))
            return
        encoder = None
        if config.encoder:
            e = train_encoder(outcome.generator, config, splits.train.shape[1], training_device("auto"),
                              hooks[-1].should_stop, np.asarray(splits.train), labels)
            encoder = export_encoder(e, outcome.generator, config, splits.image_shape, about)
        version = register(lease, job.model_name, config, splits, outcome, exported, encoder)
        scores.queue_all_for_version(job.model_name, version.version)    # never raises: the job has succeeded

    run_leased(lease, body, stopped=TrainingStopped, failures=(NonFiniteLoss, ValidationUnavailable),
               reached=lambda: f"stopped at iteration {hooks[-1].iteration if hooks else 0}")
    sweep_id = sweep_of(lease.job_id)
    if sweep_id is not None:
        for name, number in sweep_settle.settle(sweep_id):
            scores.queue_all_for_version(name, number)


def sweep_of(job_id: uuid.UUID) -> uuid.UUID | None:
    with session_scope() as session:
        return session.scalar(select(Job.sweep_id).where(Job.id == job_id))


def train_restarting(lease: Lease, job: Job, config: TrainConfig, splits: datasets.Splits,
                     resume: bytes | None, hooks: list[DatabaseHooks],
                     labels: np.ndarray | None = None) -> tuple[TrainConfig, TrainOutcome]:
    """Algorithm 1 (the loop picks the engine), started over with the next unused seed each time the game is
    lost while on_lost is "restart" and restarts are left; every restart is recorded on the job."""
    restarts = list(job.restarts or [])
    while True:
        may_restart = config.on_lost == "restart" and len(restarts) < config.max_restarts
        hooks.append(DatabaseHooks(lease, config, splits.image_shape, splits.valid, may_restart))
        try:
            return config, train(config, np.asarray(splits.train), hooks[-1], resume=resume, labels=labels)
        except GameLost as lost:
            config = restart(lease, job, config, restarts, lost)
            resume = None


def restart(lease: Lease, job: Job, config: TrainConfig, restarts: list[dict[str, Any]],
            lost: GameLost) -> TrainConfig:
    """Record the lost run on the job and clear its rows; the job's config now holds the new seed (so a
    resume after a crash continues the restarted run)."""
    seed = next_seed(config.seed, {config.seed, *(r["seed"] for r in restarts), *sweep_seeds(job)})
    restarts.append({"iteration": int(lost.row["iteration"]), "seed": config.seed, "next_seed": seed,
                     "reason": str(lost), "last_row": lost.row})
    config = config.replace(seed=seed)
    with session_scope() as session:
        lease.write(session, restarts=restarts, config=config.to_dict(), iteration=0, progress=0.0)
        session.execute(delete(JobMetric).where(JobMetric.job_id == lease.job_id))
        session.execute(delete(JobSnapshot).where(JobSnapshot.job_id == lease.job_id))
        blobs.delete(session, checkpoint_key(lease.job_id))
        blobs.delete(session, best_key(lease.job_id))
    log.warning("job %s: game lost (%s); restarting with seed %d", lease.job_id, lost, seed)
    return config


def sweep_seeds(job: Job) -> list[int]:
    """A sweep member's restart must not take another member's seed."""
    if job.sweep_id is None:
        return []
    with session_scope() as session:
        sweep = session.get(Sweep, job.sweep_id)
        return list(sweep.seeds) if sweep else []


def best_score(job_id: uuid.UUID) -> float | None:
    """The highest valid_ll stored for the job (an earlier attempt's), or None."""
    with session_scope() as session:
        return session.scalar(select(func.max(JobMetric.values["valid_ll"].as_float()))
                              .where(JobMetric.job_id == job_id))


def keep_best(job_id: uuid.UUID, outcome: TrainOutcome) -> TrainOutcome:
    """The outcome with G's weights from the best-scoring iteration; its metrics name that iteration."""
    with session_scope() as session:
        best = load_checkpoint(blobs.get(session, best_key(job_id)))
    outcome.generator.load_state_dict(best.pop("generator"))
    best.pop("format")
    best["selected_iteration"] = best.pop("iteration")
    return dataclasses.replace(outcome, metrics={**outcome.metrics, **best})


def registered_metrics(outcome: TrainOutcome, exported: Exported) -> dict[str, Any]:
    return {**{k: float(v) for k, v in outcome.metrics.items()}, "onnx_max_abs_diff": exported.max_abs_diff,
            "iterations": outcome.iterations, "train_seconds": outcome.seconds}


def register(lease: Lease, name: str, config: TrainConfig, splits: datasets.Splits,
             outcome: TrainOutcome, exported: Exported, encoder: Exported | None = None) -> ModelVersion:
    """One transaction: the artifact (G's graph, and E's when trained), the next version number of `name`, and
    the job marked succeeded."""
    metrics = registered_metrics(outcome, exported)
    if encoder is not None:
        metrics["encoder_onnx_max_abs_diff"] = encoder.max_abs_diff
    with session_scope() as session:
        # Versions are numbered per name; serialize concurrent registrations of one name.
        refs.lock_name(session, name)
        dataset_store.hold(session, config.dataset)  # no delete of an uploaded dataset while it gains a version
        key = f"models/{name}/{exported.sha256}.onnx"
        blobs.put(session, key, exported.onnx, "application/onnx")
        encoder_row = None
        if encoder is not None:
            encoder_row = {"key": f"models/{name}/{encoder.sha256}.encoder.onnx", "sha256": encoder.sha256,
                           "size": len(encoder.onnx)}
            blobs.put(session, encoder_row["key"], encoder.onnx, "application/onnx")
        version = ModelVersion(
            name=name, version=refs.next_number(session, name), job_id=lease.job_id, artifact_key=key,
            artifact_sha256=exported.sha256, artifact_size=len(exported.onnx), latent_dim=config.latent_dim,
            noise={"kind": "uniform", "low": -config.noise_scale, "high": config.noise_scale},
            image_shape=list(splits.image_shape), dataset=config.dataset, dataset_sha256=splits.sha256,
            config=config.to_dict(), metrics=metrics, encoder=encoder_row)
        session.add(version)
        lease.end(session, JobStatus.SUCCEEDED, progress=1.0, iteration=outcome.iterations)
        blobs.delete(session, checkpoint_key(lease.job_id))
        blobs.delete(session, best_key(lease.job_id))
    return version
