"""Conditional nets (c beside z in G, beside x and projected in D), their training step, their ONNX graph, and
the encoder E trained on G's own samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import ConfigError, TrainConfig, resolve
from models.nets import build_discriminator, build_generator
from models.nets.common import noise, one_hot, with_class
from tests.factories import tiny_config
from worker.export import export_generator, run_onnx
from worker.training.encoder import prior_pairs, train_encoder
from worker.training.hooks import QuietHooks
from worker.training.loop import AutogradEngine, train


def test_resolve_fills_the_label_names_and_picks_autograd() -> None:
    config = resolve("quick", "mnist", conditional=True)
    assert config.label_names == tuple("0123456789") and config.num_classes == 10
    assert not config.uses_fused_engine
    assert resolve("quick", "mnist").label_names == ()
    with pytest.raises(ConfigError, match="conditional"):
        resolve("toy-2d", conditional=True)
    with pytest.raises(ConfigError, match="engine"):
        resolve("quick", "mnist", conditional=True, engine="fused")


def test_conditional_training_uses_the_labels() -> None:
    config = tiny_config(conditional=True, iterations=3, batch_size=8)
    data = np.random.default_rng(0).random((40, 784), dtype=np.float32)
    labels = np.arange(40) % 10
    out = train(config, data, QuietHooks(), labels=labels, device="cpu")
    assert out.iterations == 3 and np.isfinite(out.metrics["d_loss"])
    with pytest.raises(ValueError, match="label"):
        train(config, data, QuietHooks(), device="cpu")


def test_the_discriminator_reads_c() -> None:
    config = tiny_config(conditional=True)
    d = build_discriminator(config, 784).eval()
    x = torch.rand(4, 784)
    a, b = d(x, c=one_hot(torch.tensor([1, 1, 1, 1]), 10)), d(x, c=one_hot(torch.tensor([2, 2, 2, 2]), 10))
    assert a.shape == (4, 1) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="needs c"):
        d(x)


def test_conv_nets_take_c() -> None:
    config = resolve("paper-cifar10-conv", "cifar10", conditional=True).replace(g_hidden=(8000,), d_hidden=(8,))
    g, d = build_generator(config, None, 3 * 32 * 32).eval(), build_discriminator(config, 3 * 32 * 32).eval()
    z, c = torch.zeros(2, 100), one_hot(torch.tensor([0, 9]), 10)
    x = g(z, c)
    assert x.shape == (2, 3072) and not torch.equal(x[0], x[1])       # same z, other class
    assert d(x, c=c).shape == (2, 1)


def test_onnx_takes_z_and_c_and_matches_torch() -> None:
    config = tiny_config(conditional=True)
    g = build_generator(config.replace(g_init_range=0.5), None, 784).eval()
    exported = export_generator(g, config, (1, 28, 28), {})
    assert exported.max_abs_diff <= 1e-5
    z = noise((5, 8), config.noise_scale, torch.Generator().manual_seed(1))
    c = one_hot(torch.tensor([0, 3, 3, 7, 9]), 10)
    got = run_onnx(exported.onnx, {"z": z.numpy(), "c": c.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, g(z, c).numpy(), atol=1e-5, rtol=0)
    other = run_onnx(exported.onnx, {"z": z.numpy(), "c": one_hot(torch.tensor([1, 1, 1, 1, 1]), 10).numpy()})
    assert np.abs(other - got).max() > 1e-3


@pytest.mark.parametrize("conditional", [False, True])
def test_encoder_round_trip_beats_a_random_z(conditional: bool) -> None:
    config = tiny_config(conditional=conditional, encoder=True, encoder_iterations=600)
    g = build_generator(config.replace(g_init_range=0.5), None, 784).eval()
    e = train_encoder(g, config, 784, torch.device("cpu"))
    x, z, c = prior_pairs(g, config, 256, torch.Generator().manual_seed(9), torch.device("cpu"))
    with torch.no_grad():
        z_hat = e(x, c)
        recon = g(z_hat, c) if conditional else g(z_hat)
        shuffled = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(1))]
    round_trip = float(((recon - x) ** 2).mean())
    random_z = float(((shuffled - x) ** 2).mean())
    assert round_trip < 0.2 * random_z, (round_trip, random_z)
    assert float(((z_hat - z) ** 2).mean()) < 0.5 * float(z.var())


def test_each_real_row_reaches_d_with_its_own_label() -> None:
    config = tiny_config(conditional=True, batch_size=16)
    labels = np.arange(50) % 10
    data = np.zeros((50, 784), np.float32)
    data[:, 0] = labels / 10.0                                  # each row carries its label in pixel 0
    engine = AutogradEngine(config, data, torch.device("cpu"), None, labels=labels)
    for _ in range(8):                                          # past the end of a pass: a fresh permutation
        x, c = engine.real()
        assert c is not None
        np.testing.assert_array_equal(c.argmax(1).numpy(), np.rint(x[:, 0].numpy() * 10).astype(int))


def test_the_data_phase_lowers_the_reconstruction_error_of_real_images() -> None:
    config = tiny_config(conditional=True, encoder=True, encoder_iterations=200)
    g = build_generator(config.replace(g_init_range=0.5), None, 784).eval().requires_grad_(False)
    # "Real" images G can draw, so a better E can reach them: G's samples at z's of the prior.
    images, _, classes = prior_pairs(g, config, 200, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert classes is not None
    data, labels = images.numpy(), classes.argmax(1).numpy()
    x, c = images[:64], classes[:64]

    def error(e: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(((g(e(x, c), c) - x) ** 2).mean())

    prior_only = train_encoder(g, config, 784, torch.device("cpu"))
    refined = train_encoder(g, config.replace(encoder_data_iterations=300), 784, torch.device("cpu"),
                            data=data, labels=labels)
    assert error(refined) < 0.95 * error(prior_only), (error(refined), error(prior_only))
    assert all(not p.requires_grad for p in g.parameters())    # G stayed frozen
    with pytest.raises(ValueError, match="training images"):
        train_encoder(g, config.replace(encoder_data_iterations=1), 784, torch.device("cpu"))


def test_c_moves_g_as_much_as_z_does_from_the_start() -> None:
    # With c's one-hot (norm 1) beside z's 100 unit-variance entries (norm 10) at the same init range, c moved
    # G's first layer a tenth of what z did, and under Adam learned as much slower: classes took hold only after
    # the digits did. g_class_scale brings c to z's norm.
    config = resolve("conditional-mnist", "mnist")
    first = build_generator(config, None, 784).eval().layers[0]
    z = noise((256, config.latent_dim), config.noise_scale, torch.Generator().manual_seed(0))
    k = torch.randint(0, 10, (256,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        def h(zz: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
            return first(with_class(zz, one_hot(kk, 10), 10, config.g_class_scale))
        by_c = (h(z, k) - h(z, (k + 1) % 10)).norm(dim=1).mean()
        by_z = (h(z, k) - h(z.roll(1, 0), k)).norm(dim=1).mean()
    assert 0.5 < float(by_c / by_z) < 2.0, float(by_c / by_z)
    stored = {key: v for key, v in config.to_dict().items() if key != "g_class_scale"}
    assert TrainConfig.from_dict(stored).g_class_scale == 1.0    # versions trained before keep their graph
