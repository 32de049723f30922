"""The ASGI app: `uvicorn service.main:app`. Never imports torch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import auth, health, jobs, models, samples
from service.api import problems as errors
from service.api.limits import BodySizeLimit, RateLimit
from service.db import engine as db
from service.jobs import reconciler
from service.settings import get_settings
from service.telemetry import logs
from service.telemetry import metrics as observability


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.migrate()  # alembic upgrade head, serialized across processes
    # The reconciler re-sends jobs Redis lost or a dead worker dropped (see service/reconciler.py).
    stop = asyncio.Event()
    task = asyncio.create_task(reconciler.run_forever(stop))
    yield
    stop.set()
    await task


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure(flush_s=settings.log_flush_s)
    # Every error is documented as problem+json on every operation.
    app = FastAPI(title="ganserve", version="0.1.0", lifespan=lifespan, responses=errors.PROBLEM_RESPONSES,
                  description="Train and serve the generators of Generative Adversarial Nets "
                              "(Goodfellow et al., 2014).")
    errors.install(app)
    # The last added runs first: request id/metrics, then CORS (so 401/413/429 carry CORS headers), then
    # limits, then the key check on reads (auth.ReadAccess: only when settings.read_requires_key), then the
    # GET /samples fast path (service/api/samples.py: the hot route without FastAPI's routing).
    app.add_middleware(samples.SamplesFastPath)
    app.add_middleware(auth.ReadAccess)
    app.add_middleware(RateLimit)
    app.add_middleware(BodySizeLimit)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(observability.RequestContext)
    # Sampling first: routes are matched in order, one by one, and /samples is the hot path (no path overlaps).
    for module in (samples, health, jobs, models, observability):
        app.include_router(module.router)
    from service.api import events, gallery, toy  # issue 6: live job events, Figure 1 data, the page

    for module in (events, toy, gallery):
        app.include_router(module.router)
    from service.api import parzen  # issue 4: Parzen-window scores beside Table 1

    app.include_router(parzen.router)
    # Issue 8: /datasets; importing it registers the uploads table with models.datasets (service/dataset_store.py).
    from service.api import datasets as datasets_api

    app.include_router(datasets_api.router)
    gallery.mount(app)  # last: /static and / must not shadow an API route
    return app


app = create_app()
