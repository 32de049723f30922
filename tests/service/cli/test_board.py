"""`ganserve up`'s job lines from what GET /jobs returns: speed and ETA measured between reads, a plain line per
state change, and the live table on a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from service.cli.board import Board
from service.cli.client import Api


def job(iteration: int, status: str = "running", warning: str | None = None,
        job_id: str = "1437b75a-e30b") -> dict[str, Any]:
    return {"id": job_id, "model": "mnist", "status": status, "iteration": iteration, "progress": iteration / 2000,
            "config": {"iterations": 2000}, "warning": warning, "error": None}


def board(terminal: bool) -> tuple[Board, io.StringIO]:
    out = io.StringIO()
    return Board(Api("http://127.0.0.1:9"), Console(file=out, force_terminal=terminal, width=120)), out


def test_speed_and_eta_come_from_successive_reads_and_only_new_jobs_are_shown() -> None:
    b, _ = board(terminal=False)
    b.read([job(0, "queued"), job(2000, "succeeded", job_id="old")], 0.0)
    assert list(b.rows) == ["1437b75a-e30b"]          # finished before the board started: not shown
    b.read([job(100)], 1.0)
    b.read([job(300)], 2.0)
    row = b.rows["1437b75a-e30b"]
    assert row.rate == pytest.approx(0.7 * 100 + 0.3 * 200)
    assert row.speed() == "130 it/s  ETA 0:13"         # (2000 - 300) / 130 s
    b.read([job(2000, "succeeded")], 3.0)
    assert row.speed() == "" and "succeeded" in row.plain()   # finished while shown: stays, without a speed


def test_plain_lines_are_printed_once_per_state_change(capsys: pytest.CaptureFixture[str]) -> None:
    b, _ = board(terminal=False)
    for t, (it, status, warning) in enumerate([(0, "queued", None), (0, "running", None), (100, "running", None),
                                                (600, "running", None), (700, "running", "D wins: lower lr")]):
        b.read([job(it, status, warning)], float(t))
        b.print_changes()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["queued", "running", "running", "running"]
    # 100 it/s, then 500 it/s weighed in at 0.3: 220 it/s, (2000 - 600) / 220 s left
    assert lines[2] == "job 1437b75a  running    mnist  [#######-----------------]  600/2000  220 it/s  ETA 0:06"
    assert lines[-1].endswith("warning: D wins: lower lr")


def test_a_terminal_gets_a_live_table() -> None:
    b, out = board(terminal=True)
    assert b.live is not None
    b.read([job(0)], 0.0)
    b.read([job(500, warning="D wins: lower lr")], 1.0)
    b.console.print(b.render())
    text = out.getvalue()
    assert "running" in text and "mnist" in text and "500/2000" in text and "500 it/s" in text
    assert "D wins: lower lr" in text and "━" in text  # the bar
