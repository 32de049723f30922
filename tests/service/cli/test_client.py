"""The client commands against a live API and a real worker: `ganserve train --follow` exits 0 when the job
succeeds and non-zero when it fails; jobs, models, sample, interpolate, download and scores write what they say."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, TEST_API_KEY, mnist_available
from tests.factories import register_model

TINY = ["--preset", "quick", "--dataset", "mnist", "--iterations", "40", "--set", "g_hidden=[64]",
        "--set", "d_hidden=[32]", "--set", "batch_size=32", "--set", "log_every=10", "--set", "seed=7"]


def ganserve(live_server: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GANSERVE_URL": live_server, "GANSERVE_API_KEY": TEST_API_KEY, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def served(live_server):  # type: ignore[no-untyped-def]
    return register_model("t-cli", latent_dim=8, hidden=(16,), seed=2)


def test_train_follow_exits_0_on_success_and_1_on_failure(live_server, worker) -> None:  # type: ignore[no-untyped-def]
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")
    done = ganserve(live_server, "train", "--model", "t-cli-train", *TINY, "--follow")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout and "40/40" in done.stdout and "D(x)" in done.stdout
    failed = ganserve(live_server, "train", "--model", "t-cli-diverges", *TINY, "--preset", "paper-mnist",
                      "--iterations", "2000", "--set", "lr=10", "--follow")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in failed.stdout and "diverged" in failed.stdout
    jobs = ganserve(live_server, "jobs", "--model", "t-cli-train")
    assert jobs.returncode == 0 and "succeeded" in jobs.stdout


def test_sample_interpolate_download_and_models(live_server, served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = ganserve(live_server, "sample", "--model", "t-cli", "-n", "16", "--seed", "3", "-o", "grid.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "grid.png").format == "PNG" and "seed 3" in r.stdout
    r = ganserve(live_server, "sample", "--model", "t-cli", "-n", "4", "--seed", "3", "-o", "x.npy", cwd=tmp_path)
    assert r.returncode == 0 and np.load(tmp_path / "x.npy").shape == (4, 1, 28, 28)
    r = ganserve(live_server, "interpolate", "--model", "t-cli", "--steps", "5", "-o", "strip.gif", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "strip.gif").read_bytes()[:3] == b"GIF"
    r = ganserve(live_server, "download", "--model", "t-cli", "-o", "g.onnx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256((tmp_path / "g.onnx").read_bytes()).hexdigest() == served.sha256
    assert "verified" in r.stdout
    r = ganserve(live_server, "models")
    assert r.returncode == 0 and "t-cli" in r.stdout
    r = ganserve(live_server, "scores", "--model", "t-cli")
    assert r.returncode == 0 and ("no score yet" in r.stdout or "Parzen" in r.stdout), r.stdout + r.stderr
    r = ganserve(live_server, "sample", "--model", "t-cli-none", "-o", "no.png", cwd=tmp_path)
    assert r.returncode == 2 and "unknown model 't-cli-none'" in r.stderr
    r = ganserve("http://127.0.0.1:9", "models")
    assert r.returncode == 2 and "cannot reach the API" in r.stderr


@pytest.mark.parametrize("cancel", [False, True])
def test_ctrl_c_detaches_or_cancels(live_server, cancel) -> None:  # type: ignore[no-untyped-def]
    """A job far too long to end during the test, queued or running (whether a worker is up or not)."""
    env = {**os.environ, "GANSERVE_URL": live_server, "GANSERVE_API_KEY": TEST_API_KEY}
    args = ["train", "--model", f"t-cli-ctrl-c-{int(cancel)}", *TINY, "--iterations", "1000000", "--follow",
            *(["--cancel-on-exit"] if cancel else [])]
    follow = subprocess.Popen([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        job = None
        while job is None and time.monotonic() < deadline:
            found = httpx.get(f"{live_server}/jobs", params={"model": args[2]}).json()
            job = found[0] if found else None
            time.sleep(0.5)
        assert job is not None
        time.sleep(2)  # the bar is up, following the stream
        follow.send_signal(signal.SIGINT)
        out, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 130, out
    assert "Traceback" not in out
    status = httpx.get(f"{live_server}/jobs/{job['id']}").json()
    if cancel:
        assert "cancelled job" in out and (status["status"] == "cancelled" or status["cancel_requested"])
    else:
        assert "detached" in out and status["status"] in ("queued", "running") and not status["cancel_requested"]
        httpx.post(f"{live_server}/jobs/{job['id']}/cancel", headers={"X-API-Key": TEST_API_KEY})
