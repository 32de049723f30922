"""A bounded load test over loopback: 32 concurrent clients on GET /samples for 20 s (GANSERVE_LOAD_SECONDS=60
for the full run), against the API as a real uvicorn process. Zero errors allowed; p50/p99 are reported."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

import httpx

from tests.factories import register_model

SECONDS = float(os.environ.get("GANSERVE_LOAD_SECONDS", "20"))
CLIENTS = int(os.environ.get("GANSERVE_LOAD_CLIENTS", "32"))
SAMPLES_PER_REQUEST = 64


async def _client(base: str, model: str, until: float, latencies: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.monotonic() < until:
            params: dict[str, str | int] = {"model": model, "n": SAMPLES_PER_REQUEST,
                                            "seed": random.randrange(2**31)}
            started = time.perf_counter()
            try:
                response = await http.get("/samples", params=params)
                ok = response.status_code == 200 and response.content.startswith(b"\x89PNG")
                if not ok:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_sampling_under_load_has_zero_errors(live_server: str) -> None:
    # The paper's MNIST generator size (100 -> 1200 -> 1200 -> 784), random weights: serving cost is real.
    model = f"load-{random.randrange(10**6)}"
    register_model(model, latent_dim=100, hidden=(1200, 1200))
    warm = httpx.get(f"{live_server}/samples", params={"model": model, "n": 1}, timeout=60)
    assert warm.status_code == 200, warm.text

    latencies: list[float] = []
    errors: list[str] = []

    async def run() -> None:
        until = time.monotonic() + SECONDS
        await asyncio.gather(*(_client(live_server, model, until, latencies, errors) for _ in range(CLIENTS)))

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started
    figures: dict[str, Any] = {
        "seconds": round(elapsed, 1), "clients": CLIENTS, "requests": len(latencies) + len(errors),
        "errors": len(errors), "rps": round(len(latencies) / elapsed, 1),
        "samples_per_s": round(len(latencies) * SAMPLES_PER_REQUEST / elapsed),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }
    print(f"\nload: {json.dumps(figures)}")
    assert not errors, f"{len(errors)} errors, e.g. {errors[:3]}; {figures}"
    assert len(latencies) > CLIENTS, figures
