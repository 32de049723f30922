"""Computing a Parzen score (Table 1 of the paper): the work of an evaluation job, with no database writes.

Load the version's ONNX (sha256-verified) → 10,000 samples from its noise prior with a fixed seed →
models.parzen.evaluate on the dataset's validation/test splits. Torch-free (numpy + onnxruntime): the worker's
job (worker/scoring.py) and `ganserve parzen` run the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort

from models import datasets
from models.parzen import evaluate
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import ModelVersion
from service.evaluation import parzen
from service.serving import labels
from service.serving.noise import sample_noise
from service.serving.registry import VersionInfo
from service.serving.runtime import providers
from service.settings import get_settings

GENERATE_BATCH = 2000  # rows per onnxruntime run: bounds the hidden activations (2000 x 1200 floats per layer)


class EvaluationError(RuntimeError):
    """The evaluation cannot run (no split, output of the wrong size…): the job fails with this message."""


def generate(onnx_bytes: bytes, version: ModelVersion, n: int, seed: int) -> np.ndarray:
    """(n, C*H*W) float32 samples of G: z from the version's prior (service.serving.noise, so the rows are
    those /samples?seed= would draw), no dropout (the exported graph is the inference graph). A conditional
    G's classes are drawn uniformly from the seed, as /samples without a label does: samples of p(x)."""
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1  # intra-op: onnxruntime's default, every core (a batch job, not serving)
    session = ort.InferenceSession(onnx_bytes, options, providers=providers())
    name = session.get_inputs()[0].name
    feeds = {name: sample_noise(version, n, seed)}
    classes = VersionInfo.of(version).label_names
    if classes:
        feeds["c"] = labels.one_hot(labels.uniform_classes(seed, n, len(classes)), len(classes))
    out = [session.run(None, {k: v[i:i + GENERATE_BATCH] for k, v in feeds.items()})[0]
           for i in range(0, n, GENERATE_BATCH)]
    return np.concatenate(out).reshape(n, -1).astype(np.float32, copy=False)


def valid_test(splits: datasets.Splits) -> tuple[np.ndarray, np.ndarray]:
    """The validation and test arrays, or EvaluationError naming the missing split."""
    if splits.valid is None or splits.test is None:
        raise EvaluationError(parzen.split_problem(splits))
    return splits.valid, splits.test


def eval_splits(dataset: str) -> datasets.Splits:
    """The dataset (fetched if missing), checked to have validation and test splits."""
    splits = datasets.load(dataset, get_settings().resolved_data_dir, fetch_missing=True)
    valid_test(splits)
    return splits


def score_version(version: ModelVersion, onnx_bytes: bytes, splits: datasets.Splits,
                  config: dict[str, Any]) -> dict[str, Any]:
    """The stored JSON of one model version's score under `config` (see parzen.protocol_config)."""
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
