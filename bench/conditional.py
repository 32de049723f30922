"""`ganserve bench conditional`: does a conditional G draw the class it is asked for (the paper's section 7.1),
and does its encoder E invert it (section 7.2)?

Trains a conditional generator on MNIST (the preset given, with conditional = true), then asks it for
`--per-class` samples of every class and reports the share that a classifier trained on the real training set
labels as asked. The classifier is the sample-quality scores' (models/nets/classifier.py), trained with the
classifier job's protocol and cached as `ganserve bench scores` does (bench/scores.py: classifier_blob); its
accuracy on the real test set is reported beside the share, so the share can be read against it.

Then (unless --no-encoder) it trains E as a job with "encoder": true does (worker/training/encoder.py) and
reports mean squared pixel errors of G(E(x), c) against x, on G's own samples and on the real test images (given
their true class), each beside a baseline: x against G of a random z (same class). The nearest-neighbour check
gives each reconstruction's squared distance to its nearest training image, next to the test image's own: a
reconstruction that copied a training image would sit at distance ~0. With --encoder-data-iterations N, the same
figures for that E after N more updates on real training images through the frozen G (the optional second
phase, encoder_data_iterations), under "refined". The time, iterations and CPU are in the JSON line (--json).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.machine import cpu_name
from bench.scores import classifier_blob
from models import datasets
from models.config import TrainConfig, resolve
from models.nets.common import derived_generator, noise, one_hot
from service.evaluation.quality import Features
from service.serving.neighbors import nearest
from service.settings import get_settings
from worker.training.encoder import refine_on_data, train_encoder
from worker.training.hooks import QuietHooks
from worker.training.loop import train

ENCODER_ROWS = 1000  # test images and G samples the encoder is measured on


class ProgressHooks(QuietHooks):
    """Prints each metrics row's iteration, losses and rate, so a long run shows it is alive."""

    def on_metrics(self, row: dict[str, float]) -> None:
        print(f"  iteration {int(row['iteration'])}: d_loss {row['d_loss']:.3f} g_loss {row['g_loss']:.3f} "
              f"{row['it_per_s']:.1f} it/s", flush=True)


def accuracy(classifier: Features, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """The share of rows of x (n, D) the classifier labels as y (n,)."""
    _, probs = classifier(np.asarray(x, dtype=np.float32))
    return float((probs.argmax(1) == np.asarray(y)).mean())


@torch.no_grad()
def conditional_samples(generator: nn.Module, latent_dim: int, scale: float, classes: int, per_class: int,
                        seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (classes * per_class, D), asked class of each row): per_class fixed z's, each given every class."""
    z = noise((per_class, latent_dim), scale, derived_generator(seed, 5)).repeat(classes, 1)
    asked = torch.arange(classes).repeat_interleave(per_class)
    return generator(z, one_hot(asked, classes)), asked


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean())


@torch.no_grad()
def encoder_errors(g: nn.Module, e: nn.Module, latent_dim: int, scale: float, classes: int, test: np.ndarray,
                   test_y: np.ndarray, dataset: str) -> dict[str, float]:
    """Reconstruction errors of G(E(x), c) (mean squared, per pixel) and the nearest-neighbour check."""
    rows = min(ENCODER_ROWS, len(test))
    c = one_hot(torch.as_tensor(np.asarray(test_y[:rows])), classes)
    x = torch.as_tensor(np.asarray(test[:rows], dtype=np.float32))
    z0 = noise((rows, latent_dim), scale, derived_generator(11, 5))
    z1 = noise((rows, latent_dim), scale, derived_generator(12, 5))
    fake = g(z0, c)
    recon_fake, recon_real, random = g(e(fake, c), c), g(e(x, c), c), g(z1, c)
    found, own = nearest(recon_real.numpy(), dataset), nearest(x.numpy(), dataset)
    return {"encoder_rows": rows,
            "recon_mse_own_samples": mse(recon_fake, fake), "random_z_mse_own_samples": mse(random, fake),
            "recon_mse_test": mse(recon_real, x), "random_z_mse_test": mse(random, x),
            "z_mse_own_samples": mse(e(fake, c), z0), "prior_z_var": scale ** 2 / 3.0,
            "recon_nn_sq_dist_median": float(np.median(found.distance)),
            "recon_nn_sq_dist_min": float(found.distance.min()),
            "test_nn_sq_dist_median": float(np.median(own.distance)),
            "recon_to_test_sq_dist_median": float(np.median(((recon_real - x) ** 2).sum(1).numpy()))}


