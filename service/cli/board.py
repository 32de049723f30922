"""`ganserve up`'s status under the URLs: one line per job (status, model, progress bar, iteration/total, it/s
and ETA, any warning), read from GET /jobs. On a terminal the lines update in place (rich Live); anywhere else
(a file, CI, docker logs) a plain line is printed each time a job's state changes."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from service.cli.client import Api, CliError
from service.jobs.status import FINISHED, JobStatus

# The newest jobs read each round; shown are the active ones and those that finished while the board ran.
NEWEST_JOBS = 10
REFRESH_S = 1.0
BAR_WIDTH = 24
# Plain lines: a running job is printed again each time its progress passes another quarter.
PLAIN_STEP = 0.25
# Weight of the newest reading in the smoothed it/s.
RATE_SMOOTHING = 0.3
STYLES = {JobStatus.QUEUED: "yellow", JobStatus.RUNNING: "cyan", JobStatus.SUCCEEDED: "green",
          JobStatus.FAILED: "red", JobStatus.CANCELLED: "magenta"}


@dataclass
class Row:
    """One job as last read, and its speed measured between reads."""

    job: dict[str, Any]
    read_at: float
    rate: float | None = None  # iterations a second

    @property
    def total(self) -> int:
        return int(self.job["config"].get("iterations") or 1)

    def update(self, job: dict[str, Any], now: float) -> None:
        done, elapsed = job["iteration"] - self.job["iteration"], now - self.read_at
        if job["status"] != JobStatus.RUNNING:
            self.rate = None
        elif elapsed > 0 and done >= 0:  # a restarted run starts its iterations over: no reading then
            speed = done / elapsed
            self.rate = speed if not self.rate else (1 - RATE_SMOOTHING) * self.rate + RATE_SMOOTHING * speed
        self.job, self.read_at = job, now

    def speed(self) -> str:
        if not self.rate:
            return ""
        eta = int((self.total - self.job["iteration"]) / self.rate)
        return f"{self.rate:.0f} it/s  ETA {eta // 60}:{eta % 60:02d}"

    def plain(self) -> str:
        filled = round(BAR_WIDTH * min(1.0, self.job["iteration"] / self.total))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return "  ".join(part for part in (
            f"job {self.job['id'][:8]}", f"{self.job['status']:<9}", self.job["model"], f"[{bar}]",
            f"{self.job['iteration']}/{self.total}", self.speed(), self.note()) if part)

    def note(self) -> str:
        if self.job.get("error"):
            return f"error: {self.job['error']}"
        return f"warning: {self.job['warning']}" if self.job.get("warning") else ""

    def state(self) -> tuple[Any, ...]:
        """What a plain line is printed for when it changes."""
        return self.job["status"], int(self.job["progress"] / PLAIN_STEP), self.note()


class Board:
    """The rows, refreshed from the API every REFRESH_S, drawn live on a terminal or as plain lines."""

    def __init__(self, api: Api, console: Console | None = None) -> None:
        self.api = api
        self.console = console or Console(file=sys.stdout)
        self.rows: dict[str, Row] = {}
        self.printed: dict[str, tuple[Any, ...]] = {}
        self.read_at = 0.0
        self.live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal else None

    def __enter__(self) -> Self:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.live:
            self.live.stop()

    def refresh(self) -> None:
        """Read the jobs (at most every REFRESH_S) and redraw; an API that does not answer (restarting) is
        skipped until it does."""
        now = time.monotonic()
        if now - self.read_at < REFRESH_S:
            return
        self.read_at = now
        try:
            jobs = self.api.json("GET", "/jobs", params={"limit": NEWEST_JOBS})
        except CliError:
            return
        self.read(jobs, now)
        if self.live:
            self.live.update(self.render(), refresh=True)
        else:
            self.print_changes()

    def read(self, jobs: list[dict[str, Any]], now: float) -> None:
        for job in reversed(jobs):  # oldest first: rows keep the order the jobs came in
            row = self.rows.get(job["id"])
            if row is not None:
                row.update(job, now)
            elif job["status"] not in FINISHED:  # finished before the board started: not news
                self.rows[job["id"]] = Row(job, now)

    def print_changes(self) -> None:
        for job_id, row in self.rows.items():
            if self.printed.get(job_id) != (state := row.state()):
                self.printed[job_id] = state
                print(row.plain(), flush=True)

    def render(self) -> Table | Text:
        if not self.rows:
            return Text("no jobs yet: `ganserve train --model NAME --follow`, or the gallery", style="dim")
        table = Table.grid(padding=(0, 2))
        for row in self.rows.values():
            job = row.job
            table.add_row(Text(job["status"], style=STYLES.get(job["status"], "")), job["model"],
                          ProgressBar(total=row.total, completed=job["iteration"], width=BAR_WIDTH),
                          f"{job['iteration']}/{row.total}", row.speed(), Text(row.note(), style="yellow"))
        return table
