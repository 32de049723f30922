"""An evaluation job: the Parzen-window log-likelihood of one model version (Table 1 of the paper).

claim → load the version's ONNX (sha256-verified) → 10,000 samples from its noise prior with a fixed seed →
models.parzen.evaluate on the dataset's validation/test splits → one fenced transaction that stores the score
and marks the job succeeded. The first evaluation on a dataset also computes its "real-train" reference row.

Torch-free (numpy + onnxruntime): `ganserve parzen` runs the same functions in-process.

Liveness: the lease's heartbeat thread beats every settings.heartbeat_s throughout, and each phase records
its progress with a forced beat. On MNIST one evaluation is ~1.5-3 s on two cores, so the thread is more than
enough; it also covers datasets where the GEMMs take minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
from sqlalchemy import func, select

from models import datasets
from models.parzen import evaluate
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Job, ModelVersion
from service.evaluation import parzen
from service.serving.noise import sample_noise
from service.serving.registry import providers
from service.settings import get_settings
from worker.leases import Lease, run_leased

log = logging.getLogger(__name__)

GENERATE_BATCH = 2000  # rows per onnxruntime run: bounds the hidden activations (2000 x 1200 floats per layer)


class EvaluationError(RuntimeError):
    """The evaluation cannot run (no split, output of the wrong size…): the job fails with this message."""


class Stopped(RuntimeError):
    """Cancel asked, lease lost or time limit passed between two phases."""


def generate(onnx_bytes: bytes, version: ModelVersion, n: int, seed: int) -> np.ndarray:
    """(n, C*H*W) float32 samples of G: z from the version's prior (service.sampling.sample_noise, so the
    rows are those /samples?seed= would draw), no dropout (the exported graph is the inference graph)."""
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1  # intra-op: onnxruntime's default, every core (a batch job, not serving)
    session = ort.InferenceSession(onnx_bytes, options, providers=providers())
    name = session.get_inputs()[0].name
    z = sample_noise(version, n, seed)
    out = [session.run(None, {name: z[i:i + GENERATE_BATCH]})[0] for i in range(0, n, GENERATE_BATCH)]
    return np.concatenate(out).reshape(n, -1).astype(np.float32, copy=False)


def valid_test(splits: datasets.Splits) -> tuple[np.ndarray, np.ndarray]:
    """The validation and test arrays, or EvaluationError naming the missing split."""
    missing = [name for name, part in (("validation", splits.valid), ("test", splits.test)) if part is None]
    if missing or splits.valid is None or splits.test is None:
        raise EvaluationError(f"dataset {splits.name!r} has no {' or '.join(missing)} split; the Parzen protocol "
                              "chooses sigma on validation images and scores test images")
    return splits.valid, splits.test


def eval_splits(dataset: str) -> datasets.Splits:
    """The dataset (fetched if missing), checked to have validation and test splits."""
    splits = datasets.load(dataset, get_settings().resolved_data_dir, fetch_missing=True)
    valid_test(splits)
    return splits


def score_version(version: ModelVersion, onnx_bytes: bytes, splits: datasets.Splits,
                  config: dict[str, Any]) -> dict[str, Any]:
    """The stored JSON of one model version's score under `config` (see service.parzen.protocol_config)."""
    samples = generate(onnx_bytes, version, int(config["n_samples"]), int(config["seed"]))
    if samples.shape[1] != splits.train.shape[1]:
        raise EvaluationError(f"{version.name} v{version.version} outputs {samples.shape[1]} values per sample "
                              f"but {splits.name} images have {splits.train.shape[1]}")
    res = evaluate(samples, *valid_test(splits), config["sigmas"], config["n_valid"])
    return {**res.to_json(), "config": config, "centres": "samples",
            "artifact_sha256": version.artifact_sha256, "dataset_sha256": splits.sha256}


def score_reference(splits: datasets.Splits, config: dict[str, Any]) -> dict[str, Any]:
    """The real-data row: the same estimator with train[0:10000] as centres."""
    n = int(config.get("reference_centres", parzen.REFERENCE_CENTRES))
    res = evaluate(splits.train[:n], *valid_test(splits), config["sigmas"], config["n_valid"])
    return {**res.to_json(), "config": config, "centres": f"train[0:{n}]", "dataset_sha256": splits.sha256}


def evaluate_version(version: ModelVersion, config: dict[str, Any], with_reference: bool,
                     progress: Callable[[float], None] = lambda p: None
                     ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(version's score, reference score or None): the whole computation, no database writes."""
    with session_scope() as session:
        onnx_bytes = blobs.get_verified(session, version.artifact_key, version.artifact_sha256)
    splits = eval_splits(version.dataset)
    progress(0.1)
    stored = score_version(version, onnx_bytes, splits, config)
    progress(0.5 if with_reference else 0.9)
    reference = score_reference(splits, config) if with_reference else None
    return stored, reference


def run(lease: Lease) -> None:
    """Run a claimed parzen job to succeeded / failed / cancelled (worker.lease.run_leased). After a database
    outage the next attempt simply computes again: nothing partial was stored."""
    run_leased(lease, _run, stopped=Stopped, failures=(EvaluationError, datasets.DatasetError))


def _run(lease: Lease) -> None:
    def progress(fraction: float) -> None:
        if lease.heartbeat(progress=fraction, force=True):
            raise Stopped()

    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        assert job is not None
        version = session.scalar(select(ModelVersion).where(ModelVersion.name == job.model_name,
                                                            ModelVersion.version == job.target_version))
        config = dict(job.config)
    if version is None:
        raise EvaluationError(f"model {job.model_name!r} has no version {job.target_version}")
    with_reference = not parzen.has_reference(version.dataset)
    stored, reference = evaluate_version(version, config, with_reference, progress)
    progress(0.95)
    with session_scope() as session:
        # One transaction: the score exists if and only if the job succeeded, and only while we hold it.
        lease.write(session, status="succeeded", progress=1.0, finished_at=func.now(), lease_token=None)
        parzen.store(session, version.id, version.dataset, lease.job_id, stored)
        if reference is not None:
            parzen.store_reference(session, version.dataset, lease.job_id, reference)
    log.info("job %s: %s v%d scores %.1f ± %.1f (sigma %.3f)", lease.job_id, version.name, version.version,
             stored["ll"], stored["se"], stored["sigma"])
