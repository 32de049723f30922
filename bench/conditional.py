"""`ganserve bench conditional`: does a conditional G draw the class it is asked for (the paper's section 7.1)?

Trains a conditional generator on MNIST (the preset given, with conditional = true), then asks it for
`--per-class` samples of every class and reports the share that a classifier trained on the real training set
labels as asked. The classifier (`train_classifier`: a small MLP, a few epochs of Adam) lives here until the
server has a scoring classifier of its own; its accuracy on the real test set is reported beside the share, so
the share can be read against it. The time, iterations and CPU are in the JSON line (--json).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.train import cpu_name
from models import datasets
from models.config import resolve
from models.nets.common import derived_generator, noise, one_hot
from service.settings import get_settings
from worker.training.hooks import QuietHooks
from worker.training.loop import train


def train_classifier(x: np.ndarray, y: np.ndarray, epochs: int = 3, seed: int = 0) -> nn.Module:
    """A 784-512-10 ReLU MLP (any D) trained on (x (N, D), y (N,)) with Adam 1e-3, batch 128; eval mode."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(x.shape[1], 512), nn.ReLU(), nn.Linear(512, int(y.max()) + 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(np.array(x, dtype=np.float32)), torch.from_numpy(np.asarray(y, dtype=np.int64))
    rng = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(xt), generator=rng).split(128):
            loss = nn.functional.cross_entropy(net(xt[rows]), yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(classifier: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """The share of rows of x the classifier labels as y."""
    predicted = classifier(torch.as_tensor(np.asarray(x, dtype=np.float32))).argmax(1)
    return float((predicted == torch.as_tensor(np.asarray(y))).float().mean())


@torch.no_grad()
def conditional_samples(generator: nn.Module, latent_dim: int, scale: float, classes: int, per_class: int,
                        seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (classes * per_class, D), asked class of each row): per_class fixed z's, each given every class."""
    z = noise((per_class, latent_dim), scale, derived_generator(seed, 5)).repeat(classes, 1)
    asked = torch.arange(classes).repeat_interleave(per_class)
    return generator(z, one_hot(asked, classes)), asked


def run(preset: str, iterations: int | None, per_class: int, seed: int, **overrides: Any) -> dict[str, Any]:
    data_dir = get_settings().resolved_data_dir
    splits = datasets.load("mnist", data_dir, fetch_missing=True)
    train_y, _, test_y = datasets.load_labels("mnist", data_dir)
    t0 = time.perf_counter()
    classifier = train_classifier(np.asarray(splits.train), train_y)
    classifier_seconds = time.perf_counter() - t0
    extra = {"iterations": iterations} if iterations else {}
    config = resolve(preset, "mnist", conditional=True, seed=seed, **extra, **overrides)
    t0 = time.perf_counter()
    outcome = train(config, np.asarray(splits.train), QuietHooks(), labels=train_y, device="cpu")
    seconds = time.perf_counter() - t0
    x, asked = conditional_samples(outcome.generator, config.latent_dim, config.noise_scale, config.num_classes,
                                   per_class)
    assert splits.test is not None and test_y is not None
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "preset": preset,
            "iterations": outcome.iterations, "train_seconds": round(seconds, 1),
            "classifier_test_accuracy": accuracy(classifier, splits.test, test_y),
            "classifier_seconds": round(classifier_seconds, 1), "samples": len(x),
            "conditional_accuracy": accuracy(classifier, x, asked), "config": config.to_dict()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganserve bench conditional", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--iterations", type=int, default=None, help="default: the preset's")
    p.add_argument("--per-class", type=int, default=100, help="samples asked of each class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")
    args = p.parse_args(list(argv) if argv is not None else None)
    r = run(args.preset, args.iterations, args.per_class, args.seed)
    print(f"conditional accuracy {r['conditional_accuracy']:.3f} on {r['samples']} samples after "
          f"{r['iterations']} iterations ({r['train_seconds']} s on {r['cpu']}, {r['threads']} threads); the "
          f"classifier's real test accuracy {r['classifier_test_accuracy']:.3f}")
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
