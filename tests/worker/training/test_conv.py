"""Figure 2d's conv nets (models/nets/conv.py), trained by the autograd engine (worker/training/loop.py): the
authors' shapes, the preset's validation, Algorithm 1's contract (metrics, snapshots, exact resume) and ONNX
export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import PRESETS, ConfigError, TrainConfig, resolve
from models.nets import build_discriminator, build_generator
from models.nets.conv import ConvDiscriminator, ConvGenerator
from worker.export import export_generator, read_metadata, run_onnx
from worker.training import device as device_module
from worker.training import loop
from worker.training.hooks import TrainingStopped


def tiny(**overrides: object) -> TrainConfig:
    # The 8000-unit layer is what G reshapes to (80, 10, 10); everything else is kept small.
    base: dict[str, object] = {"latent_dim": 8, "g_hidden": (16, 8000), "d_hidden": (12,), "batch_size": 4,
                               "iterations": 4, "log_every": 2, "snapshot_every": 2, "checkpoint_seconds": 1e9}
    base.update(overrides)
    return PRESETS["paper-cifar10-conv"].replace(**base)  # type: ignore[arg-type]


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.rows: list[dict[str, float]] = []
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.stop_after, self.polls = stop_after, 0

    def on_metrics(self, row: dict[str, float]) -> None:
        self.rows.append(row)

    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None:
        self.snapshots.append((iteration, samples))

    def on_checkpoint(self, iteration: int, blob: bytes) -> None:
        pass

    def on_score(self, iteration: int, generator: torch.nn.Module) -> dict[str, float]:
        return {}

    def should_stop(self) -> bool:
        self.polls += 1
        return self.stop_after is not None and self.polls > self.stop_after


def data(n: int = 24, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).random((n, channels * 1024), dtype=np.float32)


def test_preset_follows_the_authors_file() -> None:
    c = PRESETS["paper-cifar10-conv"]
    assert (c.architecture, c.dataset, c.batch_size, c.lr, c.lr_decay, c.lr_min) == \
        ("conv", "cifar10", 128, 0.004, 1.000004, 1e-6)
    assert (c.g_hidden, c.d_hidden, c.d_pieces, c.d_input_keep, c.d_hidden_keep) == ((8000, 8000), (500,), 5, 0.8, 0.5)
    assert (c.g_init_range, c.d_init_range, c.momentum_start, c.momentum_end) == (0.05, 0.005, 0.5, 0.7)
    assert PRESETS["paper-cifar10-fc"].lr == 0.025 and PRESETS["paper-cifar10-fc"].architecture == "mlp"


def test_conv_validation_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        resolve("paper-cifar10-conv", "mnist")
    assert info.value.field == "dataset" and "32 x 32" in info.value.message
    with pytest.raises(ConfigError) as info:
        resolve("paper-cifar10-conv", g_hidden=[100, 200])
    assert info.value.field == "g_hidden"
    assert resolve("paper-cifar10-conv").architecture == "conv"


def test_shapes_and_init_are_the_authors() -> None:
    c = PRESETS["paper-cifar10-conv"]
    g = build_generator(c, np.full(3072, 0.25))
    d = build_discriminator(c, 3072)
    assert isinstance(g, ConvGenerator) and isinstance(d, ConvDiscriminator)
    assert g.deconv.weight.shape == (80, 3, 5, 5) and g.bias.shape == (3, 32, 32)
    torch.testing.assert_close(g.bias, torch.full((3, 32, 32), float(np.log(0.25 / 0.75))))
    assert [conv.out_channels for conv in d.convs] == [64, 64, 384]  # 32, 32, 192 units x 2 pieces
    assert d.hidden[0].in_features == 192 * 5 * 5 and d.hidden[0].out_features == 500 * 5
    assert float(g.layers[0].weight.detach().abs().max()) <= 0.05
    assert float(d.convs[0].weight.detach().abs().max()) <= 0.005
    with torch.no_grad():
        x = g(torch.rand(2, 100))
    assert x.shape == (2, 3072) and 0.0 < float(x.min()) and float(x.max()) < 1.0
    # Test time (no generator): deterministic; training: masks from the run's generator, reproducible.
    assert torch.equal(d(x), d(x))
    a, b = d(x, torch.Generator().manual_seed(1)), d(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, d(x))


def test_grayscale_32x32_is_allowed() -> None:
    c = tiny()
    assert build_generator(c, None, output_dim=1024).image_shape == (1, 32, 32)
    assert build_discriminator(c, 1024)(torch.rand(2, 1024)).shape == (2, 1)
    with pytest.raises(ValueError, match="32 x 32"):
        build_discriminator(c, 784)


def test_algorithm_1_contract_and_exact_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock that jumps 10 s per reading: a checkpoint is due after every iteration.
    ticks = iter(range(0, 10**9, 10))
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(ticks)))
    config = tiny(checkpoint_seconds=1.0)
    full = Recorder()
    outcome = loop.train(config, data(), full, device="cpu")
    assert outcome.iterations == 4 and [r["iteration"] for r in full.rows] == [2.0, 4.0]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "value", "jsd", "lr", "momentum"} <= set(full.rows[0])
    assert [it for it, _ in full.snapshots] == [2, 4] and full.snapshots[0][1].shape == (64, 3072)
    assert all(np.isfinite(v) for v in full.rows[-1].values())
    # Stopped before iteration 3, resumed from the checkpoint of iteration 2: bit-identical to the full run.
    saved: list[tuple[int, bytes]] = []

    class Saver(Recorder):
        def on_checkpoint(self, iteration: int, blob: bytes) -> None:
            saved.append((iteration, blob))

    with pytest.raises(TrainingStopped):
        loop.train(config, data(), Saver(stop_after=2), device="cpu")
    assert saved[-1][0] == 2
    resumed = loop.train(config, data(), Recorder(), resume=saved[-1][1], device="cpu")
    assert resumed.iterations == 4
    for p, q in zip(outcome.generator.parameters(), resumed.generator.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_bf16_flag_runs_the_products_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CPU with native bf16, whatever this one has (elsewhere a bf16 job trains in fp32: test_bf16_fallback.py).
    monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    fp32 = loop.train(tiny(), data(), Recorder(), device="cpu")
    hooks = Recorder()
    bf16 = loop.train(tiny(bf16=True), data(), hooks, device="cpu")
    assert all(np.isfinite(v) for row in hooks.rows for v in row.values())
    assert all(p.dtype == torch.float32 for p in bf16.generator.parameters())      # fp32 master weights
    # Same seed, same draws: only the rounding of the products differs, and it must show.
    assert any(not torch.equal(p, q) for p, q in zip(fp32.generator.parameters(), bf16.generator.parameters(),
                                                      strict=True))


def test_exports_to_onnx_like_the_others() -> None:
    config = tiny(iterations=1, log_every=1, snapshot_every=1)
    outcome = loop.train(config, data(), Recorder(), device="cpu")
    exported = export_generator(outcome.generator, config, (3, 32, 32), {"ganserve.dataset": "cifar10"})
    assert exported.max_abs_diff <= 1e-5
    meta = read_metadata(exported.onnx)
    assert meta["ganserve.image_shape"] == "[3, 32, 32]" and '"architecture": "conv"' in meta["ganserve.config"]
    x = run_onnx(exported.onnx, np.zeros((3, 8), np.float32))
    assert x.shape == (3, 3072) and np.all((x > 0) & (x < 1))
