"""models.parzen against a brute-force float64 Parzen estimator written here (explicit (x - mu)^2 sums)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models import parzen
from models.parzen import (
    PAPER_SIGMA_GRID,
    ParzenResult,
    evaluate,
    log_likelihoods,
    naive_log_likelihoods,
    select_sigma,
)


def brute_force(queries: np.ndarray, centres: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """(S, n) float64 log p(x): explicit squared differences and a max-shifted logsumexp (no scipy)."""
    x = np.asarray(queries, np.float64)[:, None, :]              # (n, 1, d)
    mu = np.asarray(centres, np.float64)[None, :, :]             # (1, N, d)
    d2 = ((x - mu) ** 2).sum(axis=2)                             # (n, N)
    n_centres, dim = centres.shape
    rows = []
    for s in sigmas:
        a = -d2 / (2.0 * s * s)
        amax = a.max(axis=1, keepdims=True)
        lse = amax[:, 0] + np.log(np.exp(a - amax).sum(axis=1))
        rows.append(lse - math.log(n_centres) - dim * math.log(s * math.sqrt(2.0 * math.pi)))
    return np.array(rows)


def data(seed: int, n: int, n_centres: int, dim: int, step: float = 1 / 16) -> tuple[np.ndarray, np.ndarray]:
    """float32 queries (n, d) and centres (N, d) on a dyadic grid (multiples of `step` in [0, 1)).

    Every product and partial sum is then exact in float32, so the ||x||^2 + ||mu||^2 - 2x.mu GEMM has
    no rounding error and the comparison with float64 isolates the logsumexp / batching code.
    (Rounding of the float32 GEMM on general data is covered by test_general_float_data.)
    """
    rng = np.random.default_rng(seed)
    k = round(1 / step)
    q = (rng.integers(0, k, (n, dim)) * step).astype(np.float32)
    c = (rng.integers(0, k, (n_centres, dim)) * step).astype(np.float32)
    return q, c


def f32_distance_atol(q: np.ndarray, c: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """(S, 1) bound on the float32 GEMM's effect on log p: a few eps * (||x||^2 + ||mu||^2) / 2sigma^2."""
    norms = float((q.astype(np.float64) ** 2).sum(1).max() + (c.astype(np.float64) ** 2).sum(1).max())
    eps = float(np.finfo(np.float32).eps)
    return np.array([[8 * eps * norms / (2 * s * s)] for s in sigmas])


SIGMAS = [0.05, 0.1, 0.2, 0.5, 1.0, 3.0]


def close(got: np.ndarray, want: np.ndarray | list[float]) -> None:
    """Relative error < 1e-6; the atol only matters where log p crosses 0 (float32 exp: ~3e-8 nats)."""
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_paper_grid() -> None:
    assert PAPER_SIGMA_GRID.shape == (10,)
    np.testing.assert_allclose(PAPER_SIGMA_GRID, np.logspace(-1, 0, 10))


@pytest.mark.parametrize("n_threads", [1, 3])
def test_matches_brute_force(n_threads: int) -> None:
    q, c = data(0, 37, 53, 20)
    want = brute_force(q, c, SIGMAS)
    got = log_likelihoods(q, c, SIGMAS, n_threads=n_threads)
    assert got.shape == (len(SIGMAS), 37) and got.dtype == np.float64
    assert np.isfinite(got).all()
    close(got, want)


def test_naive_matches_brute_force() -> None:
    q, c = data(1, 29, 41, 12)
    close(naive_log_likelihoods(q, c, SIGMAS, query_batch=7), brute_force(q, c, SIGMAS))


def test_general_float_data() -> None:
    """d = 784 in [0, 1] like MNIST, not on a grid: the only difference from float64 is the float32
    GEMM's rounding of the distances, bounded by f32_distance_atol (the paper-scale effect is ~1e-3
    nats per image at sigma = 0.1, far below the standard error)."""
    rng = np.random.default_rng(2)
    q, c = rng.random((16, 784), dtype=np.float32), rng.random((64, 784), dtype=np.float32)
    sig = list(PAPER_SIGMA_GRID[::3])
    want = brute_force(q, c, sig)
    for got in (log_likelihoods(q, c, sig), naive_log_likelihoods(q, c, sig)):
        assert np.all(np.abs(got - want) <= f32_distance_atol(q, c, sig))


