"""Registered model versions for tests that need one (sampling, gallery, Parzen), without a training run.

`register_model` stores a small random MLP generator through the same tables a training job writes to, in
a fraction of a second. Use the real stack (POST /jobs) when the training path itself is under test.
"""

from __future__ import annotations

import math
from typing import Any

from bench.serve_model import Registered, mlp_generator_onnx, register_version

__all__ = ["Registered", "mlp_generator_onnx", "register_model"]


def register_model(name: str, *, latent_dim: int = 16, hidden: tuple[int, ...] = (32,),
                   image_shape: tuple[int, int, int] = (1, 28, 28), dataset: str = "mnist", seed: int = 0,
                   noise: dict[str, Any] | None = None, onnx_bytes: bytes | None = None,
                   config: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> Registered:
    """The next version of `name`: a random generator latent_dim -> hidden -> prod(image_shape) in [0, 1]."""
    if onnx_bytes is None:
        # init_range 0.5: small random nets whose samples visibly differ from seed to seed.
        onnx_bytes = mlp_generator_onnx(latent_dim, hidden, math.prod(image_shape), seed=seed, init_range=0.5)
    return register_version(name, onnx_bytes, latent_dim=latent_dim, noise=noise, image_shape=image_shape,
                            dataset=dataset, config=config, metrics=metrics)
