"""Benchmark of the sample-quality scores of one MNIST version: `ganserve bench scores`.

What a `scores` job computes once the dataset's classifier exists (service/evaluation/quality.py): 10,000
samples of a quick-preset generator (randomly initialised: scoring costs the same whatever G learned)
through onnxruntime, the classifier's features and softmax for them, then FD, KID (100 subsets of 1,000), k = 3
precision/recall against the 10,000 test images and the class statistics. What the test images contribute
(features, moments, k-NN radii, KID subsets) is computed once per classifier version and cached: `reference_seconds`
is that first time, `seconds` a version's scores once it is cached (reading it included). The classifier is trained once
with the job's protocol (settings: epochs, held-out rows) and cached under GANSERVE_HOME; its test accuracy and
training time are reported. No database: torch builds the generator and the classifier, numpy and onnxruntime
score.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import cpu_name
from bench.parzen import _environment, default_data_dir
from models import datasets
from models.config import resolve
from models.nets import build_generator
from service.db.tables import ModelVersion
from service.evaluation.quality import N_SAMPLES, SEED, Clock, Features, image_scores, reference_path, test_reference
from service.evaluation.scoring import generate
from service.settings import get_settings
from worker.classifier_job import export
from worker.export import export_generator
from worker.training.classifier import accuracy, fit


def classifier_blob(data_dir: Path, cache: Path, epochs: int) -> tuple[bytes, dict[str, Any]]:
    """The cached classifier, or one trained now with the job's protocol (its figures reported)."""
    meta_path = cache.with_suffix(".json")
    if cache.exists() and meta_path.exists():
        return cache.read_bytes(), {**json.loads(meta_path.read_text()), "cached": True}
    splits = datasets.load("mnist", data_dir)
    train_y, _, test_y = datasets.load_labels("mnist", data_dir)
    assert splits.test is not None and test_y is not None
    held_out = get_settings().classifier_held_out
    fitted = fit(np.asarray(splits.train), train_y, splits.image_shape, 10, epochs, held_out, 0)
    meta = {"epochs": epochs, "best_epoch": fitted.best_epoch, "held_out": held_out,
            "held_out_accuracy": fitted.held_out_accuracy, "train_seconds": fitted.seconds,
            "test_accuracy": accuracy(fitted.net, np.asarray(splits.test), test_y)}
    blob = export(fitted.net, splits.train.shape[1])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(blob)
    meta_path.write_text(json.dumps(meta))
    return blob, {**meta, "cached": False}


def generator_version() -> tuple[bytes, ModelVersion]:
    """A quick-preset G (100 -> 512 -> 1024 -> 784) as ONNX, and the version row sampling reads."""
    config = resolve("quick", "mnist")
    exported = export_generator(build_generator(config, None, 784), config, (1, 28, 28), {})
    version = ModelVersion(name="bench", version=1, latent_dim=config.latent_dim, image_shape=[1, 28, 28],
                           noise={"kind": "uniform", "low": -config.noise_scale, "high": config.noise_scale})
    return exported.onnx, version


def run(data_dir: Path, epochs: int) -> dict[str, Any]:
    env = _environment()
    cache = get_settings().resolved_cache_dir / f"bench-classifier-mnist-e{epochs}.onnx"
    blob, classifier = classifier_blob(data_dir, cache, epochs)
    onnx_bytes, version = generator_version()
    splits = datasets.load("mnist", data_dir)
    test_y = datasets.load_labels("mnist", data_dir)[2]
    assert splits.test is not None and test_y is not None
    test = np.asarray(splits.test)
    hist = np.bincount(test_y, minlength=10) / len(test_y)
    space = hashlib.sha256(blob).hexdigest()
    reference_path(space, test).unlink(missing_ok=True)
    t0 = time.perf_counter()
    test_reference(Features(blob), test, space)
    reference_seconds = time.perf_counter() - t0
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    clock = Clock(timings)
    features = Features(blob)
    reference = test_reference(features, test, space)
    clock("cached_reference")
    fake = generate(onnx_bytes, version, N_SAMPLES, SEED)
    clock("generate")
    result = image_scores(fake, reference, features, hist, timings)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "timings": timings, "reference_seconds": reference_seconds,
            "n_samples": N_SAMPLES, "n_test": len(test), "load_average": list(os.getloadavg()),
            "scores": {k: result[k] for k in ("fd", "kid", "kid_std", "precision", "recall", "classes_covered",
                                              "class_kl")},
            "classifier": classifier, "env": env, "date": time.strftime("%Y-%m-%d"),
            "cpu": cpu_name()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench scores", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--epochs", type=int, default=get_settings().classifier_epochs,
                   help="classifier epochs when it is trained (default: the job's setting)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        r = run(args.data_dir, args.epochs)
    except datasets.DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c = r["classifier"]
    print(f"classifier: test accuracy {c['test_accuracy']:.4f} (best epoch {c['best_epoch']} of {c['epochs']}, "
          f"{c['train_seconds']:.0f} s to train{', cached' if c['cached'] else ''})")
    print(f"the test set's cached part, once per classifier version: {r['reference_seconds']:.2f} s")
    print(f"all scores of one version: {r['seconds']:.2f} s on {r['env']['cpus']} CPUs "
          f"({', '.join(f'{k} {v:.2f}' for k, v in r['timings'].items())}); load average "
          f"{' '.join(f'{v:.2f}' for v in r['load_average'])}")
    if args.json:
        print(json.dumps(r))
    return 0
