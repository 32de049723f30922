"""Admission by cost for the endpoints that run a model: a per-client token bucket in cost units, a global
bound on render work in flight, and a cap on the response's size.

A request's cost is n × output values (+ n × training rows with neighbours, the nearest-image search): one
n=1024 request with neighbours costs what ~1,000 n=64 requests do, and is charged so. Beyond its bucket a
client gets 429; beyond the global bound, everyone gets 503 (the server is busy), both with Retry-After.
Buckets are per process, like the request rate limit (service/api/limits.py). Runs on the event loop only.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import Busy, InvalidParameter, TooManyRequests
from service.settings import get_settings

MAX_TRACKED_CLIENTS = 10_000
NPY_HEADER_BYTES = 128


class TokenBuckets:
    """One bucket per client: `burst` tokens, refilled at `rate` per second; least recently seen clients
    are forgotten beyond MAX_TRACKED_CLIENTS (a forgotten client simply starts with a full bucket)."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def take(self, client: str, rate: float, burst: float, cost: float = 1.0, now: float | None = None) -> float:
        """0 when the request may go (its cost is taken); otherwise the seconds until it could. A cost above
        `burst` is charged as `burst`: the largest request allowed empties a full bucket."""
        now = time.monotonic() if now is None else now
        cost = min(cost, burst)
        tokens, at = self._buckets.pop(client, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


def cost(n: int, values: int, training_rows: int = 0) -> int:
    """Cost units of running a model for n outputs of `values` numbers each (+ a search of training_rows)."""
    return n * values + n * training_rows


def check_response_size(field: str, size: int) -> None:
    limit = get_settings().max_response_bytes
    if size > limit:
        raise InvalidParameter(field, f"the response would be about {size:,} bytes; at most {limit:,} "
                                      f"(max_response_bytes): ask for fewer samples or another format")


class Admission:
    def __init__(self) -> None:
        self.buckets = TokenBuckets()
        self.in_flight = 0

    @contextmanager
    def admit(self, client: str | None, units: int) -> Iterator[None]:
        """Hold `units` of the global render budget while the block runs; 429/503 instead when over."""
        settings = get_settings()
        if client is not None and settings.sample_cost_per_s > 0:
            wait = self.buckets.take(client, settings.sample_cost_per_s, settings.sample_cost_burst, units)
            if wait > 0:
                retry = max(1, math.ceil(wait))
                raise TooManyRequests(f"this request costs {units:,} units (n × output values, + n × training "
                                      f"rows with neighbors); a client may spend {settings.sample_cost_per_s:,.0f} "
                                      f"per second (burst {settings.sample_cost_burst:,}); retry in {retry} s",
                                      retry)
        if self.in_flight and self.in_flight + units > settings.render_max_cost:
            raise Busy(f"the server is busy rendering ({self.in_flight:,} cost units in flight, at most "
                       f"{settings.render_max_cost:,}); retry in 1 s", 1)
        self.in_flight += units
        try:
            yield
        finally:
            self.in_flight -= units


admission = Admission()
