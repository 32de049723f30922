"""The paper's networks: shapes, parameter counts, init, maxout, dropout from the run's generator."""

from __future__ import annotations

import numpy as np
import torch

from models.config import PRESETS
from models.nets import build_discriminator, build_generator
from models.nets.common import noise, parameter_count

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


def test_dropout_draws_from_the_given_generator() -> None:
    # Training: fresh masks from the run's generator, so the same generator state gives the same masks (a
    # resumed run replays them); none without a generator (the test-time net) or with keep 1.
    d = build_discriminator(TINY, 12)
    x = torch.rand(4, 12)
    with torch.no_grad():
        a, b = d(x, rng=torch.Generator().manual_seed(1)), d(x, rng=torch.Generator().manual_seed(1))
        assert torch.equal(a, b) and not torch.equal(a, d(x))
        no_dropout = build_discriminator(TINY.replace(d_input_keep=1.0, d_hidden_keep=1.0), 12)
        assert torch.equal(no_dropout(x, rng=torch.Generator().manual_seed(1)), no_dropout(x))
