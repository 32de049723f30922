"""Computing a version's sample-quality scores: the work of a `scores` job, with no database writes.

Images: 10,000 samples of G (the Parzen protocol's z) and up to 10,000 test images go through the dataset's
classifier (ONNX): its penultimate layer gives the features of FD, KID, precision and recall, its softmax the
class histogram, classes covered and the KL divergence to the test labels' histogram (models/scores.py). Toys
have no classes: FD in data space and, for the 2-D mixtures, the modes covered. Torch-free.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import onnxruntime as ort

from models import datasets, scores
from models.datasets.toys import TOYS
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Classifier, ModelVersion
from service.evaluation.scoring import EvaluationError, generate
from service.serving.runtime import providers
from service.settings import get_settings

N_SAMPLES = 10_000
N_TEST = 10_000
SEED = 2014          # the Parzen protocol's z: the same 10,000 samples are scored both ways
BATCH = 2000


def protocol_config() -> dict[str, Any]:
    return {"n_samples": N_SAMPLES, "n_test": N_TEST, "seed": SEED, "pr_k": scores.PR_K,
            "kid_subsets": scores.KID_SUBSETS, "kid_subset_size": scores.KID_SUBSET_SIZE,
            "covered_share": scores.COVERED_SHARE}


class Features:
    """A classifier's ONNX session: rows (n, D) in [0, 1] -> (features (n, F), probabilities (n, classes))."""

    def __init__(self, blob: bytes) -> None:
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(blob, options, providers=providers())

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [self.session.run(None, {"x": np.ascontiguousarray(x[i:i + BATCH], dtype=np.float32)})
                 for i in range(0, len(x), BATCH)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_split(dataset: str) -> tuple[datasets.Splits, np.ndarray]:
    splits = datasets.load(dataset, get_settings().resolved_data_dir, fetch_missing=True)
    if splits.test is None:
        raise EvaluationError(f"dataset {dataset!r} has no test split to compare samples with")
    return splits, np.asarray(splits.test[:N_TEST])


def test_histogram(dataset: str, n_test: int, n_classes: int) -> np.ndarray:
    """The share of each class among the first n_test test labels."""
    test_y = datasets.load_labels(dataset, get_settings().resolved_data_dir)[2]
    assert test_y is not None
    return np.bincount(test_y[:n_test], minlength=n_classes) / n_test


def image_scores(fake: np.ndarray, test: np.ndarray, reference_hist: np.ndarray, features: Features,
                 timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Every score of `fake` rows against `test` rows (both (n, D) images in [0, 1]); timings (if given)
    receives the seconds of each phase."""
    clock = Clock(timings)
    fake_f, fake_p = features(fake)
    test_f, _ = features(test)
    clock("features")
    distances = scores.feature_scores(fake_f, test_f, timings=timings).to_json()
    classes = scores.class_scores(fake_p, reference_hist)
    clock("classes")
    return {**distances, **classes, "test_histogram": [float(v) for v in reference_hist],
            "n_samples": len(fake), "n_test": len(test)}


class Clock:
    """Adds the seconds since the previous call to timings[name]; a no-op without timings."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.t = timings, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


def classifier_fields(classifier: Classifier) -> dict[str, Any]:
    return {"space": f"classifier v{classifier.version} features ({classifier.features})",
            "classifier": {"version": classifier.version, "test_accuracy": classifier.test_accuracy,
                           "artifact_sha256": classifier.artifact_sha256}}


def toy_scores(fake: np.ndarray, test: np.ndarray, dataset: str) -> dict[str, Any]:
    """Toys: the Fréchet distance in data space, and the modes covered by a 2-D mixture."""
    out: dict[str, Any] = {"fd": scores.fd(fake, test), "n_samples": len(fake), "n_test": len(test),
                           "space": "data"}
    toy = TOYS[dataset]
    if toy.dim == 2:
        out["modes_covered"] = scores.modes_covered(fake, np.asarray(toy.means), toy.std)
        out["modes"] = len(toy.means)
    return out


def score(version: ModelVersion, classifier: Classifier | None, with_reference: bool
          ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the version's scores, the real-train reference row or None)."""
    config = protocol_config()
    with session_scope() as session:
        onnx_bytes = blobs.get_verified(session, version.artifact_key, version.artifact_sha256)
    splits, test = test_split(version.dataset)
    fake = generate(onnx_bytes, version, N_SAMPLES, SEED)
    if fake.shape[1] != test.shape[1]:
        raise EvaluationError(f"{version.name} v{version.version} outputs {fake.shape[1]} values per sample "
                              f"but {version.dataset} rows have {test.shape[1]}")
    real = np.asarray(splits.train[:N_SAMPLES])
    if classifier is None:
        return ({**toy_scores(fake, test, version.dataset), "config": config},
                {**toy_scores(real, test, version.dataset), "config": config} if with_reference else None)
    with session_scope() as session:
        features = Features(blobs.get_verified(session, classifier.artifact_key, classifier.artifact_sha256))
    hist = test_histogram(version.dataset, len(test), classifier.n_classes)
    about = {**classifier_fields(classifier), "config": config}
    stored = {**image_scores(fake, test, hist, features), **about}
    reference = {**image_scores(real, test, hist, features), **about,
                 "centres": f"train[0:{len(real)}]"} if with_reference else None
    return stored, reference
