"""Computing a version's sample-quality scores: the work of a `scores` job, with no database writes.

Images: 10,000 samples of G (the Parzen protocol's z) and up to 10,000 test images go through the dataset's
classifier (ONNX): its penultimate layer gives the features of FD, KID, precision and recall, its softmax the
class histogram, classes covered and the KL divergence to the test labels' histogram (models/scores.py). What
the distances need of the test images (their features, moments, k-NN radii, KID subsets) is the same for every
version: it is computed once per classifier version and test split, and kept under the cache directory. Toys
have no classes: FD in data space and, for the 2-D mixtures, the modes covered.

Images without labels (uploads) have no classifier: their FD, KID and precision/recall are measured in a fixed
random feature space (RandomFeatures: a seeded Gaussian projection of the pixels), and there are no class
statistics. Distances there are close to distances between the raw pixels, which rank generators less reliably
than a trained classifier's features: the response names the space. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models import coverage, datasets, scores
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
RANDOM_FEATURES = 128
RANDOM_SEED = 0


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


class RandomFeatures:
    """The fallback feature space of images without labels: x W, W a (D, RANDOM_FEATURES) matrix of N(0, 1/D)
    entries drawn from RANDOM_SEED. A Johnson-Lindenstrauss projection: it keeps distances between images roughly
    (a squared distance within ±sqrt(2 / RANDOM_FEATURES), about 12 %, at one standard deviation), so the scores
    see what pixel distances see; no class probabilities."""

    def __init__(self, dim: int) -> None:
        rng = np.random.default_rng(RANDOM_SEED)
        self.w = (rng.standard_normal((dim, RANDOM_FEATURES)) / np.sqrt(dim)).astype(np.float32)
        self.space = f"random projection of the pixels ({dim} -> {RANDOM_FEATURES}, seed {RANDOM_SEED})"

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, None]:
        return np.asarray(x, dtype=np.float32) @ self.w, None


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


def reference_path(space: str, test: np.ndarray) -> Path:
    """Where the test set's scores.Reference in feature space `space` (an artifact's sha256) is kept: the name
    hashes everything it depends on, so a new classifier, test split or protocol never reads a stale one."""
    key = hashlib.sha256(json.dumps([space, hashlib.sha256(test.tobytes()).hexdigest(), test.shape,
                                     protocol_config()]).encode()).hexdigest()[:32]
    return get_settings().resolved_cache_dir / f"scores-reference-{key}.npz"


def test_reference(features: Features | RandomFeatures, test: np.ndarray, space: str) -> scores.Reference:
    """The test rows' scores.Reference in the feature space, from the cache or computed now and cached."""
    if len(test) <= scores.PR_K:
        raise EvaluationError(f"the test split has {len(test)} rows: precision and recall need more than "
                              f"{scores.PR_K} (k = {scores.PR_K} nearest neighbours)")
    path = reference_path(space, test)
    try:
        with np.load(path) as stored:
            return scores.Reference.from_arrays(dict(stored))
    except (OSError, ValueError, KeyError):
        pass                        # absent or unreadable: computed again below
    reference = scores.reference(features(test)[0], N_SAMPLES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    arrays: dict[str, Any] = reference.arrays()
    with partial.open("wb") as out:
        np.savez(out, **arrays)
    os.replace(partial, path)       # atomic: a concurrent job reads the old state or the whole file
    return reference


def image_scores(fake: np.ndarray, test: scores.Reference, features: Features | RandomFeatures,
                 reference_hist: np.ndarray | None, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Every score of `fake` rows ((n, D) images in [0, 1]) against the test rows' Reference, the class
    statistics only with a classifier (reference_hist: the test labels' histogram); timings (if given)
    receives the seconds of each phase."""
    clock = Clock(timings)
    fake_f, fake_p = features(fake)
    clock("features")
    out: dict[str, Any] = {**scores.feature_scores(fake_f, test, timings=timings).to_json(),
                           "n_samples": len(fake), "n_test": len(test.features)}
    clock("distances")              # fd + kid + precision_recall, also timed one by one
    if fake_p is not None and reference_hist is not None:
        out.update(scores.class_scores(fake_p, reference_hist),
                   test_histogram=[float(v) for v in reference_hist])
        clock("classes")
    return out


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
        out["modes_covered"] = coverage.modes_covered(fake, np.asarray(toy.means), toy.std)
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
    if datasets.is_toy(version.dataset):
        return ({**toy_scores(fake, test, version.dataset), "config": config},
                {**toy_scores(real, test, version.dataset), "config": config} if with_reference else None)
    features: Features | RandomFeatures
    about: dict[str, Any]
    if classifier is None:
        features = RandomFeatures(test.shape[1])
        hist, about, space = None, {"space": features.space}, features.space
    else:
        with session_scope() as session:
            features = Features(blobs.get_verified(session, classifier.artifact_key, classifier.artifact_sha256))
        hist = test_histogram(version.dataset, len(test), classifier.n_classes)
        about, space = classifier_fields(classifier), classifier.artifact_sha256
    test_ref = test_reference(features, test, space)
    about = {**about, "config": config}
    stored = {**image_scores(fake, test_ref, features, hist), **about}
    reference = {**image_scores(real, test_ref, features, hist), **about,
                 "centres": f"train[0:{len(real)}]"} if with_reference else None
    return stored, reference
