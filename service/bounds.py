"""What a request may name, as the database stores it: model names, and integers that fit its columns."""

from __future__ import annotations

MODEL_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Versions, iterations and other counters are PostgreSQL `integer` columns: larger values are a 422, not a
# query the database rejects.
DB_INT_MAX = 2**31 - 1
# An alias starts with a letter, so it is never mistaken for a version number.
ALIAS_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