@pytest.mark.parametrize("qb,cb", [(1, 1), (3, 5), (4, 53), (37, 7), (1000, 1000)])
def test_batched_equals_unbatched(qb: int, cb: int) -> None:
    q, c = data(3, 37, 53, 9)
    ref = log_likelihoods(q, c, SIGMAS, query_batch=10_000, centre_batch=10_000)
    got = log_likelihoods(q, c, SIGMAS, query_batch=qb, centre_batch=cb)
    # exact distances: only the float32 exp of differently shifted blocks may differ (~1e-7 nats)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-7)
    close(got, brute_force(q, c, SIGMAS))


def test_tile_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny L2 tiles: many tiles per block and per worker give the same numbers."""
    q, c = data(4, 23, 31, 6)
    ref = log_likelihoods(q, c, SIGMAS)
    monkeypatch.setattr(parzen, "_TILE_ELEMENTS", 40)
    got = log_likelihoods(q, c, SIGMAS, n_threads=2, centre_batch=17)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-7)


def test_tiny_sigma_where_naive_exp_underflows() -> None:
    """sigma = 1e-3: queries at odd multiples of 1/32, centres at multiples of 1/16, so every squared
    distance is >= 3/1024 and exp(-d/2sigma^2) <= exp(-1464) underflows to 0 for every centre: an
    unshifted logsumexp gives -inf; the max-shifted one must stay finite and correct."""
    q, c = data(5, 11, 19, 3)
    q = q + np.float32(1 / 32)
    sig = [1e-3, 2e-3]
    d2 = ((q.astype(np.float64)[:, None] - c.astype(np.float64)[None]) ** 2).sum(2)
    with np.errstate(divide="ignore"):
        assert np.isneginf(np.log(np.exp(-d2 / (2 * sig[0] ** 2)).sum(1))).all()
    want = brute_force(q, c, sig)
    for got in (log_likelihoods(q, c, sig), log_likelihoods(q, c, sig, query_batch=2, centre_batch=3),
                naive_log_likelihoods(q, c, sig)):
        assert np.isfinite(got).all()
        close(got, want)


def test_negative_rounded_distance_is_clamped() -> None:
    """||x||^2 + (||mu||^2 - 2x.mu) can round below 0 when x == mu; d is clamped to 0 there."""
    e = np.array([[-1.0000001, 3.0], [0.5, 2.0]], np.float32)   # ||mu||^2 - 2x.mu, (2 rows, 2 centres)
    xsq = np.array([1.0, 1.0])                                   # so d = [[-1e-7 -> 0, 4], [1.5, 3]]
    coef = np.array([0.5, 2.0])
    out = np.empty((2, 2))
    parzen._reduce_tile(e, xsq, coef, np.empty(8, np.float32), out)
    for k, ck in enumerate(coef):
        close(out[k], [np.log(1 + np.exp(-4 * ck)),
                                            np.log(np.exp(-1.5 * ck) + np.exp(-3 * ck))])


def test_query_equal_to_centre() -> None:
    q, c = data(6, 5, 13, 50)
    q[:3] = c[[2, 7, 11]]
    sig = [0.01, 0.1, 1.0]
    got = log_likelihoods(q, c, sig)
    assert np.isfinite(got).all()
    # d = 0 dominates those rows: log p ~= -log N - d log(sigma sqrt(2pi))
    close(got, brute_force(q, c, sig))


def test_select_sigma_picks_known_argmax() -> None:
    """Centres on a lattice spaced 1 apart, validation points jittered by N(0, 0.3^2): the likelihood
    over the grid peaks near 0.3, and the returned sigma is exactly the brute-force argmax."""
    rng = np.random.default_rng(7)
    centres = np.stack(np.meshgrid(np.arange(-5.0, 5), np.arange(-5.0, 5)), -1).reshape(-1, 2)  # (100, 2)
    valid = centres[rng.integers(0, 100, 400)] + rng.normal(0, 0.3, (400, 2))
    grid = [0.03, 0.1, 0.3, 1.0, 3.0]
    sigma, table = select_sigma(centres.astype(np.float32), valid.astype(np.float32), grid)
    means = brute_force(valid.astype(np.float32), centres.astype(np.float32), grid).mean(1)
    assert sigma == grid[int(np.argmax(means))] == 0.3
    assert [s for s, _ in table] == grid
    np.testing.assert_allclose([v for _, v in table], means, rtol=1e-5)   # jittered: not exact in f32


def test_evaluate_protocol_and_standard_error() -> None:
    q, c = data(8, 50, 40, 10)
    valid, test = q[:30], q[30:]
    timings: dict[str, float] = {}
    res = evaluate(c, valid, test, sigmas=SIGMAS, n_valid=20, timings=timings)
    assert isinstance(res, ParzenResult)
    best = SIGMAS[int(np.argmax(brute_force(valid[:20], c, SIGMAS).mean(1)))]
    assert res.sigma == best
    ll = brute_force(test, c, [best])[0]
    assert res.ll == pytest.approx(ll.mean(), rel=1e-6)
    assert res.se == pytest.approx(ll.std(ddof=0) / math.sqrt(ll.size), rel=1e-5)
    assert (res.n_samples, res.n_test, res.n_valid) == (40, 20, 20)
    assert len(res.grid) == len(SIGMAS) and res.seconds > 0
    assert timings["gemm_flops"] == 2.0 * (20 + 20) * 40 * 10 and timings["gemm_seconds"] > 0
    js = res.to_json()
    assert json.loads(json.dumps(js)) == js
    assert set(js) == {"ll", "se", "sigma", "grid", "n_samples", "n_test", "n_valid", "seconds"}
    assert js["grid"][0] == {"sigma": SIGMAS[0], "ll": res.grid[0][1]}
    assert evaluate(c, valid, test, sigmas=SIGMAS, n_valid=None).n_valid == 30


@pytest.mark.parametrize(
    "queries,centres,sigmas,match",
    [
        (np.zeros(5), np.zeros((3, 5)), [1.0], "2-D"),
        (np.zeros((2, 5)), np.zeros((3, 4)), [1.0], "dimension"),
        (np.zeros((0, 5)), np.zeros((3, 5)), [1.0], "non-empty"),
        (np.zeros((2, 5)), np.zeros((0, 5)), [1.0], "non-empty"),
        (np.zeros((2, 5)), np.zeros((3, 5)), [], "non-empty"),
        (np.zeros((2, 5)), np.zeros((3, 5)), [1.0, 0.0], "> 0"),
        (np.zeros((2, 5)), np.zeros((3, 5)), [-1.0], "> 0"),
        (np.zeros((2, 5)), np.zeros((3, 5)), [float("nan")], "finite"),
        (np.zeros((2, 5)), np.zeros((3, 5)), [float("inf")], "finite"),
        (np.full((2, 5), np.nan), np.zeros((3, 5)), [1.0], "NaN"),
    ],
)
def test_input_validation(queries: np.ndarray, centres: np.ndarray, sigmas: list[float], match: str) -> None:
    for fn in (log_likelihoods, naive_log_likelihoods):
        with pytest.raises(ValueError, match=match):
            fn(queries, centres, sigmas)


def test_evaluate_rejects_bad_n_valid() -> None:
    q, c = data(9, 4, 4, 3)
    with pytest.raises(ValueError, match="n_valid"):
        evaluate(c, q, q, n_valid=0)


def test_bench_main_json_on_fake_mnist(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """bench.parzen end to end on tiny stand-in splits: the CLI prints one JSON object, last line."""
    from types import SimpleNamespace

    from bench import parzen as bench_parzen
    from models import datasets

    rng = np.random.default_rng(10)
    fake = SimpleNamespace(train=rng.random((60, 8), dtype=np.float32), valid=rng.random((30, 8), dtype=np.float32),
                           test=rng.random((40, 8), dtype=np.float32))
    monkeypatch.setattr(datasets, "load", lambda name, data_dir: fake)
    assert bench_parzen.main(["--quick", "--json", "--data-dir", "/nonexistent"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("seconds", "ll", "se", "sigma", "grid", "gemm_gflops", "distance_gflops", "fraction_of_gemm",
                "naive_seconds", "naive_extrapolated_from", "speedup_vs_naive"):
        assert key in r
    assert (r["n_samples"], r["n_valid"], r["n_test"]) == (60, 30, 40)
    assert r["naive_agrees"]["same_sigma"] and r["gemm_gflops"] > 0