def encoder_figures(g: nn.Module, config: TrainConfig, splits: datasets.Splits, train_y: np.ndarray,
                    test_y: np.ndarray, data_iterations: int) -> dict[str, Any]:
    """E trained on (G(z), z) pairs as a job trains it, its errors (encoder_errors) at the top level; with
    data_iterations, the same E after that many updates of the second phase on real training images, its
    errors under "refined"."""
    t0 = time.perf_counter()
    e = train_encoder(g, config.replace(encoder_data_iterations=0), splits.train.shape[1], torch.device("cpu"))
    result: dict[str, Any] = {"encoder_seconds": round(time.perf_counter() - t0, 1)}
    measure = functools.partial(encoder_errors, g, latent_dim=config.latent_dim, scale=config.noise_scale,
                                classes=config.num_classes, test=np.asarray(splits.test), test_y=test_y,
                                dataset="mnist")
    result.update(measure(e=e))
    if data_iterations:
        t0 = time.perf_counter()
        refined = copy.deepcopy(e).train().requires_grad_(True)
        refine_on_data(refined, g, config.replace(encoder_data_iterations=data_iterations),
                       np.asarray(splits.train), train_y, torch.Generator().manual_seed(config.seed + 2))
        refined.eval().requires_grad_(False)
        result["refined"] = {"encoder_data_iterations": data_iterations,
                             "seconds": round(time.perf_counter() - t0, 1), **measure(e=refined)}
    return result


def run(preset: str, iterations: int | None, per_class: int, seed: int, with_encoder: bool = True,
        classifier_epochs: int | None = None, data_iterations: int = 0, **overrides: Any) -> dict[str, Any]:
    settings = get_settings()
    data_dir = settings.resolved_data_dir
    splits = datasets.load("mnist", data_dir, fetch_missing=True)
    train_y, _, test_y = datasets.load_labels("mnist", data_dir)
    epochs = classifier_epochs or settings.classifier_epochs
    blob, about = classifier_blob(data_dir, settings.resolved_cache_dir / f"bench-classifier-mnist-e{epochs}.onnx",
                                  epochs)
    classifier = Features(blob)
    extra = {"iterations": iterations} if iterations else {}
    config = resolve(preset, "mnist", conditional=True, seed=seed, **extra, **overrides)
    t0 = time.perf_counter()
    outcome = train(config, np.asarray(splits.train), ProgressHooks(), labels=train_y, device="cpu")
    seconds = time.perf_counter() - t0
    x, asked = conditional_samples(outcome.generator, config.latent_dim, config.noise_scale, config.num_classes,
                                   per_class)
    assert splits.test is not None and test_y is not None
    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "preset": preset,
              "iterations": outcome.iterations, "train_seconds": round(seconds, 1),
              "classifier_test_accuracy": about["test_accuracy"], "classifier": about, "samples": len(x),
              "conditional_accuracy": accuracy(classifier, x, asked), "config": config.to_dict()}
    print(f"conditional accuracy {result['conditional_accuracy']:.3f}", flush=True)
    if with_encoder:
        result.update(encoder_figures(outcome.generator, config, splits, train_y, test_y, data_iterations))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench conditional", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="conditional-mnist")
    p.add_argument("--iterations", type=int, default=None, help="default: the preset's")
    p.add_argument("--per-class", type=int, default=100, help="samples asked of each class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classifier-epochs", type=int, default=None,
                   help="the classifier's epochs when it is trained (default: the classifier job's setting)")
    p.add_argument("--no-encoder", action="store_true", help="skip training and measuring the encoder")
    p.add_argument("--encoder-iterations", type=int, default=None, help="default: the config's")
    p.add_argument("--encoder-data-iterations", type=int, default=0,
                   help="also measure E after this many updates on real images through the frozen G")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    extra = {"encoder_iterations": args.encoder_iterations} if args.encoder_iterations else {}
    r = run(args.preset, args.iterations, args.per_class, args.seed, with_encoder=not args.no_encoder,
            classifier_epochs=args.classifier_epochs, data_iterations=args.encoder_data_iterations, **extra)
    print(f"conditional accuracy {r['conditional_accuracy']:.3f} on {r['samples']} samples after "
          f"{r['iterations']} iterations ({r['train_seconds']} s on {r['cpu']}, {r['threads']} threads); the "
          f"classifier's real test accuracy {r['classifier_test_accuracy']:.3f}")
    if "recon_mse_test" in r:
        print(f"encoder: G(E(x)) mean squared pixel error {r['recon_mse_own_samples']:.4f} on G's samples (random z: "
              f"{r['random_z_mse_own_samples']:.4f}), {r['recon_mse_test']:.4f} on test images (random z: "
              f"{r['random_z_mse_test']:.4f}); reconstructions' nearest training image at median squared distance "
              f"{r['recon_nn_sq_dist_median']:.1f} (min {r['recon_nn_sq_dist_min']:.1f}; test images' own: "
              f"{r['test_nn_sq_dist_median']:.1f})")
    if "refined" in r:
        f = r["refined"]
        print(f"after {f['encoder_data_iterations']} updates on real images: {f['recon_mse_own_samples']:.4f} on G's "
              f"samples, {f['recon_mse_test']:.4f} on test images; nearest training image at median "
              f"{f['recon_nn_sq_dist_median']:.1f} (min {f['recon_nn_sq_dist_min']:.1f})")
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
