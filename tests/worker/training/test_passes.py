"""The fused engine's hand-written passes (worker/training/passes.py) against autograd through the nets'
modules, and their dropout masks, with each implementation of D's elementwise steps (worker/training/elementwise.py:
the C kernels, torch ops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import PRESETS, TrainConfig
from models.nets import build_discriminator, build_generator
from worker.training.passes import DiscriminatorPass, GeneratorPass

TINY = PRESETS["paper-mnist"].replace(latent_dim=10, g_hidden=(32, 16), d_hidden=(16, 8), d_pieces=3)
OPS = [pytest.param(True, id="native"), pytest.param(False, id="torch")]


def _grads_from_passes(config: TrainConfig, dtype: torch.dtype, native: bool) -> tuple[dict, dict, torch.Tensor, list]:
    g, d = build_generator(config, np.full(20, 0.3)), build_discriminator(config, 20)
    rng = torch.Generator().manual_seed(0)
    gp, dp = GeneratorPass(g, 8, dtype), DiscriminatorPass(d, 16, dtype, rng, native=native)
    grads: dict = {}

    def sink_for(tag: str):  # type: ignore[no-untyped-def]
        def sink(i: int, gr: torch.Tensor, a: torch.Tensor, scale: float) -> None:
            packed = scale * gr.float().t() @ a.float()                      # gradient of [W | b]
            grads[(tag, i)] = (packed[:, :-1], packed[:, -1])
        return sink

    gp.z.uniform_(-1.7, 1.7, generator=rng)
    dl = torch.randn(8, 1, generator=rng)
    with torch.no_grad():
        x = gp.forward()
        logits = dp.forward(x).float()
        dx = dp.backward(dl.to(dtype), sink_for("d"), input_grad=True)
        assert dx is not None
        gp.backward(dx, sink_for("g"))
    masks = [m[:8].clone().float() if m is not None else None for m in dp.masks]
    # The same computation with autograd through the modules, with the same z and masks.
    logits_ref = d(g(gp.z.float()), masks=masks)
    (logits_ref * dl).sum().backward()
    ref = {("d", i): (lin.weight.grad, lin.bias.grad) for i, lin in enumerate(d.linears)}
    ref.update({("g", i): (lin.weight.grad, lin.bias.grad) for i, lin in enumerate(g.linears)})
    return grads, ref, logits - logits_ref.detach(), masks


@pytest.mark.parametrize("native", OPS)
def test_hand_written_passes_match_autograd(native: bool) -> None:
    grads, ref, logit_diff, masks = _grads_from_passes(TINY, torch.float32, native)
    assert float(logit_diff.abs().max()) < 1e-6
    assert set(grads) == set(ref)
    for key, (w_ref, b_ref) in ref.items():
        w, b = grads[key]
        scale = float(w_ref.abs().max()) + 1e-30
        assert float((w - w_ref).abs().max()) <= 1e-5 * scale, key
        assert float((b - b_ref).abs().max()) <= 1e-5 * (float(b_ref.abs().max()) + 1e-30), key
    assert all(m is not None and set(m.unique().tolist()) <= {0.0, 1.0} for m in masks)


@pytest.mark.parametrize("native", OPS)
def test_bf16_passes_are_close_to_fp32(native: bool) -> None:
    grads, ref, logit_diff, _ = _grads_from_passes(TINY, torch.bfloat16, native)
    assert float(logit_diff.abs().max()) < 0.05
    for key, (w_ref, _) in ref.items():
        rel = float((grads[key][0] - w_ref).norm() / (w_ref.norm() + 1e-30))
        assert rel < 0.1, key


@pytest.mark.parametrize("native", OPS)
@pytest.mark.parametrize("keep", [0.8, 0.5, 0.3, 0.123456789])   # torch ops: 16 bits, 8 bits, 16 bits, 16 bits
def test_dropout_masks_keep_with_the_configured_probability(keep: float, native: bool) -> None:
    config = TINY.replace(d_input_keep=keep)
    d = build_discriminator(config, 501)                             # 501: rows do not start on a 4-entry word
    dp = DiscriminatorPass(d, 400, torch.float32, torch.Generator().manual_seed(1), native=native)
    mask = dp.draw_mask(0, 400).clone().double()                     # 200,400 Bernoulli(keep) draws
    assert mask.shape == (400, 501)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    sd = np.sqrt(keep * (1 - keep) / mask.numel())
    assert abs(float(mask.mean()) - keep) < 4 * sd
    # Neighbouring entries independent: P(both kept) = keep^2 along rows and down columns.
    for pairs in (mask[:, 1:] * mask[:, :-1], mask[1:] * mask[:-1]):
        assert abs(float(pairs.mean()) - keep**2) < 6 * sd
    other = dp.draw_mask(0, 400)
    assert not torch.equal(mask, other.double())                     # fresh masks on every draw


@pytest.mark.parametrize("native", OPS)
def test_the_masks_are_the_run_generators(native: bool) -> None:
    """The same generator state gives the same masks (a resumed run replays them); another seed others."""
    d = build_discriminator(TINY, 20)
    masks = [DiscriminatorPass(d, 50, torch.float32, torch.Generator().manual_seed(seed), native=native)
             .draw_mask(1, 50).clone() for seed in (3, 3, 4)]
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


@pytest.mark.parametrize("native", OPS)
def test_no_dropout_when_keep_is_one(native: bool) -> None:
    config = TINY.replace(d_input_keep=1.0, d_hidden_keep=1.0)
    d = build_discriminator(config, 20)
    dp = DiscriminatorPass(d, 4, torch.float32, torch.Generator().manual_seed(0), native=native)
    x = torch.rand(4, 20)
    with torch.no_grad():
        assert torch.allclose(dp.forward(x.clone()), d(x), atol=1e-6)
