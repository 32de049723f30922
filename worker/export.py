"""ONNX export of a trained generator (and of its encoder E), checked against torch with onnxruntime.

Graph: input "z" float32 [batch, latent_dim] (dynamic batch) -> output "x" float32 [batch, D], opset 17;
a conditional G takes a second input "c" float32 [batch, classes] (one-hot, or any mix of classes). The
encoder's graph: "x" [batch, D] (and "c") -> "z" [batch, latent_dim]. Both are
exported with the TorchScript exporter (dynamo=False: a static MLP needs nothing more, and it is fast).
metadata_props make the artifact self-describing: the full training config, the image shape, the latent
size and the noise distribution (plus the caller's extra keys), so `rebuild_generator` needs nothing else.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
import torch
from onnx import numpy_helper

from models.config import TrainConfig
from models.nets.common import cycled_classes, derived_generator, noise
from models.nets.mlp import Generator

OPSET = 17
TOLERANCE = 1e-5
CHECK_BATCH = 64


class ExportMismatch(RuntimeError):
    """onnxruntime's output differs from torch's by more than TOLERANCE."""


@dataclass(frozen=True)
class Exported:
    onnx: bytes
    sha256: str
    max_abs_diff: float


def metadata(config: TrainConfig, image_shape: tuple[int, ...], extra: dict[str, str]) -> dict[str, str]:
    s = float(config.noise_scale)
    props = {
        "ganserve.config": json.dumps(config.to_dict(), sort_keys=True),
        "ganserve.label_names": json.dumps(list(config.label_names) if config.conditional else []),
        "ganserve.image_shape": json.dumps([int(v) for v in image_shape]),
        "ganserve.latent_dim": str(config.latent_dim),
        "ganserve.noise": json.dumps({"kind": "uniform", "low": -s, "high": s}),
    }
    props.update({str(k): str(v) for k, v in extra.items()})
    return props


def _to_onnx(net: torch.nn.Module, inputs: dict[str, torch.Tensor], output: str) -> bytes:
    out = io.BytesIO()
    axes = {name: {0: "batch"} for name in (*inputs, output)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, tuple(inputs.values()), out,  # type: ignore[arg-type]
                          input_names=list(inputs), output_names=[output], dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    return out.getvalue()


def _checked(net: torch.nn.Module, inputs: dict[str, torch.Tensor], output: str, props: dict[str, str]) -> Exported:
    """`net` as ONNX with `props` as metadata, its onnxruntime output on `inputs` checked against torch."""
    model = onnx.load_from_string(_to_onnx(net, {k: v[:2] for k, v in inputs.items()}, output))
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    blob = model.SerializeToString()
    with torch.no_grad():
        expected = net(*inputs.values()).numpy()
    got = run_onnx(blob, {k: v.numpy() for k, v in inputs.items()})
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    if not diff <= TOLERANCE:                        # also catches NaN
        raise ExportMismatch(f"onnxruntime output differs from torch by {diff:.3g} (> {TOLERANCE:g}) "
                             f"on {CHECK_BATCH} rows; shapes {got.shape} vs {expected.shape}")
    return Exported(onnx=blob, sha256=hashlib.sha256(blob).hexdigest(), max_abs_diff=diff)


def check_inputs(config: TrainConfig) -> dict[str, torch.Tensor]:
    """G's inputs for the export check: 64 z's from the prior (and every class in turn, when conditional)."""
    z = noise((CHECK_BATCH, config.latent_dim), config.noise_scale, derived_generator(config.seed, 4))
    return {"z": z, "c": cycled_classes(CHECK_BATCH, config.num_classes)} if config.conditional else {"z": z}


def export_generator(generator: torch.nn.Module, config: TrainConfig, image_shape: tuple[int, ...],
                     extra_metadata: dict[str, str]) -> Exported:
    """The ONNX artifact of `generator` (fp32, CPU copy; the caller's module is left as it is)."""
    g = copy.deepcopy(generator).float().cpu().eval()
    return _checked(g, check_inputs(config), "x", metadata(config, image_shape, extra_metadata))


def export_encoder(encoder: torch.nn.Module, generator: torch.nn.Module, config: TrainConfig,
                   image_shape: tuple[int, ...], extra_metadata: dict[str, str]) -> Exported:
    """The ONNX graph of E, checked on G's samples of the export check's z's (and classes)."""
    e = copy.deepcopy(encoder).float().cpu().eval()
    inputs = check_inputs(config)
    with torch.no_grad():
        x = copy.deepcopy(generator).float().cpu().eval()(*inputs.values())
    e_inputs = {"x": x, **({"c": inputs["c"]} if config.conditional else {})}
    return _checked(e, e_inputs, "z", {**metadata(config, image_shape, extra_metadata), "ganserve.graph": "encoder"})


def run_onnx(blob: bytes, inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """The graph's output with onnxruntime on CPU: G's x (B, D) from z (B, latent) float32 (an array), or
    any graph's from its named inputs (a conditional G's z and c, E's x)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    feeds = inputs if isinstance(inputs, dict) else {"z": inputs}
    return np.asarray(session.run(None, {k: np.ascontiguousarray(v, dtype=np.float32)
                                             for k, v in feeds.items()})[0])


def read_metadata(blob: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load_from_string(blob).metadata_props}


def rebuild_generator(blob: bytes) -> tuple[Generator, TrainConfig, tuple[int, ...]]:
    """The torch generator, its config and image shape, from the artifact alone: the config from the
    metadata, the weights from the Gemm nodes' initializers (in graph order, through Identity aliases —
    the exporter shares equal initializers, e.g. two all-zero biases)."""
    model = onnx.load_from_string(blob)
    props = {p.key: p.value for p in model.metadata_props}
    config = TrainConfig.from_dict(json.loads(props["ganserve.config"]))
    image_shape = tuple(json.loads(props["ganserve.image_shape"]))
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}

    def value(name: str) -> torch.Tensor:
        while name in alias:
            name = alias[name]
        return torch.from_numpy(arrays[name].copy())

    g = Generator(config, int(np.prod(image_shape)))
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    if len(gemms) != len(g.layers):
        raise ValueError(f"the artifact has {len(gemms)} Gemm nodes, the config {len(g.layers)} layers")
    with torch.no_grad():
        for layer, node in zip(g.linears, gemms, strict=True):
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            w = value(node.input[1])
            layer.weight.copy_(w if trans_b else w.t())
            layer.bias.copy_(value(node.input[2]).reshape(-1))
    return g.eval(), config, image_shape


__all__ = ["OPSET", "TOLERANCE", "ExportMismatch", "Exported", "check_inputs", "export_encoder", "export_generator", "metadata", "read_metadata",
           "rebuild_generator", "run_onnx"]
