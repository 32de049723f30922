"""bf16 only where the hardware does it: a bf16 job on a device without native bf16 trains in fp32 and says so.

This machine's CPU may have avx512_bf16 or AMX, so the CPU's flags are set by each test rather than read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.worker.training.test_fused import Recorder, easy_data, tiny
from worker.training import device as device_module
from worker.training.device import bf16_fallback, native_bf16
from worker.training.loop import train

CPU = torch.device("cpu")


class WarnedRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def on_warning(self, text: str) -> None:
        self.warnings.append(text)


def _cpu_with(monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset({"sse2", "avx2", *flags}))


@pytest.mark.parametrize("engine", ["fused", "autograd"])
def test_bf16_job_without_native_bf16_trains_in_fp32_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                                                   engine: str) -> None:
    _cpu_with(monkeypatch, "avx512f")
    fp32 = train(tiny(engine=engine), easy_data(), Recorder(), device="cpu")
    hooks = WarnedRecorder()
    asked_bf16 = train(tiny(engine=engine, bf16=True), easy_data(), hooks, device="cpu")
    for p, q in zip(fp32.generator.parameters(), asked_bf16.generator.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)                  # the same run, bit for bit: fp32
    assert len(hooks.warnings) == 1 and "trained in fp32" in hooks.warnings[0]
    assert hooks.rows and all(row["bf16_fallback"] == 1.0 for row in hooks.rows)
    assert asked_bf16.metrics["bf16_fallback"] == 1.0                     # the version's metrics keep it


def test_bf16_job_with_native_bf16_runs_bf16_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_with(monkeypatch, "avx512f", "avx512_bf16")
    fp32 = train(tiny(), easy_data(), Recorder(), device="cpu")
    hooks = WarnedRecorder()
    bf16 = train(tiny(bf16=True), easy_data(), hooks, device="cpu")
    assert not hooks.warnings and all("bf16_fallback" not in row for row in hooks.rows)
    assert all(np.isfinite(v) for row in hooks.rows for v in row.values())
    assert any(not torch.equal(p, q) for p, q in zip(fp32.generator.parameters(), bf16.generator.parameters(),
                                                      strict=True))


def test_native_bf16_by_cpu_flags_and_gpu_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_with(monkeypatch, "avx512f")
    assert not native_bf16(CPU)
    assert bf16_fallback(tiny(bf16=True), CPU) is not None and bf16_fallback(tiny(), CPU) is None
    for flag in ("avx512_bf16", "amx_bf16"):
        _cpu_with(monkeypatch, flag)
        assert native_bf16(CPU) and bf16_fallback(tiny(bf16=True), CPU) is None
    for capability, native in (((7, 5), False), ((8, 0), True), ((9, 0), True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _d, c=capability: c)
        assert native_bf16(torch.device("cuda", 0)) is native


def test_cpu_flags_reads_this_machine() -> None:
    flags = device_module.cpu_flags()
    assert not flags or "fpu" in flags or "sse2" in flags or "neon" in flags or "asimd" in flags
