"""`ganserve train --follow`: one job's live progress bar (iteration, it/s, ETA, D(x), D(G(z)), any warning)
from its Server-Sent Events, until it finishes. Ctrl-C detaches (or cancels, with cancel_on_exit)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.cli.client import Api
from service.jobs.status import JobStatus

SUCCEEDED = JobStatus.SUCCEEDED
INTERRUPTED = 130  # the shell's code for a Ctrl-C


def bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
                    console=console, transient=False)


def stats(row: dict[str, Any]) -> str:
    """D's mean output on real and on generated images over the last logging interval."""
    parts = [f"{label} {row[key]:.3f}" for key, label in (("d_real", "D(x)"), ("d_fake", "D(G(z))"))
             if isinstance(row.get(key), (int, float))]
    return "  ".join(parts)


def follow(api: Api, job_id: str, cancel_on_exit: bool = False, console: Console | None = None) -> int:
    """0 when the job succeeds, 1 when it fails or is cancelled, 130 on Ctrl-C (the job runs on unless
    cancel_on_exit)."""
    console = console or Console()
    job = api.json("GET", f"/jobs/{job_id}")
    total = int(job["config"].get("iterations") or 1)
    with bar(console) as progress:
        task = progress.add_task(f"{job['model']} {job['status']}", total=total, rate="", stats="")
        try:
            for event, data in api.events(f"/jobs/{job_id}/events"):
                if event == "job":
                    job = data
                    progress.update(task, completed=job["iteration"], description=f"{job['model']} {job['status']}")
                    if job.get("warning"):
                        progress.console.print(f"[yellow]warning:[/] {job['warning']}")
                elif event == "metrics" and data:
                    last = data[-1]
                    speed = last.get("it_per_s")
                    progress.update(task, completed=int(last["iteration"]), stats=stats(last),
                                    rate=f"{speed:.0f} it/s" if isinstance(speed, (int, float)) else "")
                elif event == "end":
                    break
        except KeyboardInterrupt:
            return _interrupted(api, job_id, cancel_on_exit, progress.console)
    job = api.json("GET", f"/jobs/{job_id}")
    if job["status"] == SUCCEEDED:
        console.print(f"[green]succeeded[/]: {job['model']} after {job['iteration']} iterations; "
                      f"`ganserve sample --model {job['model']}`")
        return 0
    console.print(f"[red]{job['status']}[/]: {job.get('error') or 'no error recorded'}")
    return 1


def _interrupted(api: Api, job_id: str, cancel_on_exit: bool, console: Console) -> int:
    if cancel_on_exit:
        api.request("POST", f"/jobs/{job_id}/cancel")
        console.print(f"cancelled job {job_id}")
    else:
        console.print(f"detached; the job goes on: `ganserve jobs`, {api.base_url}/jobs/{job_id}")
    return INTERRUPTED
