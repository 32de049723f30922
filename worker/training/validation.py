"""Scoring G while it trains: the Parzen protocol of Table 1 (models.parzen) on the VALIDATION split.

The authors' mnist.yaml has no stopping rule and saves every epoch, so the model they scored is one epoch of
many; choosing it by held-out likelihood is the honest way to pick. The test split is never looked at here:
it stays for the final score of the registered version (worker/scoring.py).

Protocol: 10,000 samples of G (no dropout) from a fixed z (the same z at every score, so scores differ only
because G moved), sigma chosen on the first 1,000 validation images from logspace(-1, 0, 10), then the mean
log-likelihood of the whole validation split at that sigma and its standard error.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from models.config import TrainConfig
from models.nets.common import derived_generator, noise
from models.parzen import PAPER_SIGMA_GRID, evaluate

# Table 1's sample count, as a registered version is scored (service/evaluation/parzen.py's N_SAMPLES); the
# 1,000 images sigma is chosen on are models.parzen.evaluate's default. Training imports no service code.
N_SAMPLES = 10_000

_SCORE_NOISE_TAG = 4        # derived_generator tags: 1 G init, 2 D init, 3 snapshot z, 4 score z
_SAMPLE_BATCH = 1000        # rows of G per forward pass: bounds the activations at ~10 MB


class ValidationUnavailable(RuntimeError):
    """score_every was set for a dataset without a validation split (the job fails with this message)."""


class ValidationScorer:
    """Scores a generator on one dataset's validation split; holds the fixed z across calls."""

    def __init__(self, config: TrainConfig, valid: np.ndarray, n_samples: int = N_SAMPLES) -> None:
        self.valid = np.ascontiguousarray(valid, dtype=np.float32)                  # (n_valid, D)
        self.z = noise((n_samples, config.latent_dim), config.noise_scale,
                       derived_generator(config.seed, _SCORE_NOISE_TAG))            # (n_samples, latent), CPU

    @torch.no_grad()
    def __call__(self, generator: nn.Module) -> dict[str, float]:
        """{valid_ll, valid_ll_se, valid_sigma, score_seconds} of `generator` (left in eval mode)."""
        t0 = time.perf_counter()
        generator.eval()
        device = next(generator.parameters()).device
        samples = np.concatenate([
            generator(self.z[i:i + _SAMPLE_BATCH].to(device)).float().reshape(-1, self.valid.shape[1]).cpu().numpy()
            for i in range(0, len(self.z), _SAMPLE_BATCH)])                         # (n_samples, D)
        # Table 1's protocol with the validation split in the test split's place.
        res = evaluate(samples, self.valid, self.valid, PAPER_SIGMA_GRID)
        return {"valid_ll": res.ll, "valid_ll_se": res.se, "valid_sigma": res.sigma,
                "score_seconds": time.perf_counter() - t0}
