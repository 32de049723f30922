"""The ASGI app: `uvicorn service.main:app`. Never imports torch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware

from service.api import (
    auth,
    context,
    datasets,
    encode,
    event_hub,
    events,
    gallery,
    health,
    inference,
    jobs,
    limits,
    methods,
    metrics,
    models,
    parzen,
    problems,
    samples,
    scores,
    sweeps,
    toy,
)
from service.db import engine
from service.evaluation import scores as evaluation_scores
from service.jobs import reconciler
from service.settings import Settings, get_settings
from service.telemetry import logs
from service.versions import sweep_settle

# Routes are matched in this order, one by one: /samples, the hot path, first (no two paths overlap).
ROUTERS = (samples, encode, health, jobs, models, metrics, events, toy, gallery, parzen, scores, sweeps, datasets,
           inference)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine.migrate()  # alembic upgrade head, serialized across processes
    # The reconciler re-sends jobs Redis lost or a dead worker dropped (service/jobs/reconciler.py).
    stop = asyncio.Event()
    task = asyncio.create_task(reconciler.run_forever(stop, {"sweeps_settled": settle_ended_sweeps}))
    yield
    stop.set()
    await task
    event_hub.hub.stop()  # the one LISTEN connection of the event streams


def settle_ended_sweeps() -> int:
    """The reconciler's step for sweeps whose last member ended where nothing settled them; their new
    versions are scored like any other."""
    return sweep_settle.settle_ended(then=evaluation_scores.queue_all_for_version)


def middleware(settings: Settings) -> list[Middleware]:
    """The stack around the routes, outermost first."""
    cors = [Middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                       allow_headers=["*"])] if settings.cors_origins else []
    return [
        # Outermost, so every response, refusals and the catch-all 500 included, has an id, a log line and
        # a latency sample.
        Middleware(context.RequestContext),
        # Before the refusals below, so a browser can read their 401/413/429 (and answers preflights itself).
        *cors,
        # Cheap refusals before any work: a body over the limit is never read...
        Middleware(limits.BodySizeLimit),
        # ...and a client over its sampling budget never reaches the generator.
        Middleware(limits.RateLimit),
        # Last, inside the limits, so a client without a key is still rate limited and its oversized body
        # refused unread. Reads need a key only when settings.read_requires_key; writes check theirs (ApiKey).
        Middleware(auth.ReadAccess),
        # OPTIONS is answered with the path's Allow here; without CORS it would otherwise be a 405.
        Middleware(methods.Options),
    ]


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure(flush_s=settings.log_flush_s)
    # Every error is documented as problem+json on every operation.
    app = FastAPI(title="ganserve", version="0.1.0", lifespan=lifespan, responses=problems.PROBLEM_RESPONSES,
                  middleware=middleware(settings),
                  description="Train and serve the generators of Generative Adversarial Nets "
                              "(Goodfellow et al., 2014).")
    problems.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    gallery.mount(app)  # last: /static must not shadow an API route
    return app


app = create_app()
