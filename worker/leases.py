"""A worker's ownership of a job: one conditional UPDATE claims it, every later write is fenced by the token.

Celery may deliver a message twice (acks_late, redelivery, the reconciler's re-sends); the claim makes that
harmless: only a queued job, or a running one whose heartbeat is older than settings.lease_timeout_s, can
be claimed, and only by one worker. While a job runs, a background thread beats every settings.heartbeat_s,
so liveness means "the process is alive" even through long steps (dataset loading, ONNX export), and the
training loop's stop check only reads flags the beat refreshed: no database round trip per iteration.
run_leased turns how a job's body ended into the job's state, the same way for every kind of job.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, Update, extract, func, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from service.db.engine import session_scope
from service.db.notify import CANCEL, Listener
from service.db.tables import Job
from service.jobs import status
from service.jobs.status import JobStatus
from service.settings import get_settings
from service.telemetry import logs

log = logging.getLogger(__name__)

# The longest one wait of the heartbeat thread lasts: the end of the job is noticed within it (the thread is
# joined then), so a job's end is not delayed by a heartbeat interval.
CANCEL_POLL_S = 0.25


class LeaseLost(RuntimeError):
    """Another worker took the job over (or it was finished elsewhere): stop writing."""


class Busy(RuntimeError):
    """The job is running on a live worker; this delivery is a duplicate."""


@dataclass
class Lease:
    job_id: uuid.UUID
    token: uuid.UUID
    attempt: int
    # monotonic() after which the job is over settings.job_time_limit_s (counted from its first start).
    deadline: float = float("inf")
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    _last_beat: float = field(default_factory=time.monotonic)

    def fenced(self) -> ColumnElement[bool]:
        """The WHERE clause every write of this worker carries."""
        return (Job.id == self.job_id) & (Job.lease_token == self.token) & (Job.status == JobStatus.RUNNING)

    def write(self, session: Session, **values: object) -> None:
        """An UPDATE of the job row (not its status) that only lands while this worker still holds the lease."""
        self._fenced(session, update(Job).where(self.fenced()).values(**values)
                     .execution_options(synchronize_session=False))

    def end(self, session: Session, target: JobStatus, error: str | None = None, **values: object) -> None:
        """Finish the job as `target` and release the lease, in the caller's transaction; `values` as write's."""
        self._fenced(session, status.finish(self.fenced(), target, error, **values))

    def _fenced(self, session: Session, statement: Update) -> None:
        if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
            self.lost.set()
            raise LeaseLost(f"job {self.job_id}: lease {self.token} is no longer held")

    def heartbeat(self, *, progress: float | None = None, force: bool = False) -> bool:
        """Record liveness in a short transaction (at most every settings.heartbeat_s unless forced);
        returns whether the job should stop (cancel asked, lease lost or time limit passed)."""
        now = time.monotonic()
        if force or now - self._last_beat >= get_settings().heartbeat_s:
            self._last_beat = now
            values: dict[str, object] = {"heartbeat_at": func.now()}
            if progress is not None:
                values["progress"] = progress
            with session_scope() as session:
                result = session.execute(update(Job).where(self.fenced()).values(**values)
                                         .returning(Job.cancel_requested)
                                         .execution_options(synchronize_session=False)).first()
            if result is None:
                self.lost.set()
            elif result[0]:
                self.cancel_requested.set()
        return self.should_stop()

    def timed_out(self) -> bool:
        return time.monotonic() > self.deadline

    def should_stop(self) -> bool:
        """Cheap: flags only. The training loop asks this every iteration."""
        return self.cancel_requested.is_set() or self.lost.is_set() or self.timed_out()

    @contextmanager
    def heartbeating(self) -> Iterator[Lease]:
        """Beat from a background thread while the body runs. A database outage only skips beats: if it
        outlasts lease_timeout_s another worker may claim the job, and the next beat then finds the lease
        lost, which stops this one."""
        stop = threading.Event()

        def loop() -> None:
            # Between beats, listen for a cancel of this job (service/db/notify.py): it is seen at the next
            # iteration check, not up to heartbeat_s later. The beat reads the flag too, in case a notification
            # was sent while the listener was not connected.
            listener = Listener(CANCEL, name=f"ganserve-cancel-{self.job_id}")
            every = get_settings().heartbeat_s
            next_beat = time.monotonic() + every
            try:
                while not stop.is_set():
                    wait = min(CANCEL_POLL_S, next_beat - time.monotonic())
                    if str(self.job_id) in listener.wait(wait, stop):
                        self.cancel_requested.set()
                    if stop.is_set() or time.monotonic() < next_beat:
                        continue
                    next_beat = time.monotonic() + every
                    try:
                        if self.heartbeat(force=True) and self.lost.is_set():
                            return
                    except SQLAlchemyError as exc:
                        log.warning("heartbeat of job %s failed: %s", self.job_id, type(exc).__name__)
            finally:
                listener.close()

        thread = threading.Thread(target=loop, name=f"heartbeat-{self.job_id}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)


def lease_timeout() -> timedelta:
    """A running job whose heartbeat is older than this is presumed dead and may be claimed again."""
    return timedelta(seconds=get_settings().lease_timeout_s)


def claim(job_id: uuid.UUID) -> Lease | None:
    """Take the job, or return None when there is nothing to run (finished, cancelled, unknown).

    Raises Busy when another live worker holds it. A dead worker's job is cancelled here if a cancel was
    asked, and failed after settings.max_attempts claims (a poison job that kills its worker every time
    does not loop)."""
    settings = get_settings()
    token = uuid.uuid4()
    limit = timedelta(seconds=settings.job_time_limit_s)
    # Nobody runs the job: it is queued, or the worker running it stopped heartbeating.
    dead = (Job.id == job_id) & ((Job.status == JobStatus.QUEUED) | (
        (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < func.now() - lease_timeout())))
    runnable = dead & (Job.attempts < settings.max_attempts) & Job.cancel_requested.is_(False)
    with session_scope() as session:
        row = session.execute(status.claim(runnable, token).returning(
            Job.attempts, extract("epoch", func.coalesce(Job.started_at, func.now()) + limit - func.now()))).first()
        if row is not None:
            return Lease(job_id, token, row[0], deadline=time.monotonic() + float(row[1]))
        ended = session.execute(status.finish(dead & Job.cancel_requested.is_(True), JobStatus.CANCELLED)
                                .returning(Job.id)).first()
        if ended is None:
            ended = session.execute(status.finish(
                dead & (Job.attempts >= settings.max_attempts), JobStatus.FAILED,
                f"gave up after {settings.max_attempts} attempts: each time its worker stopped heartbeating "
                "(killed, crashed or out of memory)").returning(Job.id)).first()
        if ended is not None:
            return None
        if session.scalar(select(Job.status).where(Job.id == job_id)) == JobStatus.RUNNING:
            raise Busy(f"job {job_id} is running on another worker")
        return None


def finish(lease: Lease, target: JobStatus, error: str | None) -> None:
    """Write a finished status (and release the lease) under the lease's fencing; a lost lease only logs."""
    try:
        with session_scope() as session:
            lease.end(session, target, error)
    except LeaseLost:
        log.warning("job %s: lease lost before it could be marked %s", lease.job_id, target)


