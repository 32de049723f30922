"""`ganserve up`'s status board: one line per recent job with a progress bar, redrawn in place on a terminal;
elsewhere (a log file, CI) one plain line whenever a job's status changes or it passes another tenth."""

from __future__ import annotations

from typing import Any, Self

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from service.cli.client import Api, CliError

SHOWN_JOBS = 8
ACTIVE = ("queued", "running")


def table(jobs: list[dict[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    if not jobs:
        grid.add_row("no jobs yet: `ganserve train --model mnist --preset quick --follow` queues one")
    for job in jobs:
        total = job["config"].get("iterations") or 1
        line = f"{job['iteration']}/{total}" if job["kind"] == "train" else job["kind"]
        grid.add_row(job["id"][:8], job["model"], job["status"], ProgressBar(total=1.0, completed=job["progress"],
                                                                           width=30),
                     f"{job['progress']:>4.0%}", line, job.get("warning") or job.get("error") or "")
    return grid


def recent(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active jobs first, then the newest finished ones, SHOWN_JOBS in all."""
    active = [j for j in jobs if j["status"] in ACTIVE]
    return (active + [j for j in jobs if j["status"] not in ACTIVE])[:SHOWN_JOBS]


class Board:
    """Polled by `ganserve up`'s wait loop; tolerant of an API that is briefly unreachable."""

    def __init__(self, base_url: str, api_key: str, console: Console | None = None) -> None:
        self.api = Api(base_url, key=api_key)
        self.console = console or Console()
        self.live = Live(table([]), console=self.console, auto_refresh=False) if self.console.is_terminal else None
        self._printed: dict[str, tuple[str, int]] = {}

    def __enter__(self) -> Self:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
        self.api.http.close()

    def update(self) -> None:
        try:
            jobs = recent(self.api.json("GET", "/jobs"))
        except CliError:
            return
        if self.live is not None:
            self.live.update(table(jobs), refresh=True)
            return
        for job in reversed(jobs):  # oldest first, as a log reads
            state = (job["status"], int(job["progress"] * 10))
            if self._printed.get(job["id"]) != state:
                self._printed[job["id"]] = state
                self.console.print(f"job {job['id'][:8]} {job['model']}: {job['status']} {job['progress']:.0%} "
                                   f"({job['iteration']}/{job['config'].get('iterations', '?')})")
