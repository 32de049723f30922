"""The paper's networks: shapes, parameter counts, init, and the hand-written passes against autograd."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from models.config import PRESETS, TrainConfig
from models.nets.mlp import (
    DiscriminatorPass,
    GeneratorPass,
    build_discriminator,
    build_generator,
    noise,
    parameter_count,
)

PAPER = PRESETS["paper-mnist"]
TINY = PAPER.replace(latent_dim=10, g_hidden=(32, 16), d_hidden=(16, 8), d_pieces=3)


def test_paper_generator_shapes_and_parameter_count() -> None:
    g = build_generator(PAPER, None)
    assert [tuple(layer.weight.shape) for layer in g.linears] == [(1200, 100), (1200, 1200), (784, 1200)]
    assert parameter_count(g) == 100 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 784 + 784
    with torch.no_grad():
        x = g(noise((5, 100), PAPER.noise_scale, torch.Generator().manual_seed(0)))
    assert x.shape == (5, 784) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_paper_discriminator_shapes_and_parameter_count() -> None:
    d = build_discriminator(PAPER, 784)
    assert [tuple(layer.weight.shape) for layer in d.linears] == [(1200, 784), (1200, 240), (1, 240)]
    assert parameter_count(d) == 784 * 1200 + 1200 + 240 * 1200 + 1200 + 240 + 1
    assert d.keeps == (0.8, 0.5, 0.5)
    assert d(torch.rand(3, 784)).shape == (3, 1)


def test_init_ranges_and_biases() -> None:
    g, d = build_generator(PAPER, None), build_discriminator(PAPER, 784)
    for net, bound in ((g.linears, 0.05), (d.linears, 0.005)):
        for layer in net:
            w = layer.weight.detach()
            assert float(w.abs().max()) <= bound
            assert float(w.abs().max()) > 0.95 * bound              # uniform over the whole range
            if w.numel() >= 10_000:                                  # moments of U(-bound, bound)
                assert abs(float(w.mean())) < 0.05 * bound
                assert abs(float(w.std()) - bound / np.sqrt(3)) < 0.05 * bound
    for layer in [*g.linears, *d.linears]:                            # no data mean: all biases zero
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_output_bias_is_logit_of_clipped_data_mean() -> None:
    mean = np.linspace(0.0, 1.0, 784)                                # includes exact 0 and 1: clipped
    g = build_generator(PAPER, mean)
    clipped = np.clip(mean, 1e-7, 1 - 1e-7)
    expected = np.log(clipped / (1 - clipped))
    np.testing.assert_allclose(g.linears[-1].bias.detach().numpy(), expected, rtol=1e-6, atol=1e-5)
    assert float(g.linears[0].bias.detach().abs().max()) == 0.0 == float(g.linears[1].bias.detach().abs().max())
    linear = build_generator(PAPER.replace(g_output="linear"), mean)
    assert float(linear.linears[-1].bias.detach().abs().max()) == 0.0          # only for a sigmoid output


def test_init_is_reproducible_from_the_seed() -> None:
    a, b = build_generator(PAPER, None), build_generator(PAPER, None)
    c = build_generator(PAPER.replace(seed=1), None)
    assert torch.equal(a.linears[0].weight, b.linears[0].weight)
    assert not torch.equal(a.linears[0].weight, c.linears[0].weight)


def test_maxout_is_a_max_over_pieces() -> None:
    d = build_discriminator(TINY, 12)
    x = torch.rand(4, 12)
    pre = d.hidden[0](x)                                             # (4, pieces * units), piece-major
    units = TINY.d_hidden[0]
    expected = torch.stack([pre[:, p * units:(p + 1) * units] for p in range(TINY.d_pieces)]).amax(0)
    h = d.hidden[0](x).view(4, TINY.d_pieces, units).amax(1)
    assert torch.equal(h, expected)


def _grads_from_passes(config: TrainConfig, dtype: torch.dtype) -> tuple[dict, dict, torch.Tensor, list]:
    g, d = build_generator(config, np.full(20, 0.3)), build_discriminator(config, 20)
    rng = torch.Generator().manual_seed(0)
    gp, dp = GeneratorPass(g, 8, dtype), DiscriminatorPass(d, 16, dtype, rng)
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
    logits_ref = d(g(gp.z.float()), masks)
    (logits_ref * dl).sum().backward()
    ref = {("d", i): (lin.weight.grad, lin.bias.grad) for i, lin in enumerate(d.linears)}
    ref.update({("g", i): (lin.weight.grad, lin.bias.grad) for i, lin in enumerate(g.linears)})
    return grads, ref, logits - logits_ref.detach(), masks


def test_hand_written_passes_match_autograd() -> None:
    grads, ref, logit_diff, masks = _grads_from_passes(TINY, torch.float32)
    assert float(logit_diff.abs().max()) < 1e-6
    assert set(grads) == set(ref)
    for key, (w_ref, b_ref) in ref.items():
        w, b = grads[key]
        scale = float(w_ref.abs().max()) + 1e-30
        assert float((w - w_ref).abs().max()) <= 1e-5 * scale, key
        assert float((b - b_ref).abs().max()) <= 1e-5 * (float(b_ref.abs().max()) + 1e-30), key
    assert all(m is not None and set(m.unique().tolist()) <= {0.0, 1.0} for m in masks)


def test_bf16_passes_are_close_to_fp32() -> None:
    grads, ref, logit_diff, _ = _grads_from_passes(TINY, torch.bfloat16)
    assert float(logit_diff.abs().max()) < 0.05
    for key, (w_ref, _) in ref.items():
        rel = float((grads[key][0] - w_ref).norm() / (w_ref.norm() + 1e-30))
        assert rel < 0.1, key


@pytest.mark.parametrize("keep", [0.8, 0.5, 0.3, 0.123456789])         # bytes, redrawn bytes, 32 bits
def test_dropout_masks_keep_with_the_configured_probability(keep: float) -> None:
    config = TINY.replace(d_input_keep=keep)
    d = build_discriminator(config, 500)
    dp = DiscriminatorPass(d, 400, torch.float32, torch.Generator().manual_seed(1))
    mask = dp.draw_mask(0, 400).clone()                              # 200,000 Bernoulli(keep) draws
    assert mask.shape == (400, 500)
    assert abs(float(mask.mean()) - keep) < 4 * np.sqrt(keep * (1 - keep) / mask.numel())
    other = dp.draw_mask(0, 400)
    assert not torch.equal(mask, other)                              # fresh masks on every draw


def test_no_dropout_when_keep_is_one() -> None:
    config = TINY.replace(d_input_keep=1.0, d_hidden_keep=1.0)
    d = build_discriminator(config, 20)
    dp = DiscriminatorPass(d, 4, torch.float32, torch.Generator().manual_seed(0))
    x = torch.rand(4, 20)
    with torch.no_grad():
        assert torch.allclose(dp.forward(x.clone()), d(x), atol=1e-6)
