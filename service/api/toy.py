"""GET /jobs/{id}/toy: the paper's Figure 1 data of a toy-1d job (data density, G's histogram, D(x))."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query

from service.evaluation import figure1
from service.jobs import store

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}/toy")
def job_toy(job_id: uuid.UUID, after: int = Query(default=-1, ge=-1)) -> list[dict[str, Any]]:
    """One entry per figure after iteration `after`: {iteration, stage, x, data_density, d, bins, g_density};
    stage names the paper's panels (start, after_d, after_g, end) and is null for the others.
    Empty for jobs that are not 1-D (only toy-1d training stores these)."""
    store.get(job_id)  # 404 for an unknown job
    return figure1.after(job_id, after)
