"""The errors plain service code raises, each standing for one HTTP status.

No web framework here: serving, datasets, evaluation and the worker raise these, and only the API
(service/api/problems.py) turns them into problem+json responses.
"""

from __future__ import annotations


class InvalidParameter(ValueError):
    """A request parameter refused by the code that uses it (→ 422 naming the field)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class TooLarge(Exception):
    """More data than a limit allows (→ 413).

    Deliberately not a ValueError or OSError: archive readers turn those into a 422 for a malformed file,
    and a limit hit inside them must stay a 413."""


class Unavailable(Exception):
    """The request is fine but this server cannot answer it now, e.g. it lacks a dataset (→ 503)."""


class NotFound(LookupError):
    """Something the request named does not exist; the message says what does (→ 404)."""


class BrokerUnavailable(RuntimeError):
    """The task could not be sent; the job row was taken back, so nothing was queued (→ 503)."""


class Conflict(Exception):
    """The request is fine but what it names cannot do it, e.g. a model version without an encoder (→ 409);
    the message says how to get what would."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was reused for a different request (→ 409)."""


class InUse(Exception):
    """The thing cannot be removed while something else refers to it, e.g. an alias to a version (→ 409)."""


class TooManyRequests(Exception):
    """The client spent its budget (→ 429 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Busy(Exception):
    """The server has as much work in flight as it takes (→ 503 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
