"""on_lost "restart": the collapse detector a training job watches, and the next unused seed it restarts with.
(A real lost game takes thousands of iterations; the restart itself is exercised by these pieces' callers in
worker/train_job.py.)"""

from __future__ import annotations

import pytest

from service.evaluation.collapse import THRESHOLD, WINDOW
from worker.train_job import GameLost, LostWatch, next_seed


def _row(iteration: int, d_fake: float) -> dict[str, float]:
    return {"iteration": float(iteration), "d_fake": d_fake}


def test_the_watch_fires_after_the_window_of_a_lost_game() -> None:
    watch = LostWatch(log_every=100)
    for it in range(100, 1100, 100):
        watch(_row(it, 0.3))                                    # a live game: nothing
    lost_from = 1100
    with pytest.raises(GameLost) as raised:
        for it in range(lost_from, lost_from + WINDOW + 500, 100):
            watch(_row(it, THRESHOLD / 10))
    assert raised.value.row["iteration"] >= lost_from + WINDOW - 100
    assert "discriminator has won" in str(raised.value)


def test_a_recovering_game_never_fires() -> None:
    watch = LostWatch(log_every=100)
    for it in range(100, 5000, 100):
        watch(_row(it, THRESHOLD / 10 if (it // 500) % 2 else 0.2))   # lost for 500 iterations at most


def test_next_seed_skips_every_seed_taken() -> None:
    assert next_seed(0, {0}) == 1
    assert next_seed(3, {3, 4, 5, 7}) == 6
    assert next_seed(1, {0, 1, 2, 3}) == 4                      # a sweep's other members' seeds are taken
