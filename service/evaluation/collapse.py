"""Spotting a lost game in a training job's metrics, so that nobody waits hours for a dead run.

With the paper's MNIST recipe some seeds lose within a few thousand iterations (README, "Seeds matter"): D
rejects every sample, mean D(G(z)) stays near 0, and G's gradient through D's saturated output carries almost
no signal, so the samples stop improving. A job whose mean D(G(z)) has stayed below THRESHOLD over the last
WINDOW iterations gets a warning on GET /jobs/{id} and in the gallery. It is advice, not an action: the job
keeps running until it is cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.db.tables import Job
from service.jobs import store

THRESHOLD = 0.01        # mean D(G(z)) of a logging interval
WINDOW = 1000           # iterations the game must have stayed lost
LOOKBACK = 5000         # how far back the warning looks for the start of the streak


def diagnose(rows: Sequence[dict[str, float]]) -> str | None:
    """A warning for people, or None. rows: the job's recent metrics rows, oldest first."""
    if not rows:
        return None
    last = rows[-1]["iteration"]
    streak = 0
    while streak < len(rows) and rows[-1 - streak].get("d_fake", 1.0) < THRESHOLD:
        streak += 1
    if streak == 0:
        return None
    since = rows[-streak]["iteration"]
    start = rows[-streak - 1]["iteration"] if streak < len(rows) else 0.0   # the last interval that was fine
    if last - start < WINDOW:
        return None
    return (f"the discriminator has won: mean D(G(z)) has stayed below {THRESHOLD} since iteration {since:,.0f}, "
            f"so G gets almost no gradient and its samples will not improve; cancel the job and start another "
            f"seed")


BF16_FALLBACK = ("bf16 was requested, but the worker that ran this job has no native bf16 (avx512_bf16 or AMX on a "
                 "CPU, compute capability 8.0 on a GPU), so it trained in fp32")


def warning(job: Job) -> str | None:
    """Advice on a training job from its recent metrics, or None: a lost game, and bf16 the worker could not
    honour (the trainer marks every metrics row of such a run with bf16_fallback)."""
    if job.kind != "train" or job.iteration <= 0:
        return None
    rows = store.metrics(job.id, max(-1, job.iteration - LOOKBACK))
    notes = [diagnose(rows), BF16_FALLBACK if rows and rows[-1].get("bf16_fallback") else None]
    return "; ".join(note for note in notes if note) or None


__all__ = ["BF16_FALLBACK", "LOOKBACK", "THRESHOLD", "WINDOW", "diagnose", "warning"]
