"""/sweeps: seed sweeps (POST /jobs with "seeds"), their members and the best of them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from service.api.evaluation_schemas import SweepOut
from service.jobs import sweeps

router = APIRouter(prefix="/sweeps", tags=["jobs"])


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: uuid.UUID) -> SweepOut:
    """Each member's status, progress and validation score; `best` once every member has ended (its version
    is the model's latest)."""
    return SweepOut.model_validate(sweeps.describe(sweeps.get(sweep_id)))
