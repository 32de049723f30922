"""What one training job may cost: parameters, checkpoint bytes, and how often it writes to the database.

Counted from the config alone (torch-free, so the API checks it at POST /jobs): the nets' shapes follow
models/nets/mlp.py and conv.py. The limits come from the service's settings and are passed in, so this
module stays free of them. A breach is a ConfigError naming the field to change and the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from models.config import CONV_G_CHANNELS, CONV_KERNEL, CONV_SIDE, ConfigError, TrainConfig

# D's maxout convolution layers (channels, pieces, kernel) and its flattened features on 32 x 32 images
# (192 channels on a 5 x 5 grid), as models/nets/conv.py builds them.
CONV_D_LAYERS = ((32, 2, 8), (32, 2, 8), (192, 2, 5))
CONV_D_FEATURES = 192 * 5 * 5
# A checkpoint holds the weights once, plus per-parameter optimizer state: SGD's momentum increment (one
# tensor), Adam's two moments.
STATE_COPIES = {"sgd": 2, "adam": 3}
FLOAT_BYTES = 4


@dataclass(frozen=True)
class Budget:
    max_parameters: int
    max_checkpoint_bytes: int
    min_log_every: int
    min_snapshot_every: int
    min_checkpoint_seconds: float


def _dense(dims: tuple[int, ...], pieces: int = 1) -> int:
    return sum(a * b * pieces + b * pieces for a, b in pairwise(dims))


def parameters(config: TrainConfig, image_shape: tuple[int, int, int]) -> int:
    """Parameters of G and D together for data of `image_shape` (C, H, W)."""
    data_dim = math.prod(image_shape)
    if config.architecture == "conv":
        g = _dense((config.latent_dim, *config.g_hidden)) + CONV_G_CHANNELS * image_shape[0] * CONV_KERNEL ** 2 \
            + image_shape[0] * CONV_SIDE * CONV_SIDE
        convs, channels = 0, image_shape[0]
        for out, pieces, kernel in CONV_D_LAYERS:
            convs += channels * out * pieces * kernel * kernel + out * pieces
            channels = out
        d = convs + _dense((CONV_D_FEATURES, *config.d_hidden), config.d_pieces) + config.d_hidden[-1] + 1
        return g + d
    g = _dense((config.latent_dim, *config.g_hidden, data_dim))
    d = _dense((data_dim, *config.d_hidden), config.d_pieces) + config.d_hidden[-1] + 1
    return g + d


def checkpoint_bytes(config: TrainConfig, image_shape: tuple[int, int, int]) -> int:
    return parameters(config, image_shape) * FLOAT_BYTES * STATE_COPIES[config.optimizer]


def check(config: TrainConfig, image_shape: tuple[int, int, int], budget: Budget) -> None:
    """Raise ConfigError naming the field to change when the job would exceed the budget."""
    count = parameters(config, image_shape)
    if count > budget.max_parameters:
        wider = "g_hidden" if _dense((config.latent_dim, *config.g_hidden)) >= count // 2 else "d_hidden"
        raise ConfigError(wider, f"the nets would have {count:,} parameters; at most {budget.max_parameters:,} "
                                 f"(max_parameters): use fewer or narrower layers")
    size = checkpoint_bytes(config, image_shape)
    if size > budget.max_checkpoint_bytes:
        raise ConfigError("optimizer", f"a checkpoint would take {size:,} bytes; at most "
                                       f"{budget.max_checkpoint_bytes:,} (max_checkpoint_bytes): use sgd or "
                                       f"narrower layers")
    for field, value, low in (("log_every", config.log_every, budget.min_log_every),
                              ("snapshot_every", config.snapshot_every, budget.min_snapshot_every),
                              ("checkpoint_seconds", config.checkpoint_seconds, budget.min_checkpoint_seconds)):
        if value < low:
            raise ConfigError(field, f"must be at least {low:g} (the server's minimum interval); got {value:g}")
