"""The paper's Figure 1 for toy-1d jobs: JSON blobs the trainer stores at each snapshot, read back here.

One blob per snapshot iteration, under `figure1/{job_id}/{iteration:09d}.json` in the blob store (written by
worker/figure1_store.py): {"iteration", "stage", "x", "data_density", "d", "bins", "g_density"}. Zero-padded keys sort
by iteration, so "everything after iteration N" is a key range.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from service.db import blobs
from service.db.engine import session_scope
from service.db.tables import Blob

PREFIX = "figure1"


# The paper's four panels: (a) before any update, (b) after D's first update (G as initialized, so its
# figure carries iteration 0), (c) after G's first update (iteration 1), (d) the end.
STAGES = ("start", "after_d", "after_g", "end")


def blob_key(job_id: uuid.UUID | str, iteration: int, stage: str | None = None) -> str:
    """Iteration 0 has two figures, (a) and (b): (b)'s key sorts right after (a)'s ('~' > '.')."""
    return f"{PREFIX}/{job_id}/{iteration:09d}{'~' + stage if stage == 'after_d' else ''}.json"


def after(job_id: uuid.UUID, iteration: int = -1, limit: int = 1000,
          newest_only: bool = False) -> list[dict[str, Any]]:
    """Figures with iteration > `iteration`, oldest first; only the newest of them with `newest_only`
    (a live view draws the latest figure, so it need not download the ones it would skip)."""
    prefix = f"{PREFIX}/{job_id}/"
    # "-00000001" sorts before every real key, so iteration=-1 means "all of them"; "~~" sorts after every
    # key of the same iteration, so (b) of iteration 0 is not sent again after it.
    lowest = f"{PREFIX}/{job_id}/{max(iteration, -1):09d}~~"
    with session_scope() as session:
        keys = session.scalars(select(Blob.key).where(Blob.key.startswith(prefix, autoescape=True),
                                                      Blob.key > lowest)
                               .order_by(Blob.key.desc() if newest_only else Blob.key)
                               .limit(1 if newest_only else limit)).all()
        found = blobs.get_small(session, list(keys))
        return [json.loads(found[key]) for key in keys if key in found]
