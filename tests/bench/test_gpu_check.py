"""`make gpu-check DRY=1`: bench/gpu_check.sh runs end to end on the CPU and writes the report's sections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dry_run_writes_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "DRY": "1", "OUT": str(tmp_path), "PYTHON": sys.executable, "LONG_S": "3"}
    done = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report_path = tmp_path / "gpu_check.json"
    assert f"gpu check report: {report_path}" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["dry"] is True and report["loaded_service_stack"] == []        # no web, database or Celery
    assert {"device", "native_bf16", "torch", "onnxruntime", "cpu", "cpu_flags"} <= set(report["device"])
    assert all(check["ok"] for name, check in report["checks"].items() if name != "section_seconds"), \
        report["checks"]
    for engine in ("fused", "autograd"):
        for precision in ("fp32", "bf16"):
            figures = report["bench_train"][engine][precision]
            assert figures["plain"]["it_per_s"] > 0 and {"graphed", "graph_speedup"} <= set(figures)
    assert report["onnx_export"]["max_abs_diff"] < 1e-5
    if report["data"] == "mnist":                                               # the long run needs MNIST
        long_run = report["long_run"]
        assert {"epochs_reached", "test_ll", "test_ll_se", "selected_epoch", "paper_ll"} <= set(long_run)
