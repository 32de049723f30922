"""Validation errors worded for people: which parameter is wrong and what is allowed.

The API's 422s (service/api/problems.py) and models.config.resolve() both say them this way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


class ConfigError(ValueError):
    """A job parameter is invalid; `field` names it so the API can say which one."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def explain(error: Any, model: type[BaseModel]) -> str:
    """A pydantic error (one entry of ValidationError.errors()) as a sentence saying what is allowed."""
    kind, ctx, value = error.get("type", ""), error.get("ctx") or {}, error.get("input")
    loc = tuple(error.get("loc") or ())
    info = model.model_fields.get(str(loc[0])) if loc else None
    if kind == "extra_forbidden":
        return f"unknown parameter; allowed: {', '.join(sorted(model.model_fields))}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}, got {value!r}"
    if info is not None and _is_layers(info):
        where = f" (item {loc[1]} is {value!r})" if len(loc) > 1 else f", got {value!r}"
        return f"must be a list of 1 to 16 layer widths, each an integer in 1..65536{where}"
    if kind.startswith("bool"):
        return f"must be true or false, got {value!r}"
    low, high = _bounds(info) if info is not None else (None, None)
    is_int = info is not None and info.annotation is int
    span = f" in {low[1]}..{high[1]}" if is_int and low and high else \
        f" {low[0]} {low[1]} and {high[0]} {high[1]}" if low and high else ""
    if kind.startswith("int") or kind == "is_instance_of":
        return f"must be an integer{span}, got {value!r}"
    if kind.startswith("float") or kind == "finite_number":
        return f"must be a finite number{span}, got {value!r}"
    if kind in _OPS:
        bound = f"{_OPS[kind]} {next(iter(ctx.values()), '')}"
        if is_int and span:
            return f"must be {bound} (an integer{span}), got {value!r}"
        return f"must be{span or ' ' + bound}, got {value!r}"
    return str(error.get("msg", "invalid"))


_OPS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _is_layers(info: FieldInfo) -> bool:
    return any(getattr(m, "min_length", None) == 1 for m in info.metadata) and "tuple" in str(info.annotation)


def _bounds(info: FieldInfo) -> tuple[tuple[str, Any] | None, tuple[str, Any] | None]:
    """A field's (lower, upper) bounds as (operator, value) pairs, for messages."""
    low = high = None
    for m in info.metadata:
        if getattr(m, "ge", None) is not None:
            low = (">=", m.ge)
        if getattr(m, "gt", None) is not None:
            low = (">", m.gt)
        if getattr(m, "le", None) is not None:
            high = ("<=", m.le)
        if getattr(m, "lt", None) is not None:
            high = ("<", m.lt)
    return low, high


def checked(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """model(**data), with a validation error turned into a ConfigError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc") or ("config",)
        if isinstance((ctx := error.get("ctx") or {}).get("error"), ConfigError):
            raise ctx["error"] from None
        raise ConfigError(str(loc[0]), explain(error, model)) from None


__all__ = ["ConfigError", "checked", "explain"]
