"""Sample-quality scores beside Parzen: distances between feature sets and class statistics (numpy only).

Features are rows (n, d) of a domain classifier's penultimate layer (raw points for the toys, a random
projection for images without labels). What the real (test) side contributes is a Reference, computed once and
reused for every set of samples scored against it. Distances come from blocked float32 GEMMs
(|a|² + |b|² - 2 a·b), never from (n, n, d) differences:
- fd: the Fréchet distance between Gaussians fitted to two feature sets (FID with a domain classifier in
  place of Inception-v3, whose weights cannot be fetched here).
- kid: the kernel inception distance, the unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (x·y / d + 1)³, averaged over random subsets (Bińkowski et al. 2018); kid_std is its spread.
- precision / recall: the k-nearest-neighbour manifolds of Kynkäänniemi et al. (2019), k = 3.
- class statistics from softmax outputs: the histogram of predicted classes, classes covered (at least a
  quarter of their share in the test set), the KL divergence to the test histogram, and label agreement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

PR_K = 3                 # Kynkäänniemi et al.'s k
COVERED_SHARE = 0.25     # a class counts as covered at a quarter of its test share or more
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
_KL_EPS = 1e-10          # an empty sample class contributes log(p / eps) instead of infinity
BLOCK = 1000             # rows per distance block: (BLOCK, n) float32 scratch, 40 MB at n = 10,000
_GROUPS = 100            # column groups whose minima bound each row's k-th smallest distance
_MAX_CANDIDATES = 64     # values under that bound per row past which a plain partition is faster
# The scores' BLAS calls run on one thread: OpenBLAS's threads busy-wait for each other, so on a shared machine
# one descheduled thread stalls every GEMM (FD, KID and precision/recall of 10,000 feature rows: 1.4 s on one
# thread, 3.7 s on two, at a load average of 5.8 on 2 cores).
_BLAS_THREADS = 1


def moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the rows, in float64."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a S_b)^½) of two (mean, covariance) pairs. tr (S_a S_b)^½ is the sum
    of the square roots of the eigenvalues of S_a^½ S_b S_a^½ (symmetric, same spectrum), which stays real and
    exact where a general matrix square root picks up imaginary rounding."""
    (mu_a, cov_a), (mu_b, cov_b) = a, b
    root_a = _psd_sqrt(cov_a)
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    tr_cross = float(np.sqrt(np.clip(middle, 0.0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_cross)


def fd(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to the rows of a and of b."""
    return frechet(moments(a), moments(b))


def _kernel_sum(p: np.ndarray, q: np.ndarray) -> float:
    """The sum over all pairs of the cubic kernel (p_i·q_j / d + 1)³: one GEMM, then in place on its block."""
    t = p @ q.T
    t *= 1.0 / p.shape[1]
    t += 1.0
    cube = t * t
    cube *= t
    return float(cube.sum())


def _within_mean(x: np.ndarray) -> float:
    """The mean of the cubic kernel over the pairs of distinct rows of x."""
    diagonal = float(((np.einsum("ij,ij->i", x, x, dtype=np.float64) / x.shape[1] + 1.0) ** 3).sum())
    m = len(x)
    return (_kernel_sum(x, x) - diagonal) / (m * (m - 1))


def kid_subsets(n: int, subsets: int, size: int, seed: int) -> list[np.ndarray]:
    """The row indices of each KID subset of one side (its own seed, so the test side's subsets and their
    within-set means are the same for every version and can be kept with the reference)."""
    rng = np.random.default_rng(seed)
    return [rng.choice(n, size, replace=False) for _ in range(subsets)]


def _kid_size(n_a: int, n_b: int, subset_size: int) -> int:
    return min(subset_size, n_a, n_b)


def kid_within(b: np.ndarray, subsets: int, size: int, seed: int, dtype: type = np.float32) -> np.ndarray:
    """The within-set kernel mean of each of b's subsets (what `kid` needs of the real side)."""
    y: np.ndarray = np.asarray(b, dtype=dtype)
    return np.array([_within_mean(y[idx]) for idx in kid_subsets(len(y), subsets, size, seed + 1)])


def kid(a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0, dtype: type = np.float32, b_within: np.ndarray | None = None) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over `subsets` random subsets of min(subset_size, n) rows of each.
    The kernel blocks are float32 by default (numpy's pairwise sums keep their totals to ~1e-7 relative):
    float64 GEMMs take twice as long. b_within: kid_within(b, ...) computed before (the test set's, kept per
    classifier version)."""
    x: np.ndarray = np.asarray(a, dtype=dtype)
    y: np.ndarray = np.asarray(b, dtype=dtype)
    size = _kid_size(len(x), len(y), subset_size)
    yy = kid_within(y, subsets, size, seed, dtype) if b_within is None else b_within
    values = [_within_mean(x[i]) + yy[s] - 2.0 * _kernel_sum(x[i], y[j]) / (size * size)
              for s, (i, j) in enumerate(zip(kid_subsets(len(x), subsets, size, seed),
                                             kid_subsets(len(y), subsets, size, seed + 1), strict=True))]
    return float(np.mean(values)), float(np.std(values))


def _kth_smallest(t: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest (0-based) value of each row of t (rows, n), exactly. np.partition of whole rows is the
    bulk of precision/recall's time, so: the k-th smallest of _GROUPS column-group minima bounds each row's answer
    from above, and only the few values under that bound are sorted."""
    rows, n = t.shape
    groups = min(_GROUPS, n // (k + 1))
    if groups <= k + 1:
        return np.partition(t, k, axis=1)[:, k]
    width = n // groups
    minima = t[:, :groups * width].reshape(rows, width, groups).min(axis=1)     # group g: columns g, g + groups, …
    bound = np.partition(minima, k, axis=1)[:, k]
    under = t <= bound[:, None]                   # at least k + 1 per row
    if np.count_nonzero(under) > _MAX_CANDIDATES * rows:
        return np.partition(t, k, axis=1)[:, k]   # ties everywhere (a collapsed generator's copies)
    r, c = np.nonzero(under)                      # row-major: r ascending
    values = t[r, c]
    ordered = values[np.lexsort((values, r))]
    starts = np.concatenate(([0], np.cumsum(np.bincount(r, minlength=rows))[:-1]))
    return ordered[starts + k]


def _augmented(x: np.ndarray, column: np.ndarray) -> np.ndarray:
    """[x, column]: one GEMM with a side multiplied by [y, 1] adds `column` to every product (no extra pass)."""
    return np.concatenate([x, column[:, None].astype(x.dtype)], axis=1)


def knn_radii(x: np.ndarray, k: int = PR_K, block: int = BLOCK) -> np.ndarray:
    """Squared distance of each row of x (float32 by default) to its k-th nearest other row: per block of rows,
    one GEMM gives |b|² - 2 a·b for every pair ([-2a, 1]·[b, |b|²]), then the row's |a|² is added to the k-th
    smallest."""
    norms = np.einsum("ij,ij->i", x, x)
    left, right = _augmented(-2.0 * x, np.ones(len(x))), _augmented(x, norms)
    radii = np.empty(len(x), dtype=x.dtype)
    scratch = np.empty((min(block, len(x)), len(x)), dtype=x.dtype)
    for start in range(0, len(x), block):
        rows = slice(start, start + block)
        t = np.matmul(left[rows], right.T, out=scratch[:len(left[rows])])
        radii[rows] = _kth_smallest(t, k) + norms[rows]              # index 0: the row itself
    return np.maximum(radii, 0.0, out=radii)


def _manifold_hits(real: np.ndarray, fake: np.ndarray, real_radii: np.ndarray, fake_radii: np.ndarray,
                   block: int) -> tuple[np.ndarray, np.ndarray]:
    """(whether each fake row lies in some real row's ball, whether each real row lies in some fake row's ball).
    With o_f = |f|² - r_f and o_c = |c|² - r_c, let w_fc = o_f + o_c - 2 f·c, so that |f - c|² - r_c =
    w_fc - o_f + |f|²: f is inside some real ball iff min_c w_fc <= o_f - |f|², and c inside some fake ball iff
    min_f w_fc <= o_c - |c|². One GEMM per block of fake rows gives w ([-2f, o_f, 1]·[c, 1, o_c]); its row
    minima decide precision, its column minima recall."""
    real_norms, fake_norms = np.einsum("ij,ij->i", real, real), np.einsum("ij,ij->i", fake, fake)
    real_offsets, fake_offsets = real_norms - real_radii, fake_norms - fake_radii
    left = _augmented(_augmented(-2.0 * fake, fake_offsets), np.ones(len(fake)))
    right = _augmented(_augmented(real, np.ones(len(real))), real_offsets)
    fake_in = np.empty(len(fake), dtype=bool)
    column_min = np.full(len(real), np.inf, dtype=real.dtype)
    scratch = np.empty((min(block, len(fake)), len(real)), dtype=real.dtype)
    for start in range(0, len(fake), block):
        rows = slice(start, start + block)
        w = np.matmul(left[rows], right.T, out=scratch[:len(left[rows])])
        fake_in[rows] = w.min(axis=1) <= fake_offsets[rows] - fake_norms[rows]
        np.minimum(column_min, w.min(axis=0), out=column_min)
    return fake_in, column_min <= real_offsets - real_norms


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K, block: int = BLOCK,
                     dtype: type = np.float32, real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Precision: the share of fake rows inside the real manifold (the union of each real row's ball reaching
    its k-th nearest real neighbour); recall: the share of real rows inside the fake manifold. Distances are
    float32 by default (radii and tests alike, so a row on a ball's edge is judged consistently). real_radii:
    knn_radii(real, k) computed before (the test set's, kept per classifier version)."""
    r: np.ndarray = np.asarray(real, dtype=dtype)
    f: np.ndarray = np.asarray(fake, dtype=dtype)
    radii = knn_radii(r, k, block) if real_radii is None else real_radii
    fake_in, real_in = _manifold_hits(r, f, radii, knn_radii(f, k, block), block)
    return float(fake_in.mean()), float(real_in.mean())


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """The share of rows whose most probable class is each class: (n, classes) -> (classes,) summing to 1."""
    predicted = np.asarray(probs).argmax(axis=1)
    return np.bincount(predicted, minlength=probs.shape[1]) / len(predicted)


def classes_covered(hist: np.ndarray, reference: np.ndarray, share: float = COVERED_SHARE) -> int:
    """Classes the samples hit at least `share` times as often as the reference (test set) does: measured
    against each class's test share, where models.coverage counts against an even share (the toys' modes)."""
    return int((np.asarray(hist) >= share * np.asarray(reference)).sum())


def class_kl(hist: np.ndarray, reference: np.ndarray) -> float:
    """KL(reference || hist): large when the samples miss classes the test set has."""
    p, q = np.asarray(reference, dtype=np.float64), np.asarray(hist, dtype=np.float64)
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / np.maximum(q[mask], _KL_EPS))).sum())


def label_agreement(probs: np.ndarray, asked: np.ndarray) -> float:
    """For a conditional generator: the share of samples classified as the label they were asked for."""
    return float((np.asarray(probs).argmax(axis=1) == np.asarray(asked)).mean())


@dataclass(frozen=True)
class FeatureScores:
    fd: float
    kid: float
    kid_std: float
    precision: float
    recall: float

    def to_json(self) -> dict[str, float]:
        return {"fd": self.fd, "kid": self.kid, "kid_std": self.kid_std, "precision": self.precision,
                "recall": self.recall}


@dataclass(frozen=True)
class Reference:
    """What the distances need of the real (test) features, the same for every version scored against them:
    computed once per classifier version and kept (service/evaluation/quality.py caches it on disk)."""
    features: np.ndarray     # (n, d) float32
    mean: np.ndarray         # (d,) float64
    cov: np.ndarray          # (d, d) float64
    radii: np.ndarray        # (n,) squared distance to the PR_K-th nearest other row
    kid_within: np.ndarray   # (KID_SUBSETS,) within-subset kernel means of subsets of kid_size rows
    kid_size: int
    seed: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {"features": self.features, "mean": self.mean, "cov": self.cov, "radii": self.radii,
                "kid_within": self.kid_within, "kid_size": np.array(self.kid_size), "seed": np.array(self.seed)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Reference:
        return cls(**{k: arrays[k] for k in ("features", "mean", "cov", "radii", "kid_within")},
                   kid_size=int(arrays["kid_size"]), seed=int(arrays["seed"]))


def reference(real: np.ndarray, n_fake: int, seed: int = 0) -> Reference:
    """The Reference of `real` for samples of n_fake rows."""
    x = np.asarray(real, dtype=np.float32)
    size = _kid_size(n_fake, len(x), KID_SUBSET_SIZE)
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        mean, cov = moments(x)
        return Reference(features=x, mean=mean, cov=cov, radii=knn_radii(x), kid_size=size, seed=seed,
                         kid_within=kid_within(x, KID_SUBSETS, size, seed))


def feature_scores(fake: np.ndarray, real: Reference, timings: dict[str, float] | None = None) -> FeatureScores:
    """All the distances between the sample features and the real (test) features; timings (if given)
    receives the seconds of each."""
    x = np.asarray(fake, dtype=np.float32)
    same_size = real.kid_size == _kid_size(len(x), len(real.features), KID_SUBSET_SIZE)
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        t0 = time.perf_counter()
        distance = frechet(moments(x), (real.mean, real.cov))
        t1 = time.perf_counter()
        mean, std = kid(x, real.features, seed=real.seed, b_within=real.kid_within if same_size else None)
        t2 = time.perf_counter()
        precision, recall = precision_recall(real.features, x, real_radii=real.radii)
    if timings is not None:
        timings.update(fd=t1 - t0, kid=t2 - t1, precision_recall=time.perf_counter() - t2)
    return FeatureScores(fd=distance, kid=mean, kid_std=std, precision=precision, recall=recall)


def class_scores(probs: np.ndarray, reference_hist: np.ndarray) -> dict[str, object]:
    hist = class_histogram(probs)
    return {"class_histogram": [float(v) for v in hist], "classes_covered": classes_covered(hist, reference_hist),
            "class_kl": class_kl(hist, reference_hist), "n_classes": len(hist)}


__all__ = ["FeatureScores", "Reference", "class_histogram", "class_kl", "class_scores", "classes_covered", "fd",
           "feature_scores", "frechet", "kid", "kid_within", "knn_radii", "label_agreement", "moments",
           "precision_recall", "reference"]
