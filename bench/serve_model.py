"""Generators without training, for the serving benchmark and the tests: built as ONNX, registered in the DB.

`mlp_generator_onnx` writes the graph the exporter produces for the paper's MLP generator (Gemm + Relu hidden
layers, Gemm + Sigmoid output) with random weights, so a paper-mnist-sized model (100 -> 1200 -> 1200 -> 784)
costs no training. `register_version` stores it exactly as a training job would: a succeeded job row, the
artifact blob and the next model_versions row of the name, in one transaction.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Job, ModelVersion
from service.jobs.status import JobStatus
from service.versions import refs

PAPER_MNIST = (100, (1200, 1200), 784)


def mlp_generator_onnx(latent_dim: int = 100, hidden: tuple[int, ...] = (1200, 1200), out_dim: int = 784,
                       seed: int = 0, init_range: float = 0.05, output_bias: np.ndarray | None = None) -> bytes:
    """ONNX bytes of z (batch, latent_dim) -> x (batch, out_dim) = sigmoid(W3 relu(W2 relu(W1 z + b1) ...)).

    Weights ~ U(-init_range, init_range) as the paper's generator is initialised; `output_bias` (e.g. the logit
    of the training set's mean pixel, pylearn2's init_sigmoid_bias_from_marginals) makes the untrained
    samples look like the mean digit on black instead of grey noise, so PNG sizes are realistic.
    """
    # Lazy: onnx comes with the worker extra, and the tests' register_version needs only the database.
    from onnx import TensorProto, checker, helper, numpy_helper

    rng = np.random.default_rng(seed)
    dims = [latent_dim, *hidden, out_dim]
    nodes, weights, previous = [], [], "z"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        w = rng.uniform(-init_range, init_range, (fan_out, fan_in)).astype(np.float32)
        last = i == len(dims) - 2
        b = (output_bias if last and output_bias is not None else np.zeros(fan_out)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [previous, f"W{i}", f"b{i}"], [f"a{i}"], transB=1))
        previous = "x" if last else f"h{i}"
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [f"a{i}"], [previous]))
    graph = helper.make_graph(nodes, "generator",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", latent_dim])],
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", out_dim])],
                              weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ganserve-bench")
    model.ir_version = 8  # readable by every onnxruntime the project supports
    checker.check_model(model)
    return model.SerializeToString()


def mean_logit(train: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """logit of the per-pixel training mean, clipped away from 0 and 1."""
    p = np.clip(train.mean(axis=0), eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


@dataclass(frozen=True)
class Registered:
    name: str
    version: int
    sha256: str


def register_version(name: str, onnx_bytes: bytes, *, latent_dim: int = 100,
                     noise: dict[str, Any] | None = None, image_shape: tuple[int, int, int] = (1, 28, 28),
                     dataset: str = "mnist", config: dict[str, Any] | None = None,
                     metrics: dict[str, Any] | None = None, encoder_onnx: bytes | None = None) -> Registered:
    """Register `onnx_bytes` (and an encoder's graph) as the next version of `name`, as
    worker.train_job.register does."""
    noise = noise or {"kind": "uniform", "low": -math.sqrt(3.0), "high": math.sqrt(3.0)}
    config = config or {"source": "bench.serve_model", "latent_dim": latent_dim}
    with session_scope() as session:
        refs.lock_name(session, name)
        version = refs.next_number(session, name)
        job = Job(id=uuid.uuid4(), kind="train", model_name=name, dataset=dataset, config=config,
                  status=JobStatus.SUCCEEDED, progress=1.0, finished_at=func.now())
        session.add(job)
        session.flush()  # the version row references the job
        digest = blobs.sha256_of(onnx_bytes)
        key = f"models/{name}/{digest}.onnx"
        blobs.put(session, key, onnx_bytes, "application/onnx")
        encoder = None
        if encoder_onnx is not None:
            e_digest = blobs.sha256_of(encoder_onnx)
            encoder = {"key": f"models/{name}/{e_digest}.encoder.onnx", "sha256": e_digest, "size": len(encoder_onnx)}
            blobs.put(session, encoder["key"], encoder_onnx, "application/onnx")
        session.add(ModelVersion(name=name, version=version, job_id=job.id, artifact_key=key,
                                 artifact_sha256=digest, artifact_size=len(onnx_bytes), latent_dim=latent_dim,
                                 noise=noise, image_shape=list(image_shape), dataset=dataset, config=config,
                                 metrics=metrics or {}, encoder=encoder))
    return Registered(name, version, digest)
