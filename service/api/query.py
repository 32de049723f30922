"""Query parameters of the hot routes as one pydantic model: validated in one call, documented like Query().

FastAPI's per-parameter machinery (`x: int = Query(...)` in the signature) re-inspects every parameter's
annotation on every request; for /samples' seven parameters that was about a third of the framework's CPU per
request. A route that takes `request: Request` and calls `parse(Model, request)` pays
one pydantic-core validation instead. The same pydantic types do the coercion, so a value is accepted or
refused exactly as before, and a refusal is the same RequestValidationError (-> 422 problem+json naming the
parameter). `openapi(Model)` documents the parameters as FastAPI would have, for clients and schemathesis.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

QueryModel = TypeVar("QueryModel", bound=BaseModel)


def parse(model: type[QueryModel], request: Request) -> QueryModel:
    """The request's query string as `model` (unknown parameters are ignored; a repeated one: the last)."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        # FastAPI's location prefix, which service/api/problems.py strips when naming the field.
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


def openapi(model: type[BaseModel], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route that parses `model` itself: its fields as query parameters (by alias),
    plus optional string `headers` (name -> description)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": name in required, "schema": field,
         "description": field.get("description", "")}
        for name, field in schema["properties"].items()]
    parameters += [{"name": name, "in": "header", "required": False, "schema": {"type": "string"},
                    "description": text} for name, text in (headers or {}).items()]
    return {"parameters": parameters}
