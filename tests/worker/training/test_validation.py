"""Scoring G on the validation split while it trains (worker/training/validation.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.config import PRESETS
from models.parzen import PAPER_SIGMA_GRID, log_likelihoods, select_sigma
from worker.training.validation import ValidationScorer

CONFIG = PRESETS["paper-mnist"].replace(latent_dim=4, seed=3)


class Lookup(nn.Module):
    """A 'generator' that returns rows of a fixed table, picked by the first latent coordinate."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.from_numpy(table), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = (z[:, 0] / CONFIG.noise_scale + 1) / 2                   # U[-s, s] -> [0, 1]
        return self.table[(u * (len(self.table) - 1)).round().long()]


def test_the_score_is_the_paper_protocol_on_validation_images() -> None:
    rng = np.random.default_rng(0)
    valid = (rng.random((300, 12)) < 0.3).astype(np.float32)
    table = (rng.random((50, 12)) < 0.3).astype(np.float32)
    scorer = ValidationScorer(CONFIG, valid, n_samples=400)
    score = scorer(Lookup(table))
    samples = Lookup(table)(scorer.z).numpy()
    sigma, _ = select_sigma(samples, valid[:1000], PAPER_SIGMA_GRID)  # the first 1000 (here all 300)
    ll = log_likelihoods(valid, samples, [sigma])[0]
    assert score["valid_sigma"] == sigma
    assert score["valid_ll"] == pytest.approx(ll.mean()) and score["valid_ll_se"] == pytest.approx(ll.std() / 300**0.5)
    assert score["score_seconds"] > 0
    again = scorer(Lookup(table))                                     # the same fixed z: the same score
    assert {k: v for k, v in again.items() if k != "score_seconds"} == \
        {k: v for k, v in score.items() if k != "score_seconds"}


def test_samples_near_the_validation_images_score_higher() -> None:
    rng = np.random.default_rng(1)
    valid = (rng.random((200, 16)) < 0.3).astype(np.float32)
    scorer = ValidationScorer(CONFIG, valid, n_samples=500)
    near = scorer(Lookup(np.clip(valid + rng.normal(0, 0.05, valid.shape), 0, 1).astype(np.float32)))
    far = scorer(Lookup(rng.random((200, 16)).astype(np.float32)))
    assert near["valid_ll"] > far["valid_ll"] + 5
