"""Writes tests/data/db-0002.sql.gz, the database the upgrade test starts from: run it with the code of the
schema being captured (0002_datasets: commit 57419aa) on PYTHONPATH, against an empty database:

    GANSERVE_DATABASE_URL=postgresql://…/empty GANSERVE_REDIS_URL=redis://…/n python capture_upgrade_fixture.py OUT

It holds a registered model version ("upgraded" v1, its ONNX artifact a blob) and a training job killed
mid-run: status running, a checkpoint blob, a stale heartbeat. Used as a plain script, never by pytest.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from service.db.engine import get_engine, migrate
from service.jobs import store
from tests.factories import register_model

TINY = {"iterations": 3000, "g_hidden": [32], "d_hidden": [16], "batch_size": 16, "checkpoint_seconds": 1,
        "log_every": 50, "snapshot_every": 1000}


def main(out: Path) -> None:
    migrate()
    register_model("upgraded")
    job, _ = store.submit_train("resumed", "quick", "mnist", TINY)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=solo",
                               "--without-gossip", "--without-mingle"], start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with get_engine().connect() as conn:
                done = conn.execute(text("SELECT iteration FROM jobs WHERE id = :id"), {"id": job.id}).scalar()
                saved = conn.execute(text("SELECT count(*) FROM blobs WHERE key LIKE 'checkpoints/%'")).scalar()
            if saved and done and done > 200:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("no checkpoint within 300 s")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # as the OOM killer would: the job stays running
        worker.wait()
    dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", os.environ["GANSERVE_DATABASE_URL"]],
                          check=True, capture_output=True).stdout
    out.write_bytes(gzip.compress(dump, mtime=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
