"""Training E(x) -> z after G (the paper's section 7.2: "an auxiliary network to predict z given x").

E learns on pairs (G(z, c), z), z from G's prior and c a uniform class when conditional, minimizing the mean
squared error in z, with Adam (lr 1e-3) on fresh minibatches of config.batch_size. G is frozen.

config.encoder_data_iterations > 0 adds the optional second phase: that many Adam updates (lr 1e-4) on
minibatches of real training images (with their labels when conditional), minimizing the pixel error of
G(E(x, c), c) against x through the frozen G. The README's encoder figures say what it buys.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets.common import noise, one_hot
from models.nets.encoder import Encoder, build_encoder
from worker.training.hooks import TrainingStopped

LR = 1e-3
DATA_LR = 1e-4  # the second phase fine-tunes the E the first one found
STOP_CHECK_EVERY = 50


def prior_pairs(g: nn.Module, config: TrainConfig, rows: int, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    """(x = G(z, c) (rows, D), z (rows, latent), c (rows, classes) or None), all fresh from `rng`."""
    z = noise((rows, config.latent_dim), config.noise_scale, rng, device)
    c = None
    if config.conditional:
        c = one_hot(torch.randint(0, config.num_classes, (rows,), generator=rng, device=device),
                    config.num_classes)
    with torch.no_grad():
        x = g(z, c) if c is not None else g(z)
    return x, z, c


def train_encoder(g: nn.Module, config: TrainConfig, input_dim: int, device: torch.device,
                  should_stop: Callable[[], bool] = lambda: False, data: np.ndarray | None = None,
                  labels: np.ndarray | None = None) -> Encoder:
    """E for the trained G (fp32, any device), in eval mode on CPU without gradients. `should_stop()` is asked
    every STOP_CHECK_EVERY updates; True raises TrainingStopped, as the training loop does. `data` (N, D)
    (and `labels` (N,) when conditional): the training images of the second phase, which runs when
    config.encoder_data_iterations > 0."""
    g = g.to(device).eval()
    e = build_encoder(config, input_dim).to(device)
    opt = torch.optim.Adam(e.parameters(), lr=LR)
    rng = torch.Generator(device=device).manual_seed(config.seed + 1)
    for it in range(config.encoder_iterations):
        _check_stop(should_stop, it)
        x, z, c = prior_pairs(g, config, config.batch_size, rng, device)
        loss = F.mse_loss(e(x, c), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if config.encoder_data_iterations:
        if data is None or (config.conditional and labels is None):
            raise ValueError("encoder_data_iterations needs the training images (and labels when conditional)")
        refine_on_data(e, g, config, data, labels, rng, should_stop)
    e.eval().requires_grad_(False)
    return e.cpu()


def refine_on_data(e: Encoder, g: nn.Module, config: TrainConfig, data: np.ndarray, labels: np.ndarray | None,
                   rng: torch.Generator, should_stop: Callable[[], bool] = lambda: False) -> None:
    """The second phase: config.encoder_data_iterations updates of E on real minibatches, minimizing the
    squared pixel error of G(E(x, c), c) against x; G's weights stay as they are."""
    device = next(e.parameters()).device
    x_all = torch.from_numpy(np.array(data, dtype=np.float32)).to(device)                # (N, D)
    c_all = None if labels is None or not config.conditional else \
        one_hot(torch.from_numpy(np.asarray(labels, dtype=np.int64)), config.num_classes).to(device)
    frozen = [p.requires_grad for p in g.parameters()]
    g.requires_grad_(False)
    opt = torch.optim.Adam(e.parameters(), lr=DATA_LR)
    for it in range(config.encoder_data_iterations):
        _check_stop(should_stop, it)
        rows = torch.randint(0, len(x_all), (config.batch_size,), generator=rng, device=device)
        x, c = x_all[rows], None if c_all is None else c_all[rows]
        z = e(x, c)
        loss = F.mse_loss(g(z, c) if c is not None else g(z), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p, flag in zip(g.parameters(), frozen, strict=True):
        p.requires_grad_(flag)


def _check_stop(should_stop: Callable[[], bool], it: int) -> None:
    if it % STOP_CHECK_EVERY == 0 and should_stop():
        raise TrainingStopped(f"stopped while training the encoder, before its update {it + 1}")


__all__ = ["DATA_LR", "LR", "prior_pairs", "refine_on_data", "train_encoder"]
