"""The jobs table, read and written without the queue: job kinds, errors, reading a job and its log, waiting for it,
asking it to stop, and whether its process is still alive. The supervisor, the job process (``runner``) and the
capabilities all use these; nothing here starts a process or touches Huey.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from workbench.db import Job, session_scope, utcnow
from workbench.settings import Settings, get_settings

# kind -> "module:function" of its handler (``def handler(ctx: JobContext) -> dict | None``): one line per kind.
KINDS: dict[str, str] = {
    "selftest": "workbench.jobs.builtin:selftest",
    "caption": "workbench.data.captioning:caption_job",
    "generate": "workbench.generate.batch:generate_job",
    "evaluate": "workbench.evaluate.run:evaluate_job",
    "train_lora": "workbench.train.runs:train_job",
    "demo": "workbench.demo:demo_job",
    "shop_crawl": "workbench.products.shop:crawl_job",
    "clip_tune": "workbench.train.clip_tune:clip_tune_job",
    "video": "workbench.generate.video:video_job",
}

# name -> "module:function" called by every consumer at start-up and every ``reconcile_seconds`` (``f(settings)``,
# returning the job ids it queued): scheduled work such as a shop's daily re-crawl. One line per schedule.
PERIODIC: dict[str, str] = {
    "shop re-crawls": "workbench.products.shop:enqueue_due_crawls",
    "trash purge": "workbench.trash:purge_due",  # deleted things past their undo window, for good
}

# The machine's name on job and worker rows: a pid is judged only on its own host. WORKBENCH_HOST overrides the
# hostname (containers that share a hostname, or two consumers on one machine standing for two machines in tests).
HOST = os.environ.get("WORKBENCH_HOST") or socket.gethostname()
LOG_TAIL_LINES = 40


T = TypeVar("T")
DB_RETRY_SECONDS = 120.0  # how long a job's outcome write waits for a database that restarts or is cut off


def database_unreachable(exc: BaseException) -> bool:
    """The error says the database server is away (restarting, cut off, refusing connections), not that the
    statement is wrong: worth trying again on a fresh connection."""
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or type(exc).__name__ in (
        "OperationalError", "InterfaceError"))


def retry_database(write: Callable[[], T], what: str, seconds: float = DB_RETRY_SECONDS) -> T:
    """Call ``write`` (one transaction) until it gets through, for up to ``seconds`` while the database is
    unreachable (a PostgreSQL restart, a network cut); each failed try is printed (into the job's log). Any other
    error, or the database still away after ``seconds``, is raised."""
    deadline, pause = time.monotonic() + seconds, 0.25
    while True:
        try:
            return write()
        except DBAPIError as exc:
            if not database_unreachable(exc) or time.monotonic() + pause > deadline:
                raise
            first = str(exc.orig or exc).strip().splitlines()[0][:200]
            print(f"[workbench] {what}: the database is unreachable ({first}); trying again in {pause:g} s",
                  flush=True)
        time.sleep(pause)
        pause = min(pause * 2, 4.0)


class JobError(RuntimeError):
    """A job could not be enqueued, found or stopped; the message says which and why."""


class JobStopped(Exception):
    """Raised inside a handler (by ``ctx.check_stop()``) when a stop was requested; the job ends as 'stopped'."""


def log_path_for(job_id: int, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.path("logs", "jobs", f"{job_id}.log")


# -- reading ------------------------------------------------------------------------------------------------------

def get_job(job_id: int, settings: Settings | None = None) -> Job:
    with session_scope(settings) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobError(f"no job with id {job_id}")
        return job


def list_jobs(kind: str | None = None, status: str | None = None, limit: int = 100,
              settings: Settings | None = None) -> list[Job]:
    with session_scope(settings) as s:
        q = select(Job).order_by(Job.id.desc()).limit(limit)
        if kind:
            q = q.where(Job.kind == kind)
        if status:
            q = q.where(Job.status == status)
        return list(s.scalars(q))


def log_tail(job: Job | int, lines: int = LOG_TAIL_LINES, settings: Settings | None = None) -> str:
    if isinstance(job, Job):
        path = Path(job.log_path) if job.log_path else log_path_for(job.id, settings)
    else:
        path = log_path_for(job, settings)
    if not path.is_file():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def request_stop(job_id: int, settings: Settings | None = None) -> Job:
    """Ask a job to stop. A queued job stops at once; a running one sees the flag, then gets SIGTERM/SIGKILL from its
    supervisor after the grace period (settings.stop_grace_seconds)."""
    with session_scope(settings) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobError(f"no job with id {job_id}")
        if job.status == "queued":
            job.status, job.finished_at, job.message = "stopped", utcnow(), "stopped before it started"
        elif job.status == "running" and process_gone(job):
            # Nobody is left to see the flag (its supervisor was replaced, then the process died): end it now.
            job.status, job.finished_at = "stopped", utcnow()
            job.message = f"stopped: its process {job.pid} was already gone (crash, kill or reboot); it can be resumed"
            job.error = log_tail(job) or "(the log is empty)"
        elif job.status == "running":
            job.stop_requested = True
            job.message = "stop requested"
            if job.host and job.host != HOST:
                job.message += f" (it runs on {job.host}: a worker there stops it)"
        return job


def wait_for(job_id: int, statuses: Sequence[str] = ("done", "failed", "stopped"), timeout: float = 60.0,
             settings: Settings | None = None) -> Job:
    """Poll until the job reaches one of ``statuses``; raises JobError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(job_id, settings)
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            raise JobError(f"job {job_id} still {job.status!r} after {timeout:.0f} s (waited for {'/'.join(statuses)})")
        time.sleep(0.1)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# Jobs the supervisors in this process are watching: they record their own outcome (a stopped job stays 'stopped').
SUPERVISING: set[int] = set()


def process_gone(job: Job) -> bool:
    """A running job's process is known to be dead: it ran on this host (a pid means nothing on another machine),
    no supervisor here is about to record its outcome, and the pid is not alive."""
    return job.host == HOST and job.id not in SUPERVISING and not pid_alive(job.pid)
