"""Which training rows each D-step sees (TrainConfig.data_order), for both trainers.

"shuffled" is pylearn2's default (SGD's train_iteration_mode 'shuffled_sequential'), so the authors' runs
used it: every pass over the training set is a fresh permutation, read m rows at a time, each row once per
pass. A minibatch that runs past the end of a permutation continues in the next one, so every minibatch has
m rows even when N is not a multiple of m (MNIST's 50,000 / 100 is).
"with-replacement" draws m indices i.i.d. uniform over the set (Algorithm 1's "sample a minibatch").

Both draw from the run's generator, and the permutation and the position in it go into every checkpoint
(state_dict), so a resumed run sees the same rows as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.config import DataOrder


class Minibatches:
    """Row indices of the training set, m at a time, in the order `order` says."""

    def __init__(self, order: DataOrder, n: int, m: int, rng: torch.Generator, device: torch.device) -> None:
        if order not in ("shuffled", "with-replacement"):
            raise ValueError(f"unknown data order {order!r}")
        self.order, self.n, self.m, self.rng = order, n, m, rng
        self.perm = torch.empty(n if order == "shuffled" else 0, dtype=torch.long, device=device)
        self.pos = n                                 # the first draw starts a permutation
        self.out = torch.empty(m, dtype=torch.long, device=device)   # a minibatch spanning two passes

    def next(self) -> Tensor:
        """(m,) int64 indices into the training set, on its device. Valid until the next call."""
        if self.order == "with-replacement":
            return torch.randint(self.n, (self.m,), generator=self.rng, device=self.out.device)
        if self.pos + self.m <= self.n:               # the common case: a slice of the permutation
            self.pos += self.m
            return self.perm[self.pos - self.m:self.pos]
        filled = 0
        while filled < self.m:
            if self.pos == self.n:
                torch.randperm(self.n, generator=self.rng, out=self.perm)
                self.pos = 0
            take = min(self.m - filled, self.n - self.pos)
            self.out[filled:filled + take] = self.perm[self.pos:self.pos + take]
            filled += take
            self.pos += take
        return self.out

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm.to("cpu", copy=True), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.perm.copy_(state["perm"])
        self.pos = int(state["pos"])


__all__ = ["Minibatches"]
