"""Seed sweeps through the real stack: POST /jobs with "seeds" → one job per seed sharing a sweep_id, GET
/sweeps/{id}, every member scored on the validation split at its end, the best registered last (or alone with
sweep_keep "best-only") and as alias `best`; a sweep whose members are cancelled while queued settles, and one
whose members a claim gave up on is settled by the reconciler; and the 422s of bad sweeps and on_lost values."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from service.db.engine import session_scope
from service.db.tables import Job
from service.jobs.reconciler import reconcile_once
from service.jobs.status import JobStatus, finish
from service.main import settle_ended_sweeps
from tests.conftest import mnist_available

TINY = {"dataset": "mnist", "preset": "quick", "iterations": 20, "g_hidden": [32], "d_hidden": [16],
        "batch_size": 32, "log_every": 10, "snapshot_every": 20}


@pytest.fixture(scope="module", autouse=True)
def _mnist() -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR: run `ganserve data fetch mnist` (make test does)")


def _wait_sweep(client: Any, url: str, timeout: float = 400.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"sweep still {body['status']}: {body}")


def _versions(client: Any, name: str) -> list[dict[str, Any]]:
    return next(m for m in client.get("/models").json() if m["name"] == name)["versions"]


def test_a_sweep_registers_every_member_and_the_best_last(client, worker) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", json={"model": "sw-all", "seeds": [5, 1, 3], **TINY})
    assert response.status_code == 202, response.text
    first = response.json()
    url = response.headers["Location"]
    assert first["sweep_id"] and url == f"/sweeps/{first['sweep_id']}"
    assert first["config"]["seed"] == 5 and first["links"]["sweep"] == url
    sweep = _wait_sweep(client, url)
    assert sweep["status"] == "succeeded", sweep
    assert sweep["model"] == "sw-all" and sweep["keep"] == "all" and sweep["seeds"] == [5, 1, 3]
    members = sweep["members"]
    assert [m["seed"] for m in members] == [5, 1, 3]
    assert all(m["status"] == "succeeded" and m["progress"] == 1.0 and m["valid_ll"] is not None for m in members)
    best = max(members, key=lambda m: m["valid_ll"])
    assert sweep["best"]["job_id"] == best["job_id"]
    versions = _versions(client, "sw-all")
    assert len(versions) == 3 and versions[-1]["job_id"] == best["job_id"]     # the latest is the best
    assert versions[-1]["metrics"]["sweep_best"] is True and versions[-1]["metrics"]["sweep_id"] == first["sweep_id"]
    assert sorted(m["version"] for m in members) == [1, 2, 3] and best["version"] == 3
    jobs = {j["id"]: j for j in client.get("/jobs", params={"model": "sw-all"}).json()}
    assert all(jobs[m["job_id"]]["sweep_id"] == first["sweep_id"] for m in members)
    card = client.get("/models/sw-all/versions/best").json()
    assert card["version"] == 3 and card["aliases"] == ["best"]


def test_best_only_registers_one_version(client, worker) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", json={"model": "sw-best", "seeds": [0, 2], "sweep_keep": "best-only", **TINY})
    assert response.status_code == 202, response.text
    sweep = _wait_sweep(client, response.headers["Location"])
    assert sweep["status"] == "succeeded" and sweep["keep"] == "best-only"
    versions = _versions(client, "sw-best")
    assert len(versions) == 1 and versions[0]["job_id"] == sweep["best"]["job_id"] and sweep["best"]["version"] == 1
    others = [m for m in sweep["members"] if m["job_id"] != sweep["best"]["job_id"]]
    assert others[0]["version"] is None and others[0]["valid_ll"] <= sweep["best"]["valid_ll"]


def test_a_sweep_cancelled_while_queued_settles(client, worker) -> None:  # type: ignore[no-untyped-def]
    # The one worker is kept busy, so both members are still queued when they are cancelled: no worker ever
    # ends them, and the cancel of the last one settles the sweep.
    blocker = client.post("/jobs", json={"model": "sw-blocker", **TINY, "iterations": 200_000}).json()
    response = client.post("/jobs", json={"model": "sw-cancelled", "seeds": [0, 1], **TINY})
    assert response.status_code == 202, response.text
    url = response.headers["Location"]
    try:
        first, last = (m["job_id"] for m in client.get(url).json()["members"])
        assert client.post(f"/jobs/{first}/cancel").json()["status"] == "cancelled"
        assert client.get(url).json()["settled_at"] is None      # one member is still to end
        assert client.post(f"/jobs/{last}/cancel").json()["status"] == "cancelled"
        sweep = client.get(url).json()
        assert sweep["status"] == "failed" and sweep["settled_at"] is not None and sweep["best"] is None, sweep
        assert all(m["status"] == "cancelled" and m["version"] is None for m in sweep["members"])
        assert all(m["name"] != "sw-cancelled" for m in client.get("/models").json())
    finally:
        client.post(f"/jobs/{blocker['id']}/cancel")


def test_a_sweep_whose_members_ended_where_nothing_settles_it_is_settled_by_the_reconciler(  # type: ignore[no-untyped-def]
        client, worker) -> None:
    # Members ended by a claim past the attempt limit (or by the reconciler's time limit) have no worker and no
    # request to settle their sweep: the reconciler's pass does.
    blocker = client.post("/jobs", json={"model": "sw-blocker2", **TINY, "iterations": 200_000}).json()
    response = client.post("/jobs", json={"model": "sw-attempts", "seeds": [0, 1], **TINY})
    assert response.status_code == 202, response.text
    url = response.headers["Location"]
    try:
        members = [uuid.UUID(m["job_id"]) for m in client.get(url).json()["members"]]
        with session_scope() as session:
            ended = session.execute(finish(Job.id.in_(members) & (Job.status == JobStatus.QUEUED),
                                           JobStatus.FAILED, "gave up after 3 attempts").returning(Job.id)).all()
        assert len(ended) == 2                                   # both were still queued behind the blocker
        assert client.get(url).json()["settled_at"] is None
        reconcile_once({"sweeps_settled": settle_ended_sweeps})
        sweep = client.get(url).json()
        assert sweep["status"] == "failed" and sweep["settled_at"] is not None and sweep["best"] is None, sweep
    finally:
        client.post(f"/jobs/{blocker['id']}/cancel")


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"seeds": list(range(17))}, "seeds", "at most 16"),
    ({"seeds": [1, 2, 1]}, "seeds", "repeated: 1"),
    ({"seeds": [1, 2], "seed": 4}, "seeds", "not both"),
    ({"seeds": []}, "seeds", "at least 1"),
    ({"seeds": [1], "kind": "parzen"}, "kind", "kind 'train'"),
    ({"sweep_keep": "best-only"}, "seeds", "list of seeds"),
    ({"sweep_keep": "most"}, "sweep_keep", "best-only"),
    ({"on_lost": "retry"}, "on_lost", "restart"),
    ({"max_restarts": -1}, "max_restarts", "0"),
])
def test_bad_sweeps_and_on_lost_are_422(client, body: dict[str, Any], field: str, says: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/jobs", json={"model": "sw-bad", **TINY, **body})
    assert response.status_code == 422, response.text
    assert field in response.text and says in response.text, response.text


def test_unknown_sweep_is_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/sweeps/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and "no sweep" in response.text
