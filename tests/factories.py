"""Registered model versions for tests that need one (sampling, gallery, Parzen), without a training run.

`register_model` stores a small random MLP generator through the same tables a training job writes to, in
a fraction of a second; `register_exported` stores what worker/export.py makes of a (briefly trained) config,
conditional or with an encoder. Use the real stack (POST /jobs) when the training path itself is under test.
"""

from __future__ import annotations

import math
from typing import Any

from bench.serve_model import Registered, mlp_generator_onnx, register_version

__all__ = ["Registered", "mlp_generator_onnx", "register_exported", "register_model", "tiny_config"]


def tiny_config(**overrides: Any) -> Any:
    """The quick preset shrunk to a few hundred parameters a layer (models.config.TrainConfig)."""
    from models.config import resolve

    return resolve("quick", "mnist", **{"latent_dim": 8, "g_hidden": [32], "d_hidden": [16], "e_hidden": [64],
                                        "iterations": 5, "encoder_iterations": 300, "batch_size": 32,
                                        **overrides})


def register_exported(name: str, config: Any) -> Registered:
    """The next version of `name`: G of `config` (untrained, init range 0.5 so samples differ visibly) and,
    with config.encoder, E trained on its samples; exported and checked as a training job does."""
    import torch

    from models.nets import build_generator
    from worker.export import export_encoder, export_generator
    from worker.training.encoder import train_encoder

    g = build_generator(config.replace(g_init_range=0.5), None, 784).eval()
    exported = export_generator(g, config, (1, 28, 28), {})
    encoder = None
    if config.encoder:
        e = train_encoder(g, config, 784, torch.device("cpu"))
        encoder = export_encoder(e, g, config, (1, 28, 28), {}).onnx
    return register_version(name, exported.onnx, latent_dim=config.latent_dim, image_shape=(1, 28, 28),
                            dataset=config.dataset, config=config.to_dict(), encoder_onnx=encoder)


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
