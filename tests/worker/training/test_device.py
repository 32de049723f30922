"""One job per GPU: each pool process of a worker takes its own GPU."""

from __future__ import annotations

import billiard.process
import pytest
import torch

from worker.training.device import pool_index, training_device


def test_each_pool_process_takes_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    chosen: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    process = billiard.process.current_process()
    for index, gpu in ((0, 0), (1, 1), (2, 2), (4, 1)):             # index 4: more processes than GPUs
        monkeypatch.setattr(process, "index", index, raising=False)
        assert pool_index() == index
        assert training_device() == torch.device("cuda", gpu) == chosen[-1]   # and made current
    assert training_device("cpu") == torch.device("cpu")            # an explicit device wins


def test_cpu_without_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device() == torch.device("cpu")
