"""Which version a request means. Every `version` a client sends (a query parameter, a path segment) is a
number or an alias name, resolved here and nowhere else."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session

from service.bounds import ALIAS_NAME, DB_INT_MAX, MODEL_NAME
from service.db.tables import ModelAlias, ModelVersion, RetiredVersion
from service.errors import InvalidParameter, NotFound

# A version as a request may name it; None (omitted) means the latest.
VersionRef = int | str | None
VERSION_HELP = "a version number or an alias (PUT /models/{name}/aliases/{alias}); default: the latest"
_ALLOWED = f"a version number 1..{DB_INT_MAX} or an alias matching {ALIAS_NAME}"


def _checked(value: Any) -> int | str:
    """A number (digits) as int, an alias as str; ValueError saying what is allowed."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        if re.match(ALIAS_NAME, value):
            return value
        number = int(value) if value.isdigit() else None
    if number is None or not 1 <= number <= DB_INT_MAX:
        raise ValueError(f"must be {_ALLOWED}; got {value!r}")
    return number


def _validate(value: Any) -> int | str:
    try:
        return _checked(value)
    except ValueError as exc:
        raise PydanticCustomError("version", str(exc)) from None


# The same as a query or body field: one error naming the field, documented as a bounded integer or an alias.
# A version in a path: the schema states numbers of up to 9 digits (the API takes any up to 2^31 - 1, a bound
# no readable pattern states), so every schema-valid path is one the API accepts.
VERSION_PATH = r"^([1-9][0-9]{0,8}|[a-z][a-z0-9_.-]{0,63})$"
VersionParam = Annotated[int | str, PlainValidator(_validate), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
    {"type": "string", "pattern": ALIAS_NAME, "maxLength": 64}]})]


def parse(field: str, value: str | int | None) -> VersionRef:
    """`value` as a number or an alias, or a 422 naming `field` and what it may be."""
    if value is None:
        return None
    try:
        return _checked(value)
    except ValueError as exc:
        raise InvalidParameter(field, str(exc)) from None


def is_pinned(ref: VersionRef) -> bool:
    """An explicit number always means the same artifact; an alias or the latest may move."""
    return isinstance(ref, int)


def find(session: Session, name: str, ref: VersionRef) -> ModelVersion:
    """The version row `ref` names (the latest for None); NotFound says what exists instead."""
    row = None
    if re.match(MODEL_NAME, name):  # else it cannot exist (and a NUL byte would upset PostgreSQL)
        query = select(ModelVersion).where(ModelVersion.name == name)
        if isinstance(ref, str):
            query = query.join(ModelAlias, (ModelAlias.name == ModelVersion.name)
                               & (ModelAlias.version == ModelVersion.version)).where(ModelAlias.alias == ref)
        elif ref is not None:
            query = query.where(ModelVersion.version == ref)
        else:
            query = query.order_by(ModelVersion.version.desc()).limit(1)
        row = session.scalar(query)
    if row is None:
        raise NotFound(not_found_message(session, name, ref))
    return row


def not_found_message(session: Session, name: str, ref: VersionRef) -> str:
    known: dict[str, list[int]] = {}
    for row_name, row_version in session.execute(select(ModelVersion.name, ModelVersion.version)
                                                 .order_by(ModelVersion.name, ModelVersion.version)):
        known.setdefault(row_name, []).append(row_version)
    if name not in known:
        listing = ", ".join(f"{n} (versions {v})" for n, v in known.items()) or "none yet: train one first"
        return f"unknown model {name!r}; known models: {listing}"
    aliases = sorted(aliases_of(session, name))
    if isinstance(ref, str):
        return f"model {name!r} has no alias {ref!r}; its aliases: {aliases or 'none'}; versions: {known[name]}"
    retired = session.get(RetiredVersion, (name, ref)) if ref is not None else None
    why = " (it was retired)" if retired is not None else ""
    return f"model {name!r} has no version {ref}{why}; known versions: {known[name]}, aliases: {aliases or 'none'}"


def aliases_of(session: Session, name: str) -> dict[str, int]:
    """alias -> version of one model."""
    rows = session.execute(select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.name == name)
                           .order_by(ModelAlias.alias))
    return {alias: version for alias, version in rows}


def next_number(session: Session, name: str) -> int:
    """The number the next version of `name` gets: past every version ever registered, retired ones included.
    The caller holds the per-name advisory lock (lock_name) for the rest of its transaction."""
    numbers = union_all(select(ModelVersion.version.label("v")).where(ModelVersion.name == name),
                        select(RetiredVersion.version.label("v")).where(RetiredVersion.name == name)).subquery()
    return int(session.scalar(select(func.coalesce(func.max(numbers.c.v), 0))) or 0) + 1


def lock_name(session: Session, name: str) -> None:
    """Serialize registering, aliasing and retiring versions of one name until the transaction ends."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
