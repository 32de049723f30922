"""Training the per-dataset classifier (models/nets/classifier.py): Adam on the training split with a one-cycle
learning rate (up for the first 30 % of the steps, then annealed to near zero, so the last epochs settle instead
of bouncing) and each image shifted by up to MAX_SHIFT pixels (digits are not all centred alike: the shifts are
what lifts the small net past 99 % on MNIST); the epoch that classifies a held-out tail of the training split best
is kept."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.nets.classifier import Classifier

BATCH = 128
PEAK_LR = 3e-3
MAX_SHIFT = 2
PREDICT_BATCH = 2000


@dataclass
class Fitted:
    net: Classifier                 # eval mode, CPU, the best epoch's weights
    best_epoch: int
    held_out_accuracy: list[float]  # per epoch
    seconds: float


def accuracy(net: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    net.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), PREDICT_BATCH):
            _, logits = net(torch.from_numpy(np.ascontiguousarray(x[i:i + PREDICT_BATCH])))
            hits += int((logits.argmax(1).numpy() == y[i:i + PREDICT_BATCH]).sum())
    return hits / max(len(x), 1)


def shifted(x: torch.Tensor, image_shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Each (flat) image of x (B, C*H*W) moved by its own random offset of up to MAX_SHIFT pixels along each axis,
    zeros filling in."""
    c, h, w = image_shape
    b, s = len(x), MAX_SHIFT
    padded = F.pad(x.view(b, c, h, w), (s, s, s, s))                              # (B, C, H+2s, W+2s)
    rows = torch.randint(0, 2 * s + 1, (b, 1), generator=gen) + torch.arange(h)  # (B, H)
    cols = torch.randint(0, 2 * s + 1, (b, 1), generator=gen) + torch.arange(w)  # (B, W)
    out = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]                  # (B, C, H, W)
    return out.reshape(b, -1)


def fit(x: np.ndarray, y: np.ndarray, image_shape: tuple[int, ...], n_classes: int, epochs: int, held_out: int,
        seed: int, progress: Callable[[float], None] = lambda p: None) -> Fitted:
    """Train on x[:-held_out] (N, D) float32 with labels y (N,), keep the best epoch on x[-held_out:]."""
    started = time.monotonic()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    fit_x, fit_y, hold_x, hold_y = x[:-held_out], y[:-held_out], x[-held_out:], y[-held_out:]
    net = Classifier(image_shape, n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=PEAK_LR)
    steps = -(-len(fit_x) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=PEAK_LR, total_steps=epochs * steps)
    xs, ys = torch.from_numpy(np.array(fit_x, dtype=np.float32)), torch.from_numpy(fit_y.astype(np.int64))
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    scores: list[float] = []
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.from_numpy(rng.permutation(len(fit_x)))
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            _, logits = net(shifted(xs[idx], image_shape, gen))
            loss = F.cross_entropy(logits, ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
        scores.append(accuracy(net, hold_x, hold_y))
        if best is None or scores[-1] > best[0]:
            best = (scores[-1], epoch, copy.deepcopy(net.state_dict()))
        progress(epoch / epochs)
    assert best is not None
    net.load_state_dict(best[2])
    return Fitted(net=net.eval(), best_epoch=best[1], held_out_accuracy=scores, seconds=time.monotonic() - started)


__all__ = ["Fitted", "accuracy", "fit", "shifted"]
