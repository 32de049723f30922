"""A worker whose first ONNX export dies halfway: `celery -A tests.faults.crashing_app worker`.

The export builds and serializes the graph, then, while it validates the artifact with onnxruntime, the
process exits abruptly (as an out-of-memory kill would): no exception handler, no cleanup. A marker file
makes it crash once, so the job's next attempt can succeed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from worker import export
from worker.celery_app import app

__all__ = ["app"]

MARKER = Path(os.environ["GANSERVE_HOME"]) / "export-crashed"
_real_run_onnx = export.run_onnx


def _crashing_run_onnx(blob: bytes, z: np.ndarray) -> np.ndarray:
    if not MARKER.exists():
        MARKER.write_text(str(os.getpid()))
        os._exit(137)
    return _real_run_onnx(blob, z)


export.run_onnx = _crashing_run_onnx
