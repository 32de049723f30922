"""The data orders: a shuffled pass holds every row once; with replacement, i.i.d. draws; state resumes."""

from __future__ import annotations

import pytest
import torch

from worker.training.minibatches import Minibatches


def draws(batches: Minibatches, count: int) -> torch.Tensor:
    return torch.cat([batches.next().clone() for _ in range(count)])


@pytest.mark.parametrize("n,m", [(50, 10), (23, 10), (3, 10)])
def test_each_shuffled_pass_holds_every_row_once(n: int, m: int) -> None:
    batches = Minibatches("shuffled", n, m, torch.Generator().manual_seed(0), torch.device("cpu"))
    passes = 4
    seen = draws(batches, passes * n // m + 1)                     # (>= passes * n,) indices, in order
    assert all(len(batches.next()) == m for _ in range(3))
    for p in range(passes):                                       # a minibatch may span two passes
        assert sorted(seen[p * n:(p + 1) * n].tolist()) == list(range(n))
    # Each pass is a new permutation, not the first one again.
    assert not torch.equal(seen[:n], seen[n:2 * n]) or n < 5


def test_with_replacement_draws_iid_indices() -> None:
    batches = Minibatches("with-replacement", 50, 100, torch.Generator().manual_seed(0), torch.device("cpu"))
    seen = draws(batches, 20)
    assert seen.min() >= 0 and seen.max() < 50
    # 100 draws from 50 rows always repeat some: a permutation would not.
    assert len(set(batches.next().tolist())) < 100


@pytest.mark.parametrize("order", ["shuffled", "with-replacement"])
def test_state_dict_continues_the_same_rows(order: str) -> None:
    rng = torch.Generator().manual_seed(3)
    first = Minibatches(order, 23, 10, rng, torch.device("cpu"))
    draws(first, 3)                                               # mid-pass (30 of 23 + 23 rows)
    state, rng_state = first.state_dict(), rng.get_state()
    expected = draws(first, 7)
    rng2 = torch.Generator()
    rng2.set_state(rng_state)
    second = Minibatches(order, 23, 10, rng2, torch.device("cpu"))
    second.load_state_dict(state)
    assert torch.equal(draws(second, 7), expected)


def test_unknown_order_is_refused() -> None:
    with pytest.raises(ValueError, match="data order"):
        Minibatches("sorted", 10, 2, torch.Generator(), torch.device("cpu"))  # type: ignore[arg-type]