UNEXPECTED_ERROR = ("the worker failed unexpectedly; nothing was registered. Retry the job (POST /jobs); if it "
                    "fails again, report job {job_id}: the worker's log holds the details under that id")


def claim_and_run(job_id: str, body: Callable[[Lease], None]) -> None:
    """A task's whole work: claim the job, then run its body, every log line carrying the job's id."""
    with logs.job_context(job_id):
        try:
            lease = claim(uuid.UUID(job_id))
        except Busy:
            # A duplicate delivery while a live worker runs the job: drop it. Should that worker die, its
            # heartbeat goes stale and the reconciler (service/jobs/reconciler.py) sends the job again.
            log.info("duplicate delivery: the job is running on another worker")
            return
        if lease is None:
            log.info("nothing to do (finished, cancelled or unknown)")
            return
        log.info("claimed the job (attempt %d)", lease.attempt)
        body(lease)


def run_leased(lease: Lease, body: Callable[[Lease], None], *, stopped: type[Exception],
               failures: tuple[type[Exception], ...] = (), reached: Callable[[], str] = lambda: "") -> None:
    """Run a claimed job's body, heartbeating throughout, and write the job's state from how it ended.

    The body writes its own success (fenced, in the transaction that stores its result). Otherwise:

    - LeaseLost: another worker has claimed the job (this one's heartbeat went stale) or it ended elsewhere;
      the row is not ours, so nothing is written.
    - `stopped` (raised by the body once lease.should_stop()): the lease lost → nothing, as above; a cancel
      asked → `cancelled`; else the time limit passed → `failed`, "time limit exceeded: …" (reached() may
      say where it stopped). Not left for a retry: the limit counts from the first start.
    - OperationalError / InterfaceError: PostgreSQL went away, which is not the job's fault. Nothing is
      written and the job stays `running`; once the database is back its heartbeat is stale, the reconciler
      re-sends it and the next claim runs it again (an attempt, counted up to settings.max_attempts).
    - one of `failures`: the job cannot succeed and its message says why → `failed` with that message.
    - any other Exception: a bug or an input nothing checked → `failed` with UNEXPECTED_ERROR; the exception
      and its traceback go to the worker's log only.

    What is not an Exception (SystemExit, KeyboardInterrupt: the worker is going down) propagates and writes
    nothing: as for a killed worker, the heartbeat goes stale, the reconciler re-sends the job, claim() takes it.
    """
    with lease.heartbeating():
        try:
            body(lease)
        except LeaseLost:
            log.warning("job %s: lease lost; another worker owns it now", lease.job_id)
        except stopped:
            if lease.lost.is_set():
                log.warning("job %s: lease lost; another worker owns it now", lease.job_id)
            elif lease.cancel_requested.is_set():
                finish(lease, JobStatus.CANCELLED, None)
            else:
                at = reached()
                finish(lease, JobStatus.FAILED, f"time limit exceeded: {f'{at} after ' if at else ''}"
                                                f"job_time_limit_s={get_settings().job_time_limit_s:g} s")
        except (OperationalError, InterfaceError) as exc:
            log.warning("job %s: database unreachable (%s); leaving it to the reconciler", lease.job_id,
                        type(exc).__name__)
        except failures as exc:
            finish(lease, JobStatus.FAILED, str(exc))
        except Exception:
            # The exception's text may hold SQL, parameters or paths: it goes to the log with the job id, and
            # the job says what a user can do about it.
            log.exception("job %s failed", lease.job_id)
            finish(lease, JobStatus.FAILED, UNEXPECTED_ERROR.format(job_id=lease.job_id))
