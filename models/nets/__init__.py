"""The networks a run trains, built from its config: `build_generator` and `build_discriminator` pick the
architecture (models/nets/mlp.py, models/nets/conv.py); models/nets/common.py holds what both share."""

from __future__ import annotations

import numpy as np
from torch import nn

from models.config import TrainConfig
from models.nets.conv import build_conv_discriminator, build_conv_generator
from models.nets.mlp import build_mlp_discriminator, build_mlp_generator


def build_generator(config: TrainConfig, data_mean: np.ndarray | None, output_dim: int | None = None) -> nn.Module:
    """G for config.architecture with the paper's init, its output bias from `data_mean` (D,) when given.
    Without the data, `output_dim` (or the dataset's) sizes the output."""
    if config.architecture == "conv":
        return build_conv_generator(config, data_mean, output_dim)
    return build_mlp_generator(config, data_mean, output_dim)


def build_discriminator(config: TrainConfig, input_dim: int) -> nn.Module:
    """D for config.architecture with the paper's init, reading `input_dim` values per example."""
    if config.architecture == "conv":
        return build_conv_discriminator(config, input_dim)
    return build_mlp_discriminator(config, input_dim)


__all__ = ["build_discriminator", "build_generator"]
