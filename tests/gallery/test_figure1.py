"""worker/toy_snapshot.compute: the curves of the paper's Figure 1 from numpy callables (no torch, no DB)."""

from __future__ import annotations

import numpy as np

from worker.training.figure1 import BINS, GRID_POINTS, compute, kde


def test_curves_have_the_right_shape_and_mass() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(-1.0, 0.5, size=(20_000, 1))
    # G maps z ~ U[-1, 1] to N-ish around +1: the two densities barely overlap, so D(x) is near 1 on the
    # data's side and near 0 on G's, crossing 1/2 between them (Figure 1 (a)).
    fig = compute(7, lambda z: z * 0.3 + 1.0, lambda x: 1 / (1 + np.exp(4 * x[:, 0])), data, 1, -1.0, 1.0)
    assert fig["iteration"] == 7
    assert len(fig["x"]) == len(fig["data_density"]) == len(fig["d"]) == GRID_POINTS
    assert len(fig["bins"]) == BINS + 1 and len(fig["g_density"]) == BINS
    x, dx = np.array(fig["x"]), fig["x"][1] - fig["x"][0]
    assert abs(np.sum(fig["data_density"]) * dx - 1.0) < 0.03  # a density: integrates to 1 on the axis
    width = fig["bins"][1] - fig["bins"][0]
    assert abs(np.sum(fig["g_density"]) * width - 1.0) < 0.01
    assert x[0] < -2.0 and x[-1] > 1.3  # the axis covers both distributions
    assert x[np.argmax(fig["data_density"])] < -0.8
    g_peak = np.argmax(fig["g_density"])
    assert 0.7 < (fig["bins"][g_peak] + fig["bins"][g_peak + 1]) / 2 < 1.3
    assert fig["d"][0] > 0.99 and fig["d"][-1] < 0.01


def test_kde_is_a_normal_density_for_one_point() -> None:
    x = np.linspace(-5, 5, 1001)
    density = kde(x, np.zeros(1))
    assert abs(density.sum() * (x[1] - x[0]) - 1.0) < 1e-3
    assert np.argmax(density) == 500


def test_torch_callables_wrap_the_real_networks() -> None:
    import pytest

    torch = pytest.importorskip("torch")
    from models.config import PRESETS
    from models.nets import build_discriminator, build_generator
    from worker.training.figure1 import torch_callables

    config = PRESETS["toy-1d"]
    generator = build_generator(config, np.zeros(1), output_dim=1)
    discriminator = build_discriminator(config, 1)
    generate, discriminate = torch_callables(generator, discriminator)
    x = generate(np.zeros((5, 1), np.float32))
    d = discriminate(np.linspace(-3, 3, 7, dtype=np.float32)[:, None])
    assert x.shape == (5, 1) and d.shape == (7, 1)
    assert np.all((d > 0) & (d < 1))  # probabilities: the logits went through the sigmoid
    with torch.no_grad():
        logits = discriminator(torch.linspace(-3, 3, 7)[:, None])
    np.testing.assert_allclose(d, torch.sigmoid(logits).numpy(), rtol=1e-6)
