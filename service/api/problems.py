"""One error shape for every 4xx/5xx: application/problem+json (RFC 9457), field errors on 422."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.config import ConfigError
from models.config_errors import explain
from service.api.methods import allowed_methods
from service.db.blobs import BlobCorrupt
from service.errors import (
    BrokerUnavailable,
    Busy,
    Conflict,
    IdempotencyConflict,
    InUse,
    InvalidParameter,
    NotFound,
    TooLarge,
    TooManyRequests,
    Unavailable,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Payload too large", 422: "Invalid request", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}


# The body of every 4xx/5xx, written out inline (no $refs) so it can sit on every operation.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
# The HTTP server (uvicorn) answers a request it cannot parse, such as one whose request line is over 64 KiB,
# with a plain-text 400 before the API sees it: a 400 of any operation may be that.
SERVER_400: dict[str, Any] = {"text/plain": {"schema": {"type": "string"}}}
SERVER_400_TEXT = "; or, as text/plain, the HTTP server's refusal of a request it cannot parse (a request line "\
                  "over 64 KiB)"
# Documented on every operation (FastAPI(responses=…)), so clients and schemathesis know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}, **extra}}
    for code, text, extra in ((400, "a bad request, as application/problem+json" + SERVER_400_TEXT, SERVER_400),
                              ("4XX", "a client error, as application/problem+json", {}),
                              ("5XX", "a server error (503 + Retry-After when the database or broker is down)", {}))}
RETRY_AFTER_S = 5


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def internal_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """The 500 for anything unhandled (sent by service/api/middleware.py's RequestContext, which sees every
    request): the trace goes to the log with the request id, never into the response."""
    log.error("unhandled %s on %s %s", type(exc).__name__, method, path, exc_info=exc)
    return problem(500, "internal server error; the X-Request-ID header identifies it in the logs")


def _body_model(request: Request) -> type[BaseModel] | None:
    """The route's JSON body model (FastAPI keeps the matched route in the scope), or None."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        raw = tuple(err.get("loc", ()))
        loc = tuple(str(p) for p in raw if p not in ("body", "query", "path", "header"))
        body_model = _body_model(request) if raw[:1] == ("body",) and loc else None
        # Body fields are worded like the training options they mirror (models.config.explain); others as
        # pydantic says them.
        message = explain({**err, "loc": loc}, body_model) if body_model else err.get("msg", "invalid")
        errors.append({"field": ".".join(loc) or "body", "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, detail, errors)


# Errors of the plain code (service/errors.py) whose message is the whole answer.
_STATUS: dict[type[Exception], int] = {NotFound: 404, Conflict: 409, IdempotencyConflict: 409, InUse: 409,
                                       TooLarge: 413,
                                       Unavailable: 503}
_BROKER_ERRORS = (BrokerUnavailable, BrokerError, RedisConnectionError, RedisTimeoutError)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request.scope)) or (headers or {}).get("Allow", "")
        return problem(405, f"method {request.method} not allowed here; allowed: {allow}", headers={"Allow": allow})
    return problem(exc.status_code, str(exc.detail), headers=headers)


async def _plain_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(_STATUS[cls] for cls in type(exc).__mro__ if cls in _STATUS)
    return problem(status, str(exc))


async def _retry_later(request: Request, exc: TooManyRequests | Busy) -> JSONResponse:
    status = 429 if isinstance(exc, TooManyRequests) else 503
    return problem(status, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


async def _invalid_field(request: Request, exc: InvalidParameter | ConfigError) -> JSONResponse:
    return problem(422, str(exc), [{"field": exc.field, "message": exc.message}])


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and not isinstance(exc, (OperationalError, InterfaceError)) \
            and not exc.connection_invalidated:
        return internal_error(request.method, request.url.path, exc)  # a bug (bad SQL), not an outage
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(503, "the database is unreachable; try again shortly",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


async def _unstorable_value(request: Request, exc: DataError) -> JSONResponse:
    # The safety net behind the routes' own bounds: a request value PostgreSQL cannot compare or store
    # (an integer beyond 32 bits, a NUL character in text) is the client's error, not a 500.
    log.info("rejected a value the database cannot take: %s", type(exc.orig).__name__)
    return problem(422, "a value in the request is out of range: integers must fit in 32 bits and text "
                        "may not contain NUL characters")


async def _broker_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("broker unavailable: %s", type(exc).__name__)
    return problem(503, "the job broker (Redis) is unreachable; nothing was queued, try again shortly",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


async def _corrupt_artifact(request: Request, exc: BlobCorrupt) -> JSONResponse:
    # Never serve bytes that fail their sha256; this is an operator problem, not the client's.
    log.error("refusing a corrupt artifact: %s", exc)
    return problem(500, "a stored artifact failed its integrity check and was not served")


def install(app: FastAPI) -> None:
    """Answer every error the routes and the plain code raise as problem+json. Starlette picks the handler
    of the closest class in the exception's MRO, so DataError gets its 422 before DBAPIError's 503."""
    handlers: list[tuple[Any, Any]] = [
        (StarletteHTTPException, _http_error), (RequestValidationError, _validation),
        (InvalidParameter, _invalid_field), (ConfigError, _invalid_field),
        (TooManyRequests, _retry_later), (Busy, _retry_later),
        *((cls, _plain_error) for cls in _STATUS),
        (DBAPIError, _database_down), (PoolTimeout, _database_down), (DataError, _unstorable_value),
        *((cls, _broker_down) for cls in _BROKER_ERRORS),
        (BlobCorrupt, _corrupt_artifact)]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
