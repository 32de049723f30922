"""The ASGI app: `uvicorn service.main:app`. Never imports torch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service import db, errors
from service.api import health, jobs, models, samples
from service.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.migrate()  # alembic upgrade head, serialized across processes
    yield


def create_app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = FastAPI(title="ganserve", version="0.1.0", lifespan=lifespan,
                  description="Train and serve the generators of Generative Adversarial Nets "
                              "(Goodfellow et al., 2014).")
    errors.install(app)
    settings = get_settings()
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    for module in (health, jobs, models, samples):
        app.include_router(module.router)
    return app


app = create_app()
