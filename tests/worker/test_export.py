"""ONNX export: onnxruntime agrees with torch, the batch axis is dynamic, the metadata round-trips."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
import torch

from models.config import PRESETS, TrainConfig
from models.nets import build_generator
from models.nets.mlp import Generator
from worker import export as export_module
from worker.export import ExportMismatch, export_generator, read_metadata, rebuild_generator, run_onnx

CONFIG = PRESETS["paper-mnist"].replace(latent_dim=12, g_hidden=(32, 24), seed=3)
SHAPE = (1, 4, 5)                                                     # D = 20


@pytest.fixture(scope="module")
def generator() -> Generator:
    g = build_generator(CONFIG, np.linspace(0.05, 0.95, 20))
    with torch.no_grad():                                             # non-trivial biases everywhere
        for layer in g.linears:
            layer.bias.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1))
    return g.eval()


@pytest.fixture(scope="module")
def exported(generator: Generator) -> export_module.Exported:
    return export_generator(generator, CONFIG, SHAPE, {"ganserve.dataset": "mnist", "ganserve.job_id": "j-1"})


def test_onnxruntime_matches_torch(exported: export_module.Exported, generator: Generator) -> None:
    assert 0.0 <= exported.max_abs_diff <= 1e-5
    assert exported.sha256 == hashlib.sha256(exported.onnx).hexdigest()
    z = np.random.default_rng(0).uniform(-1.7, 1.7, (64, 12)).astype(np.float32)
    with torch.no_grad():
        expected = generator(torch.from_numpy(z)).numpy()
    assert np.max(np.abs(run_onnx(exported.onnx, z) - expected)) <= 1e-5


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch(exported: export_module.Exported, generator: Generator, batch: int) -> None:
    z = np.random.default_rng(batch).uniform(-1.7, 1.7, (batch, 12)).astype(np.float32)
    x = run_onnx(exported.onnx, z)
    assert x.shape == (batch, 20) and x.dtype == np.float32
    with torch.no_grad():
        assert np.max(np.abs(x - generator(torch.from_numpy(z)).numpy())) <= 1e-5


def test_graph_signature(exported: export_module.Exported) -> None:
    model = onnx.load_from_string(exported.onnx)
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("z", "x")
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert isinstance(in_dims[0], str) and in_dims[1:] == [12]        # symbolic batch axis
    assert isinstance(out_dims[0], str) and out_dims[1:] == [20]


def test_metadata_round_trips(exported: export_module.Exported) -> None:
    meta = read_metadata(exported.onnx)
    assert TrainConfig.from_dict(json.loads(meta["ganserve.config"])) == CONFIG
    assert json.loads(meta["ganserve.image_shape"]) == list(SHAPE)
    assert meta["ganserve.latent_dim"] == "12"
    s = CONFIG.noise_scale
    assert json.loads(meta["ganserve.noise"]) == {"kind": "uniform", "low": -s, "high": s}
    assert meta["ganserve.dataset"] == "mnist" and meta["ganserve.job_id"] == "j-1"


def test_artifact_alone_rebuilds_the_generator(exported: export_module.Exported,
                                               generator: Generator) -> None:
    rebuilt, config, shape = rebuild_generator(exported.onnx)
    assert config == CONFIG and shape == SHAPE
    z = torch.rand(5, 12) * 3 - 1.5
    with torch.no_grad():
        assert torch.equal(rebuilt(z), generator(z))


def test_export_leaves_the_callers_module_alone(generator: Generator) -> None:
    generator.train()
    export_generator(generator, CONFIG, SHAPE, {})
    assert generator.training
    generator.eval()


def test_mismatch_raises(generator: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    real = export_module.run_onnx
    monkeypatch.setattr(export_module, "run_onnx", lambda blob, z: real(blob, z) + 1e-3)
    with pytest.raises(ExportMismatch, match="differs"):
        export_generator(generator, CONFIG, SHAPE, {})
