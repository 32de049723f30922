"""Sample-quality scores beside Parzen: distances between feature sets and class statistics (numpy only).

Features are rows (n, d) of a domain classifier's penultimate layer (or raw points for the toys):
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

PR_K = 3                 # Kynkäänniemi et al.'s k
COVERED_SHARE = 0.25     # a class counts as covered at a quarter of its test share or more
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
_KL_EPS = 1e-10          # an empty sample class contributes log(p / eps) instead of infinity


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def fd(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||² + tr(S_a + S_b - 2 (S_a S_b)^½). tr (S_a S_b)^½ is computed as the sum of the square
    roots of the eigenvalues of S_a^½ S_b S_a^½ (symmetric, same spectrum), which stays real and exact where a
    general matrix square root picks up imaginary rounding."""
    mu_a, cov_a = _moments(a)
    mu_b, cov_b = _moments(b)
    root_a = _psd_sqrt(cov_a)
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    tr_cross = float(np.sqrt(np.clip(middle, 0.0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_cross)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def gram(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        g = p @ q.T
        g /= d
        g += 1.0
        return g * g * g

    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum(dtype=np.float64) - np.trace(kxx, dtype=np.float64)) / (m * (m - 1))
                 + (kyy.sum(dtype=np.float64) - np.trace(kyy, dtype=np.float64)) / (n * (n - 1))
                 - 2.0 * kxy.mean(dtype=np.float64))


def kid(a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0, dtype: type = np.float32) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD² over `subsets` random subsets of min(subset_size, n) rows of each.
    The kernel matrices are float32 by default (sums in float64): float64 GEMMs take twice as long."""
    x, y = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    size = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = [_mmd2_unbiased(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances in the inputs' dtype, clipped at 0."""
    sq = a @ b.T                      # in place from here: these blocks are the bulk of the memory traffic
    sq *= -2.0
    sq += (a * a).sum(1)[:, None]
    sq += (b * b).sum(1)[None, :]
    return np.maximum(sq, 0.0, out=sq)


def _knn_radii(x: np.ndarray, k: int, block: int) -> np.ndarray:
    """Squared distance of each row of x to its k-th nearest other row."""
    radii = np.empty(len(x))
    for start in range(0, len(x), block):
        sq = _sq_distances(x[start:start + block], x)
        radii[start:start + block] = np.partition(sq, k, axis=1)[:, k]     # column 0 is the row itself
    return radii


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block: int) -> np.ndarray:
    """Whether each point lies within some centre's k-NN ball."""
    hit = np.empty(len(points), dtype=bool)
    for start in range(0, len(points), block):
        sq = _sq_distances(points[start:start + block], centres)
        hit[start:start + block] = (sq <= radii[None, :]).any(axis=1)
    return hit


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K, block: int = 1000,
                     dtype: type = np.float32) -> tuple[float, float]:
    """Precision: the share of fake rows inside the real manifold (the union of each real row's ball reaching
    its k-th nearest real neighbour); recall: the share of real rows inside the fake manifold. Distances are
    float32 by default (radii and tests alike, so a row on a ball's edge is judged consistently)."""
    r, f = np.asarray(real, dtype=dtype), np.asarray(fake, dtype=dtype)
    precision = _inside(f, r, _knn_radii(r, k, block), block).mean()
    recall = _inside(r, f, _knn_radii(f, k, block), block).mean()
    return float(precision), float(recall)


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """The share of rows whose most probable class is each class: (n, classes) -> (classes,) summing to 1."""
    predicted = np.asarray(probs).argmax(axis=1)
    return np.bincount(predicted, minlength=probs.shape[1]) / len(predicted)


def classes_covered(hist: np.ndarray, reference: np.ndarray, share: float = COVERED_SHARE) -> int:
    """Classes the samples hit at least `share` times as often as the reference does."""
    return int((np.asarray(hist) >= share * np.asarray(reference)).sum())


def class_kl(hist: np.ndarray, reference: np.ndarray) -> float:
    """KL(reference || hist): large when the samples miss classes the test set has."""
    p, q = np.asarray(reference, dtype=np.float64), np.asarray(hist, dtype=np.float64)
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / np.maximum(q[mask], _KL_EPS))).sum())


def label_agreement(probs: np.ndarray, asked: np.ndarray) -> float:
    """For a conditional generator: the share of samples classified as the label they were asked for."""
    return float((np.asarray(probs).argmax(axis=1) == np.asarray(asked)).mean())


def modes_covered(points: np.ndarray, means: np.ndarray, std: float, share: float = COVERED_SHARE) -> int:
    """Toy mixtures: modes that receive at least `share` of their equal share of the points within 3 std."""
    sq = _sq_distances(np.asarray(points, dtype=np.float64), np.asarray(means, dtype=np.float64))
    nearest, within = sq.argmin(axis=1), sq.min(axis=1) <= (3.0 * std) ** 2
    counts = np.bincount(nearest[within], minlength=len(means))
    return int((counts >= share * len(points) / len(means)).sum())


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


def feature_scores(fake: np.ndarray, real: np.ndarray, seed: int = 0,
                   timings: dict[str, float] | None = None) -> FeatureScores:
    """All the distances between the sample features and the real (test) features; timings (if given)
    receives the seconds of each."""
    t0 = time.perf_counter()
    distance = fd(fake, real)
    t1 = time.perf_counter()
    mean, std = kid(fake, real, seed=seed)
    t2 = time.perf_counter()
    precision, recall = precision_recall(real, fake)
    if timings is not None:
        timings.update(fd=t1 - t0, kid=t2 - t1, precision_recall=time.perf_counter() - t2)
    return FeatureScores(fd=distance, kid=mean, kid_std=std, precision=precision, recall=recall)


def class_scores(probs: np.ndarray, reference_hist: np.ndarray) -> dict[str, object]:
    hist = class_histogram(probs)
    return {"class_histogram": [float(v) for v in hist], "classes_covered": classes_covered(hist, reference_hist),
            "class_kl": class_kl(hist, reference_hist), "n_classes": len(hist)}


__all__ = ["FeatureScores", "class_histogram", "class_kl", "class_scores", "classes_covered", "fd",
           "feature_scores", "kid", "label_agreement", "modes_covered", "precision_recall"]
