"""Upgrades keep data: a database written by the previous schema (tests/data/db-0002.sql.gz, made by
tests/service/db/capture_upgrade_fixture.py before blobs were stored in chunks) is migrated by Alembic when
the API starts; its model version is served and its killed job resumes from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import REPO, mnist_available
from tests.faults.conftest import FaultStack, log_events

FIXTURE = REPO / "tests" / "data" / "db-0002.sql.gz"


def test_a_database_of_the_previous_schema_upgrades_serves_its_versions_and_resumes_its_job(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist`")
    stack = FaultStack(tmp_path_factory.mktemp("upgrade"), restore=FIXTURE)
    try:
        head = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_current_head()
        assert stack.scalar("SELECT version_num FROM alembic_version") == head
        # The old blobs' bytes now live in chunks, whole.
        assert stack.scalar("SELECT count(*) FROM blobs b WHERE b.size <> (SELECT coalesce(sum(octet_length(c.data)), 0) "
                            "FROM blob_chunks c WHERE c.key = b.key)") == 0
        response = stack.http.get("/samples", params={"model": "upgraded", "n": 4, "seed": 1})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
        job_id = str(stack.scalar("SELECT id FROM jobs WHERE model_name = 'resumed'"))
        assert stack.job(job_id)["status"] == "running" and stack.job(job_id)["iteration"] > 0
        worker = stack.worker("upgraded")  # the reconciler sees the dead job's stale heartbeat and re-sends it
        job = stack.wait_job(job_id, timeout=240)
        assert job["status"] == "succeeded", job
        assert any("resuming from its checkpoint" in e.get("message", "") for e in log_events(Path(worker.log_path)))
        assert stack.scalar("SELECT count(*) FROM model_versions WHERE name = 'resumed'") == 1
        assert stack.http.get("/samples", params={"model": "resumed", "n": 4}).status_code == 200
    finally:
        stack.close()
