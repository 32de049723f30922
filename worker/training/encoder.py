"""Training E(x) -> z after G (the paper's section 7.2: "an auxiliary network to predict z given x").

E learns on pairs (G(z, c), z), z from G's prior and c a uniform class when conditional, minimizing the mean
squared error in z, with Adam (lr 1e-3) on fresh minibatches of config.batch_size. G is frozen. A
reconstruction phase on real images through the frozen G is not used: see the README's encoder figures.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets.common import noise, one_hot
from models.nets.encoder import Encoder, build_encoder
from worker.training.hooks import TrainingStopped

LR = 1e-3
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
                  should_stop: Callable[[], bool] = lambda: False) -> Encoder:
    """E for the trained G (fp32, any device), in eval mode on CPU without gradients. `should_stop()` is asked
    every STOP_CHECK_EVERY updates; True raises TrainingStopped, as the training loop does."""
    g = g.to(device).eval()
    e = build_encoder(config, input_dim).to(device)
    opt = torch.optim.Adam(e.parameters(), lr=LR)
    rng = torch.Generator(device=device).manual_seed(config.seed + 1)
    for it in range(config.encoder_iterations):
        if it % STOP_CHECK_EVERY == 0 and should_stop():
            raise TrainingStopped(f"stopped while training the encoder, before its update {it + 1}")
        x, z, c = prior_pairs(g, config, config.batch_size, rng, device)
        loss = F.mse_loss(e(x, c), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    e.eval().requires_grad_(False)
    return e.cpu()


__all__ = ["LR", "prior_pairs", "train_encoder"]
