"""models/scores.py against independent computations: scipy's matrix square root, a direct O(n²) KID loop and a
brute-force nearest-neighbour search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg

from models import scores


def _features(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


def test_fd_matches_scipy_sqrtm() -> None:
    a, b = _features(0, 400, 16), _features(1, 300, 16, shift=0.3)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * cross))
    assert scores.fd(a, b) == pytest.approx(expected, rel=1e-6)
    assert scores.fd(a, a) == pytest.approx(0.0, abs=1e-9)


def _kernel(x: np.ndarray, y: np.ndarray) -> float:
    return float((x @ y / len(x) + 1.0) ** 3)


def test_kid_matches_a_direct_loop() -> None:
    a, b = _features(2, 40, 5), _features(3, 40, 5, shift=0.5)
    m = len(a)
    xx = sum(_kernel(a[i], a[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(_kernel(b[i], b[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(_kernel(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = scores.kid(a, b, subsets=3, subset_size=40, dtype=np.float64)   # every row in every subset: one value thrice
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(4)
    same_mean, _ = scores.kid(rng.normal(size=(500, 5)), rng.normal(size=(500, 5)), subsets=10, subset_size=200)
    assert abs(same_mean) < mean / 5     # unbiased: near zero for one distribution


def _brute_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x: np.ndarray) -> list[float]:
        return [sorted(float(((x[i] - x[j]) ** 2).sum()) for j in range(len(x)) if j != i)[k - 1]
                for i in range(len(x))]

    def share_inside(points: np.ndarray, centres: np.ndarray, r: list[float]) -> float:
        return float(np.mean([any(((p - c) ** 2).sum() <= r[j] for j, c in enumerate(centres)) for p in points]))

    return share_inside(fake, real, radii(real)), share_inside(real, fake, radii(fake))


def test_precision_recall_match_brute_force_knn() -> None:
    real, fake = _features(6, 60, 3), _features(7, 50, 3, shift=0.8)
    got = scores.precision_recall(real, fake, k=3, block=7)
    assert got == pytest.approx(_brute_pr(real, fake, 3))
    assert 0.0 < got[0] < 1.0 and 0.0 < got[1] < 1.0


def test_class_statistics() -> None:
    probs = np.eye(4)[[0, 0, 1, 1, 1, 3, 3, 3]]
    hist = scores.class_histogram(probs)
    assert hist.tolist() == [0.25, 0.375, 0.0, 0.375]
    reference = np.full(4, 0.25)
    assert scores.classes_covered(hist, reference) == 3
    expected_kl = sum(0.25 * np.log(0.25 / max(q, 1e-10)) for q in hist)
    assert scores.class_kl(hist, reference) == pytest.approx(expected_kl)
    assert scores.class_kl(reference, reference) == 0.0
    assert scores.label_agreement(probs, np.array([0, 1, 1, 1, 1, 3, 3, 0])) == 0.75


def test_knn_radii_match_a_full_partition_with_ties() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4, size=(900, 3)).astype(np.float32)      # many equal distances and duplicate rows
    collapsed = np.repeat(x[:3], 300, axis=0)                    # every row has hundreds of exact copies
    for rows in (x, collapsed):
        sq = ((rows[:, None, :] - rows[None, :, :]) ** 2).sum(-1)
        for k in (1, 3, 5):
            assert np.array_equal(scores.knn_radii(rows, k, block=128), np.partition(sq, k, axis=1)[:, k])


def test_feature_scores_against_a_kept_reference_match_the_direct_functions() -> None:
    real, fake = _features(9, 300, 8).astype(np.float32), _features(10, 300, 8, shift=0.4).astype(np.float32)
    kept = scores.Reference.from_arrays(scores.reference(real, len(fake)).arrays())
    got = scores.feature_scores(fake, kept)
    assert got.fd == pytest.approx(scores.fd(fake, real), rel=1e-6)
    assert (got.kid, got.kid_std) == pytest.approx(scores.kid(fake, real), rel=1e-6)
    assert (got.precision, got.recall) == (scores.precision_recall(real, fake))
    fewer = scores.feature_scores(fake[:200], kept)       # subsets of 200 rows: the kept ones do not fit
    assert (fewer.kid, fewer.kid_std) == pytest.approx(scores.kid(fake[:200], real), rel=1e-6)
