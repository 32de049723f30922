"""The Alembic migrations in the repo describe exactly the ORM tables."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_alembic_check_finds_no_drift(stack: None) -> None:
    result = subprocess.run([sys.executable, "-m", "alembic", "check"], cwd=REPO, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_migrate_is_idempotent(stack: None) -> None:
    from service.db.engine import migrate

    migrate()
    migrate()
