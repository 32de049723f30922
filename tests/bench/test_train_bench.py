"""`ganserve bench train`: the FLOP count of one iteration and the JSON it prints (not a speed test)."""

from __future__ import annotations

import json

import pytest

from bench import train as bench_train
from models.config import PRESETS


def test_flop_per_it_is_counted_from_the_paper_mnist_layer_shapes() -> None:
    m, g, d = 100, [(100, 1200), (1200, 1200), (1200, 784)], [(784, 1200), (240, 1200), (240, 1)]

    def fwd(layers: list[tuple[int, int]], rows: int) -> int:            # 2*M*K*N per (in, out) layer
        return sum(2 * rows * a * b for a, b in layers)

    d_step = fwd(g, m) + 2 * fwd(d, 2 * m) + fwd(d[1:], 2 * m)                # + D weight and input grads
    g_step = fwd(g, m) + 2 * fwd(d, m) + fwd(g, m) + fwd(g[1:], m)           # D input grads; G grads
    prods = bench_train.products(PRESETS["paper-mnist"], 784)
    assert bench_train.flops(prods) == d_step + g_step == 3_566_784_000
    assert len(prods) == 25


def test_json_last_line_has_the_issue_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_train.main(["--seconds", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("it_per_s", "it_per_s_bf16", "flop_per_it", "gemm_gflops", "fraction_of_gemm", "bf16_speedup",
                "it_per_s_torch_ops", "native_speedup"):
        assert key in r
    assert r["kernels"] == "native" and r["it_per_s_torch_ops"] > 0      # a C compiler is here: both timed
    assert r["flop_per_it"] == 3_566_784_000 and r["it_per_s"] > 0 and r["gemm_gflops"] > 0
    # it/s and GFLOP/s are printed rounded (2 and 1 decimals): on a slow or loaded machine those roundings
    # alone move the recomputed ratio by more than 1 %.
    rounding = 0.005 / r["it_per_s"] + 0.05 / r["gemm_gflops"]
    assert r["fraction_of_gemm"] == pytest.approx(r["it_per_s"] * r["flop_per_it"] / r["gemm_gflops"] / 1e9,
                                                  rel=0.01 + rounding)
    if r["it_per_s_bf16"] is not None:
        rounding_bf16 = 0.005 / r["it_per_s"] + 0.005 / r["it_per_s_bf16"]
        assert r["bf16_speedup"] == pytest.approx(r["it_per_s_bf16"] / r["it_per_s"], rel=0.01 + rounding_bf16)
