"""Admission by cost: a client's bucket is charged what its request costs, the render work in flight is
bounded, an oversized response is refused before any work, and a client that hangs up costs nothing more."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.serving import admission
from service.settings import get_settings
from tests.factories import register_model

MNIST_VALUES = 28 * 28


@pytest.fixture(scope="module")
def costly(stack: None) -> str:
    register_model("costly")
    return "costly"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def _cost_budget(monkeypatch: pytest.MonkeyPatch, burst: int) -> None:
    """Each client's cost bucket holds `burst` units, refilled slowly (1000 a second), starting full."""
    monkeypatch.setattr(get_settings(), "sample_cost_per_s", 1000.0)
    monkeypatch.setattr(get_settings(), "sample_cost_burst", burst)
    monkeypatch.setattr(admission.admission, "buckets", admission.TokenBuckets())


def test_a_client_is_charged_by_cost_not_by_request(client: Any, costly: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _cost_budget(monkeypatch, burst=64 * MNIST_VALUES)
    assert client.get("/samples", params={"model": costly, "n": 64}).status_code == 200   # the whole burst
    refused = client.get("/samples", params={"model": costly, "n": 1})
    problem = _problem(refused, 429)
    assert "costs 784 units" in problem["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    # Cheap requests fill the same bucket request by request: 64 of n=1 cost one n=64.
    monkeypatch.setattr(admission.admission, "buckets", admission.TokenBuckets())
    assert all(client.get("/samples", params={"model": costly, "n": 1}).status_code == 200 for _ in range(60))


def test_neighbours_cost_a_search_of_the_training_set(client: Any, costly: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _cost_budget(monkeypatch, burst=100 * MNIST_VALUES)
    assert client.get("/samples", params={"model": costly, "n": 1}).status_code == 200
    # 2 x 784 values alone would fit what is left; the search through the training rows does not.
    problem = _problem(client.get("/samples", params={"model": costly, "n": 2, "neighbors": "true"}), 429)
    assert "training rows" in problem["detail"]


def test_render_work_in_flight_is_bounded_with_a_503(client: Any, costly: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "render_max_cost", 10 * MNIST_VALUES)
    with admission.admission.admit(None, 10 * MNIST_VALUES):   # another request holds the whole budget
        busy = client.get("/samples", params={"model": costly, "n": 4})
        _problem(busy, 503)
        assert busy.headers["retry-after"] == "1"
        _problem(client.get("/interpolate", params={"model": costly, "z0": 1, "z1": 2}), 503)
    assert client.get("/samples", params={"model": costly, "n": 4}).status_code == 200


def test_a_response_over_the_size_cap_is_refused_before_any_work(client: Any, costly: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "max_response_bytes", 100_000)
    problem = _problem(client.get("/samples", params={"model": costly, "n": 64, "format": "npy"}), 422)
    assert problem["errors"][0]["field"] == "n" and "max_response_bytes" in problem["detail"]
    assert client.get("/samples", params={"model": costly, "n": 4, "format": "npy"}).status_code == 200


def test_the_work_of_a_client_that_hung_up_is_cancelled() -> None:
    from service.api import samples

    cancelled = asyncio.Event()

    async def work() -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    class Gone:
        async def receive(self) -> dict[str, str]:
            return {"type": "http.disconnect"}

    async def run() -> int:
        response = await samples._unless_gone(Gone(), work())  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return response.status_code

    assert asyncio.run(run()) == samples.CLIENT_GONE
    assert cancelled.is_set()
