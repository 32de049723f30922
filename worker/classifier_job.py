"""A classifier job: train the dataset's classifier on its labelled training split, keep the best epoch on a
held-out tail of it, measure it on the test split, export ONNX (features, probabilities) and store it as the
dataset's next classifier version, in one fenced transaction with the job's success."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings

import numpy as np
import onnxruntime as ort
import torch
from sqlalchemy import text

from models import datasets
from models.nets.classifier import FEATURES, Exportable
from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Classifier, Job
from service.evaluation import classifiers
from service.jobs.status import JobStatus
from service.settings import get_settings
from worker.export import OPSET
from worker.leases import Lease, run_leased
from worker.training.classifier import accuracy, fit

log = logging.getLogger(__name__)


class Stopped(RuntimeError):
    """Cancel asked, lease lost or time limit passed between two epochs."""


class NoLabels(RuntimeError):
    """The dataset has no labels or no test split: the job fails with this message."""


def run(lease: Lease) -> None:
    run_leased(lease, _run, stopped=Stopped, failures=(NoLabels, datasets.DatasetError))


def export(net: torch.nn.Module, dim: int) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Exportable(net).eval(), (torch.zeros(2, dim),), out,  # type: ignore[arg-type]
                          input_names=["x"], output_names=["features", "probs"],
                          dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}, "probs": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    return out.getvalue()


def _check(blob: bytes, net: torch.nn.Module, x: np.ndarray) -> None:
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    features = session.run(["features"], {"x": x})[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(x))[0].numpy()
    if not np.allclose(features, expected, atol=1e-4):
        raise RuntimeError("the exported classifier differs from torch")


def _run(lease: Lease) -> None:
    def progress(fraction: float) -> None:
        if lease.heartbeat(progress=0.9 * fraction, force=True):
            raise Stopped()

    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        assert job is not None
        dataset, config = job.dataset, dict(job.config)
    problem = classifiers.labels_problem(dataset)
    if problem:
        raise NoLabels(problem)
    data_dir = get_settings().resolved_data_dir
    splits = datasets.load(dataset, data_dir, fetch_missing=True)
    train_y, _, test_y = datasets.load_labels(dataset, data_dir)
    if splits.test is None or test_y is None:
        raise NoLabels(f"dataset {dataset!r} has no labelled test split to measure its classifier on")
    n = min(int(config["train_examples"]) or len(splits.train), len(splits.train))
    n_classes = len(datasets.label_names_of(dataset))
    fitted = fit(np.asarray(splits.train[:n]), train_y[:n], splits.image_shape, n_classes, int(config["epochs"]),
                 max(1, min(int(config["held_out"]), n // 5)), int(config["seed"]), progress)
    test_accuracy = accuracy(fitted.net, np.asarray(splits.test), test_y)
    blob = export(fitted.net, splits.train.shape[1])
    _check(blob, fitted.net, np.ascontiguousarray(splits.test[:64]))
    sha = hashlib.sha256(blob).hexdigest()
    details = {"epochs": int(config["epochs"]), "best_epoch": fitted.best_epoch, "train_examples": n,
               "held_out_accuracy": fitted.held_out_accuracy, "seconds": fitted.seconds}
    with session_scope() as session:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"classifier:{dataset}"})
        key = f"classifiers/{dataset}/{sha}.onnx"
        blobs.put(session, key, blob, "application/onnx")
        session.add(Classifier(dataset=dataset, version=classifiers.next_version(session, dataset),
                               job_id=lease.job_id, artifact_key=key, artifact_sha256=sha,
                               dataset_sha256=splits.sha256, n_classes=n_classes, features=FEATURES,
                               test_accuracy=test_accuracy, details=details))
        lease.end(session, JobStatus.SUCCEEDED, progress=1.0)
    log.info("job %s: %s classifier, test accuracy %.4f (best epoch %d of %d, %.0f s)", lease.job_id, dataset,
             test_accuracy, fitted.best_epoch, config["epochs"], fitted.seconds)
