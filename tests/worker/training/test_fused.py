"""Algorithm 1 (worker/training/loop.py) on the MLP nets: the game moves the right way, k is honoured, the
schedules, exact resume on both engines, failures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from models.config import LEGACY_VALUES, PRESETS, TrainConfig
from worker.training.checkpoint import NOT_IN_KEY, CheckpointMismatch, load_checkpoint, save_checkpoint
from worker.training.hooks import NonFiniteLoss, TrainingStopped
from worker.training.loop import train
from worker.training.optim import Momentum, learning_rate, momentum
from worker.training.passes import DiscriminatorPass, GeneratorPass

METRIC_KEYS = {"iteration", "epoch", "lr", "momentum", "d_loss", "g_loss", "d_real", "d_fake", "value", "jsd",
               "it_per_s"}


def tiny(preset: str = "paper-mnist", **overrides: object) -> TrainConfig:
    base: dict[str, object] = {"latent_dim": 8, "g_hidden": (32,), "d_hidden": (16,), "d_pieces": 2,
                               "batch_size": 16, "iterations": 12, "log_every": 4, "snapshot_every": 6,
                               "checkpoint_seconds": 1e9}
    base.update(overrides)
    return PRESETS[preset].replace(**base)  # type: ignore[arg-type]


def easy_data(n: int = 256, dim: int = 20) -> np.ndarray:
    """Sparse binary patterns: far from what an untrained G (pixels near the mean) produces."""
    return (np.random.default_rng(0).random((n, dim)) < 0.2).astype(np.float32)


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.rows: list[dict[str, float]] = []
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.checkpoints: list[tuple[int, bytes]] = []
        self.scores: list[int] = []
        self.polls = 0
        self.stop_after = stop_after

    def on_metrics(self, row: dict[str, float]) -> None:
        self.rows.append(row)

    def on_snapshot(self, iteration: int, samples: np.ndarray) -> None:
        self.snapshots.append((iteration, samples))

    def on_checkpoint(self, iteration: int, blob: bytes) -> None:
        self.checkpoints.append((iteration, blob))

    def on_score(self, iteration: int, generator: torch.nn.Module) -> dict[str, float]:
        self.scores.append(iteration)
        return {"valid_ll": float(iteration)}

    def should_stop(self) -> bool:
        self.polls += 1
        return self.stop_after is not None and self.polls > self.stop_after


def params(outcome_generator: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in outcome_generator.state_dict().items()}


ENGINES = ["fused", "autograd"]


@pytest.mark.parametrize("engine", ENGINES)
def test_metrics_snapshots_and_outcome(engine: str) -> None:
    hooks = Recorder()
    out = train(tiny(iterations=10, engine=engine), easy_data(), hooks, device="cpu")
    assert [r["iteration"] for r in hooks.rows] == [4.0, 8.0, 10.0]          # every log_every, and the end
    assert all(set(r) == METRIC_KEYS for r in hooks.rows)
    for r in hooks.rows:
        assert r["d_loss"] == pytest.approx(-0.5 * r["value"])
        assert r["jsd"] == pytest.approx((r["value"] + math.log(4)) / 2)
        assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
    assert [i for i, _ in hooks.snapshots] == [6, 10]
    assert hooks.scores == []                                                 # score_every 0: never
    for _, samples in hooks.snapshots:
        assert samples.shape == (64, 20) and samples.dtype == np.float32
        assert samples.min() >= 0 and samples.max() <= 1
    assert out.iterations == 10 and out.metrics == hooks.rows[-1] and out.seconds > 0
    assert not out.generator.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in out.generator.parameters())


def test_scores_every_score_every_and_at_the_end() -> None:
    hooks = Recorder()
    train(tiny(iterations=10, log_every=2, score_every=4), easy_data(), hooks, device="cpu")
    assert hooks.scores == [4, 8, 10]
    assert [(r["iteration"], r.get("valid_ll")) for r in hooks.rows] == [       # scores join their rows
        (2, None), (4, 4.0), (6, None), (8, 8.0), (10, 10.0)]


@pytest.mark.parametrize("preset", ["paper-mnist", "quick"])
def test_discriminator_learns_to_tell_data_from_samples(preset: str) -> None:
    # A D-dominant game (k = 5) on an easy dataset: D(x) rises above D(G(z)), D's loss falls below log 2
    # and keeps falling, V(D, G) rises above its equilibrium value -log 4. (Wider init than the paper's
    # for these 16-unit nets, so 40 iterations are enough.)
    hooks = Recorder()
    extra = {"d_init_range": 0.1, "g_init_range": 0.1} if preset == "paper-mnist" else {"lr": 2e-3}
    train(tiny(preset, k=5, iterations=40, log_every=10, **extra), easy_data(), hooks, device="cpu")
    first, last = hooks.rows[0], hooks.rows[-1]
    assert last["d_real"] > last["d_fake"] + 0.1
    assert last["d_loss"] < first["d_loss"] < math.log(2) + 0.01
    assert last["d_loss"] < math.log(2) - 0.1
    assert last["value"] > -math.log(4) and last["jsd"] > 0


def test_k_discriminator_steps_per_generator_step(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {"d_updates": 0, "g_steps_through_d": 0, "g_updates": 0, "g_forwards": 0}
    d_backward, g_backward, g_forward = (DiscriminatorPass.backward, GeneratorPass.backward,
                                         GeneratorPass.forward)

    def counting_d_backward(self, dlogits, sink, input_grad):  # type: ignore[no-untyped-def]
        counts["d_updates" if sink is not None else "g_steps_through_d"] += 1
        assert input_grad == (sink is None)                      # D-steps never compute a grad into x
        return d_backward(self, dlogits, sink, input_grad)

    def counting_g_backward(self, dx, sink):  # type: ignore[no-untyped-def]
        counts["g_updates"] += 1
        return g_backward(self, dx, sink)

    def counting_g_forward(self, out=None):  # type: ignore[no-untyped-def]
        counts["g_forwards"] += 1
        return g_forward(self, out)

    monkeypatch.setattr(DiscriminatorPass, "backward", counting_d_backward)
    monkeypatch.setattr(GeneratorPass, "backward", counting_g_backward)
    monkeypatch.setattr(GeneratorPass, "forward", counting_g_forward)
    train(tiny(k=3, iterations=5), easy_data(), Recorder(), device="cpu")
    # Each D-step samples its own z (one G forward each), the G-step a fresh one.
    assert counts == {"d_updates": 15, "g_steps_through_d": 5, "g_updates": 5, "g_forwards": 20}


def test_learning_rate_schedule() -> None:
    c = PRESETS["paper-mnist"]
    for u in (0, 1, 2, 500, 10_000, 100_000):
        assert learning_rate(c, u) == pytest.approx(max(0.1 / 1.000004**u, 1e-6), rel=1e-9)
    assert learning_rate(c, 0) == 0.1
    assert learning_rate(c, 5_000_000) == 1e-6                   # floored at lr_min
    assert learning_rate(c, 10**9) == 1e-6
    assert learning_rate(PRESETS["quick"], 12345) == PRESETS["quick"].lr   # Adam: constant


def test_momentum_schedule() -> None:
    c = PRESETS["paper-mnist"]                                    # epoch = 500 updates
    # pylearn2 monitors once before training, so its counter is 1 in the first epoch: 0.5 there, then a step
    # of 0.2 / 249 per epoch, 0.7 from the 250th epoch (updates 124,500..) on.
    expected = {0: 0.5, 499: 0.5, 500: 0.5 + 0.2 / 249, 999: 0.5 + 0.2 / 249, 1000: 0.5 + 0.4 / 249,
                125 * 500: 0.5 + 0.2 * 125 / 249, 249 * 500 - 1: 0.5 + 0.2 * 248 / 249, 249 * 500: 0.7,
                250 * 500: 0.7, 10**7: 0.7}
    for u, mu in expected.items():
        assert momentum(c, u) == pytest.approx(mu, abs=1e-12), u
    assert momentum(PRESETS["quick"], 10_000) == PRESETS["quick"].adam_betas[0]


def test_loop_uses_the_schedules() -> None:
    config = tiny(iterations=12, log_every=4, lr_decay=1.01, momentum_start=0.3, momentum_end=0.9,
                  momentum_saturate_epoch=2, batch_size=12_500)     # epoch_size = 4 updates
    hooks = Recorder()
    train(config, easy_data(64), hooks, device="cpu")
    for row in hooks.rows:                                        # the values of the row's last update
        assert row["lr"] == pytest.approx(learning_rate(config, int(row["iteration"]) - 1))
        assert row["momentum"] == pytest.approx(momentum(config, int(row["iteration"]) - 1))
    assert [r["momentum"] for r in hooks.rows] == pytest.approx([0.3, 0.9, 0.9])   # epochs 0, 1, 2


@pytest.mark.parametrize("dtype,with_copy", [(torch.float32, False), (torch.bfloat16, False), (torch.bfloat16, True)])
def test_momentum_rule_is_pylearn2s(dtype: torch.dtype, with_copy: bool) -> None:
    packed = torch.randn(2, 4)                                    # one layer's [W | b], fp32 in both modes
    copy = packed.to(torch.bfloat16)                              # the passes' bf16 copy: updated in the same pass
    opt = Momentum([packed], [copy] if with_copy else None)
    assert opt.updates_copies == with_copy
    g, a = torch.randn(5, 2, dtype=dtype), torch.cat([torch.randn(5, 3), torch.ones(5, 1)], 1).to(dtype)
    grad = (g.t() @ a).float()                                    # bf16: the product is rounded to bf16
    inc, w = torch.zeros(2, 4, dtype=torch.float64), packed.double()
    # lr and mu change between updates; mu = 0 drops the past; 60 updates at 0.5 fold the scale back in twice.
    for lr, mu in ((0.1, 0.5), (0.02, 0.7), (0.3, 0.6), (0.05, 0.0), (0.1, 0.9), *[(0.01, 0.5)] * 60):
        opt.begin(lr, mu)
        opt.sink(0, g, a, 1.0)
        opt.step()
        inc = mu * inc - lr * grad.double()
        w = w + inc
        assert torch.allclose(packed.double(), w, atol=1e-5)
        assert torch.allclose(opt.state_dict()["inc"][0].double(), inc, rtol=1e-5, atol=1e-7)
        if with_copy:
            assert torch.equal(copy, packed.to(torch.bfloat16))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_momentum_resumes_exactly(dtype: torch.dtype) -> None:
    """A Momentum rebuilt from a state_dict continues bit for bit (mu = 0.7: s is no power of two), and one from
    a checkpoint that holds inc alone continues by the rule."""
    gen = torch.Generator().manual_seed(0)
    g, a = torch.randn(50, 20, generator=gen).to(dtype), torch.randn(50, 40, generator=gen).to(dtype)
    schedule = [(0.1, 0.7)] * 6

    def run(opt: Momentum, steps: list[tuple[float, float]]) -> None:
        for lr, mu in steps:
            opt.begin(lr, mu)
            opt.sink(0, g, a, 1.0)

    whole = torch.randn(20, 40, generator=gen)
    first = whole.clone()
    run(Momentum([whole]), schedule)
    opt = Momentum([first])
    run(opt, schedule[:3])
    state = opt.state_dict()
    for saved, exact in ((state, True), ({"inc": state["inc"]}, False)):
        resumed = first.clone()
        again = Momentum([resumed])
        again.load_state_dict(saved)
        run(again, schedule[3:])
        assert torch.equal(resumed, whole) if exact else torch.allclose(resumed, whole, atol=1e-4)


@pytest.mark.parametrize("preset,k,order,engine,update", [
    ("paper-mnist", 1, "shuffled", "auto", "alternating"), ("paper-mnist", 2, "shuffled", "auto", "alternating"),
    ("quick", 1, "shuffled", "auto", "alternating"), ("paper-mnist", 1, "with-replacement", "auto", "alternating"),
    ("paper-mnist", 1, "shuffled", "fused", "simultaneous"), ("paper-mnist", 2, "shuffled", "autograd", "alternating"),
    ("quick", 1, "shuffled", "autograd", "alternating"), ("paper-mnist", 1, "shuffled", "autograd", "simultaneous")])
def test_resume_is_bit_identical(preset: str, k: int, order: str, engine: str, update: str) -> None:
    # 256 rows, batch 16: the run stops mid-pass, and with k = 2 the rest crosses into a new permutation.
    config = tiny(preset, k=k, iterations=12, checkpoint_seconds=0.0, data_order=order, engine=engine,
                  update=update)                                                   # a checkpoint every iteration
    data = easy_data()
    whole = Recorder()
    full = train(config, data, whole, device="cpu")
    first = Recorder(stop_after=5)                                # interrupted before iteration 6
    with pytest.raises(TrainingStopped):
        train(config, data, first, device="cpu")
    iteration, blob = first.checkpoints[-1]
    assert iteration == 5
    rest = Recorder()
    resumed = train(config, data, rest, resume=blob, device="cpu")
    assert resumed.iterations == 12
    a, b = params(full.generator), params(resumed.generator)
    assert all(torch.equal(a[key], b[key]) for key in a)
    # D and the optimizer state too: the final checkpoints of both runs agree.
    s1, s2 = load_checkpoint(whole.checkpoints[-1][1]), load_checkpoint(rest.checkpoints[-1][1])
    assert s1["iteration"] == s2["iteration"] == 11
    assert all(torch.equal(s1["discriminator"][k], s2["discriminator"][k]) for k in s1["discriminator"])
    assert torch.equal(s1["rng"], s2["rng"])
    # Snapshots use a fixed z that does not depend on the resume.
    assert np.array_equal(whole.snapshots[-1][1], rest.snapshots[-1][1])


def test_checkpoint_of_another_config_is_refused() -> None:
    hooks = Recorder()
    train(tiny(iterations=3, checkpoint_seconds=0.0), easy_data(), hooks, device="cpu")
    blob = hooks.checkpoints[-1][1]
    with pytest.raises(CheckpointMismatch):
        train(tiny(iterations=3, seed=7), easy_data(), Recorder(), resume=blob, device="cpu")
    with pytest.raises(CheckpointMismatch):
        train(tiny(iterations=3), easy_data(dim=30), Recorder(), resume=blob, device="cpu")
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(b"not a checkpoint")
    # Scoring does not change what the run computes: a checkpoint written without it (or before the option
    # existed: the key leaves it out) resumes with it.
    scored = tiny(iterations=3, checkpoint_seconds=0.0, score_every=4, keep="best")
    resumed = train(scored, easy_data(), Recorder(), resume=blob, device="cpu")
    assert resumed.iterations == 3


def test_checkpoint_from_before_data_order_resumes() -> None:
    """A run stored before data_order existed drew with replacement; its checkpoint has no minibatch state and
    its config key no data_order. Loaded through from_dict, it resumes."""
    config = tiny(iterations=6, checkpoint_seconds=0.0, data_order="with-replacement")
    hooks = Recorder()
    train(config, easy_data(), hooks, device="cpu")
    state = load_checkpoint(hooks.checkpoints[2][1])
    del state["minibatches"]
    old_dict = {k: v for k, v in config.to_dict().items() if k not in LEGACY_VALUES}  # all newer than that run
    state["config"] = json.dumps({k: v for k, v in old_dict.items() if k not in NOT_IN_KEY}, sort_keys=True)
    old_blob = save_checkpoint({k: v for k, v in state.items() if k != "format"})
    resumed = train(TrainConfig.from_dict(old_dict), easy_data(), Recorder(), resume=old_blob, device="cpu")
    assert resumed.iterations == 6
    with pytest.raises(CheckpointMismatch):                             # a shuffled run is another config
        train(config.replace(data_order="shuffled"), easy_data(), Recorder(), resume=old_blob,
              device="cpu")


def test_a_checkpoint_from_another_device_type_resumes_with_a_new_stream(caplog: pytest.LogCaptureFixture) -> None:
    """A GPU worker's checkpoint on a CPU worker (or the reverse): the generator state cannot be loaded, so
    the random stream is re-seeded from (seed, iteration); everything else is restored."""
    config = tiny(iterations=6, checkpoint_seconds=0.0)
    hooks = Recorder()
    full = train(config, easy_data(), hooks, device="cpu")
    state = load_checkpoint(hooks.checkpoints[2][1])                 # after iteration 3
    state.update(device="cuda", rng=torch.zeros(16, dtype=torch.uint8))   # a CUDA generator's state
    blob = save_checkpoint({k: v for k, v in state.items() if k != "format"})
    runs = [train(config, easy_data(), Recorder(), resume=blob, device="cpu") for _ in range(2)]
    assert all(r.iterations == 6 for r in runs)
    assert "re-seeded at iteration 3" in caplog.text
    a, b, c = (params(r.generator) for r in (*runs, full))
    assert all(torch.equal(a[k], b[k]) for k in a)                   # the new stream is deterministic
    assert any(not torch.equal(a[k], c[k]) for k in a)               # and not the old one


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_raises_non_finite_loss(engine: str) -> None:
    data = easy_data()
    data[:] = np.nan
    with pytest.raises(NonFiniteLoss, match=r"d_loss .*iteration 1\b"):
        train(tiny(engine=engine), data, Recorder(), device="cpu")


def test_should_stop_raises_training_stopped() -> None:
    hooks = Recorder(stop_after=0)
    with pytest.raises(TrainingStopped):
        train(tiny(), easy_data(), hooks, device="cpu")
    assert hooks.polls == 1 and not hooks.rows


@pytest.mark.parametrize("engine", ENGINES)
def test_minimax_objective_and_max_col_norm(engine: str) -> None:
    hooks = Recorder()
    config = tiny(objective="minimax", d_max_col_norm=0.02, iterations=6, checkpoint_seconds=0.0, engine=engine)
    train(config, easy_data(), hooks, device="cpu")
    assert all(r["g_loss"] < 0 for r in hooks.rows)              # G minimises log(1 - D(G(z))) < 0
    state = load_checkpoint(hooks.checkpoints[-1][1])
    for key, w in state["discriminator"].items():
        if key.endswith("weight"):
            assert float(w.norm(dim=1).max()) <= 0.02 * (1 + 1e-5), key


@pytest.mark.parametrize("engine", ENGINES)
def test_bf16_run_is_finite(engine: str) -> None:
    hooks = Recorder()
    out = train(tiny(bf16=True, iterations=8, engine=engine), easy_data(), hooks, device="cpu")
    assert all(math.isfinite(v) for v in hooks.rows[-1].values())
    assert all(p.dtype == torch.float32 for p in out.generator.parameters())
