"""The queue and its consumer: ``enqueue`` (a jobs row + a Huey task), the consumer that supervises each job's
process, stop escalation, reconciling, and the worker lock.

A capability's entry point (``runs.start``, ``enqueue_batch``, ``enqueue_caption``, ``start_evaluation``) checks the
user's role and calls ``enqueue(kind, config)``: a row in the ``jobs`` table and a Huey task. This module checks no
roles; the handler acts for ``created_by`` as allowed when the job was queued (``workbench.auth``). A consumer
(``workbench worker``; the app starts one when none is alive) picks the task and *supervises* it: the job itself runs
in its own process (``python -m workbench.jobs.runner JOB_ID``, or a fork of a process that has the model libraries
imported already: ``workbench.jobs.spawn``) with its output streamed into the job's log file, so a
crash or a kill never takes the consumer down, and a stop can be escalated:

    stop requested (flag in the DB, checked by the job)  ->  SIGTERM after the grace period  ->  SIGKILL after another.

The queue is SqliteHuey in the workspace by default and RedisHuey when ``WORKBENCH_REDIS_URL`` is set, so several GPU
machines can share one queue; progress and stop flags live in the database, which every machine sees.

A job outlives the consumer that started it (its own session), so a consumer can be replaced while a job runs. Every
consumer *reconciles* at start-up and then every ``reconcile_seconds`` (30; ``WORKBENCH_RECONCILE_SECONDS``):
a 'running' job whose process is gone becomes 'failed' with its log tail. A pid is judged only on the host the row
records (``jobs.host``), so with several machines each judges its own jobs. A stop on a job whose process is gone ends
it at once; ``runs.resume`` reconciles before it decides.

A job kind maps to a handler ``def handler(ctx: JobContext) -> dict | None`` in ``store.KINDS``.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.db import Job, session_scope, utcnow
from workbench.jobs.spawn import start_job_process
from workbench.jobs.store import (HOST, KINDS, PERIODIC, SUPERVISING, JobError, get_job, log_path_for, log_tail,
                                  process_gone)
from workbench.settings import Settings, get_settings

# -- queue --------------------------------------------------------------------------------------------------------

_hueys: dict[str, tuple[Any, Any]] = {}


def get_huey(settings: Settings | None = None):
    """The Huey instance for this workspace (created on first use, with the supervising task registered)."""
    return _queue(settings)[0]


def _queue(settings: Settings | None = None) -> tuple[Any, Any]:
    settings = settings or get_settings()
    key = settings.redis_url or str(settings.workspace_dir)
    if key not in _hueys:
        if settings.redis_url:
            from huey import RedisHuey

            huey = RedisHuey("workbench", url=settings.redis_url)
        else:
            from huey import SqliteHuey

            settings.workspace_dir.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey("workbench", filename=str(settings.path("queue.db")))
        task = huey.task(name="workbench.execute_job")(_execute_job)
        _hueys[key] = (huey, task)
    return _hueys[key]


def enqueue(
    kind: str,
    config: dict[str, Any] | None = None,
    *,
    title: str = "",
    created_by: str = "",
    resumed_from: int | None = None,
    settings: Settings | None = None,
    queue: bool = True,
) -> int:
    """Create a queued job and hand it to the queue; start a local consumer when none is alive (settings.auto_worker).
    Returns the job id. With ``queue=False`` only the row is created: the caller runs it in its own process with
    ``workbench.jobs.runner.run(job_id)`` (the demo builder does, so a job that builds other jobs never waits on the
    queue it is part of)."""
    settings = settings or get_settings()
    if kind not in KINDS:
        raise JobError(f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    config = dict(config or {})
    json.dumps(config)  # fail here, not in the worker, when the config cannot be stored
    with session_scope(settings) as s:
        job = Job(kind=kind, title=title or kind, config=config, created_by=created_by, resumed_from=resumed_from,
                  metrics={}, result={})
        s.add(job)
        s.flush()
        job.log_path = str(log_path_for(job.id, settings))
        job_id = job.id
    path = log_path_for(job_id, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    if queue:
        _queue(settings)[1](job_id)
        if settings.auto_worker:
            ensure_worker(settings)
    return job_id


# -- reconciling --------------------------------------------------------------------------------------------------

def reconcile(settings: Settings | None = None, job_ids: Iterable[int] | None = None) -> list[int]:
    """Mark 'running' jobs of this host whose process is gone as failed, with the tail of their log (only those in
    ``job_ids`` when given). Called at app and worker start-up, periodically by the worker, and by ``runs.resume``.
    Returns the ids it changed."""
    query = select(Job).where(Job.status == "running", Job.host == HOST)
    if job_ids is not None:
        query = query.where(Job.id.in_(list(job_ids)))
    with session_scope(settings) as s:
        gone = [(job.id, job.pid) for job in s.scalars(query) if process_gone(job)]
    changed = []
    for job_id, pid in gone:
        with session_scope(settings) as s:
            job = s.get(Job, job_id)
            if job is None or job.status != "running" or job.pid != pid:
                continue  # it wrote its own outcome (or was restarted) meanwhile
            job.status = "failed"
            job.finished_at = utcnow()
            job.message = f"process {pid} is gone (crash, kill or reboot); it can be resumed"
            job.error = log_tail(job) or "(the log is empty)"
            changed.append(job_id)
    return changed


def run_periodic(settings: Settings | None = None) -> list[int]:
    """Call each ``store.PERIODIC`` function (scheduled work: due shop re-crawls); returns the job ids they queued.
    One that fails is reported and the others still run."""
    import importlib

    settings = settings or get_settings()
    queued: list[int] = []
    for name, target in PERIODIC.items():
        module, func = target.split(":")
        try:
            queued += getattr(importlib.import_module(module), func)(settings) or []
        except Exception as exc:  # noqa: BLE001 - a busy database now and then: the next round tries again
            print(f"[workbench] {name} failed ({type(exc).__name__}: {exc})", flush=True)
    if queued:
        print(f"[workbench] scheduled jobs queued: {queued}", flush=True)
    return queued


def _reconcile_every(seconds: float, settings: Settings) -> None:
    """The consumer's reconcile thread: a job whose process died after its supervisor was replaced does not stay
    'running' for ever; scheduled work that is due gets queued (``run_periodic``)."""
    while True:
        time.sleep(seconds)
        run_periodic(settings)
        try:
            fixed = reconcile(settings)
        except Exception as exc:  # noqa: BLE001 - a busy database now and then: try again next round
            print(f"[workbench] reconcile failed ({type(exc).__name__}: {exc}); retrying in {seconds:g} s", flush=True)
            continue
        if fixed:
            print(f"[workbench] marked jobs {fixed} as failed: their process was gone", flush=True)


# -- supervising (runs inside the consumer) -----------------------------------------------------------------------

def _finish_if_unfinished(job_id: int, returncode: int) -> None:
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None or job.status not in ("queued", "running"):
            return  # the job process wrote its own outcome
        job.finished_at = utcnow()
        if job.stop_requested:
            job.status, job.message = "stopped", f"stopped (exit code {returncode})"
        else:
            job.status = "failed"
            job.message = f"the job process exited with code {returncode} without finishing"
            job.error = log_tail(job) or "(the log is empty)"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job runs in its own session: this reaches its children (accelerate, trainers) too
    except ProcessLookupError:
        pass


def _execute_job(job_id: int) -> None:
    """Huey task: run the job in a child process, watch for a stop request, escalate, record the outcome."""
    settings = get_settings()
    job = get_job(job_id, settings)
    if job.status != "queued":
        return  # stopped while queued, or already taken
    log_path = Path(job.log_path or log_path_for(job_id, settings))
    SUPERVISING.add(job_id)
    try:
        _supervise(job_id, job, log_path, settings)
    finally:
        SUPERVISING.discard(job_id)


def _supervise(job_id: int, job: Job, log_path: Path, settings: Settings) -> None:
    proc = start_job_process(job_id, job.kind, dict(job.config or {}), log_path, settings)
    log = open(log_path, "ab", buffering=0)
    with session_scope(settings) as s:
        row = s.get(Job, job_id)
        row.pid, row.host = proc.pid, HOST
        if row.status == "queued":
            row.status, row.started_at = "running", utcnow()
    grace = settings.stop_grace_seconds
    stop_seen_at: float | None = None
    term_sent_at: float | None = None
    while proc.poll() is None:
        time.sleep(0.25)
        now = time.monotonic()
        if stop_seen_at is None:
            if get_job(job_id, settings).stop_requested:
                stop_seen_at = now
        elif term_sent_at is None and now - stop_seen_at > grace:
            log.write(b"\n[workbench] the job did not stop by itself: sending SIGTERM\n")
            _signal_group(proc.pid, signal.SIGTERM)
            term_sent_at = now
        elif term_sent_at is not None and now - term_sent_at > grace:
            log.write(b"\n[workbench] still running after SIGTERM: sending SIGKILL\n")
            _signal_group(proc.pid, signal.SIGKILL)
            term_sent_at = float("inf")
    log.close()
    _finish_if_unfinished(job_id, proc.poll())


# -- the consumer -------------------------------------------------------------------------------------------------

def _lock_path(settings: Settings) -> Path:
    return settings.path("worker.lock")


def worker_alive(settings: Settings | None = None) -> bool:
    """True when a consumer holds this workspace's worker lock (only meaningful on the same machine)."""
    settings = settings or get_settings()
    path = _lock_path(settings)
    if not path.exists():
        return False
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def ensure_worker(settings: Settings | None = None) -> bool:
    """Start a background consumer when none is alive. Returns True when one was started."""
    settings = settings or get_settings()
    if worker_alive(settings):
        return False
    log = settings.path("logs", "worker.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, WORKBENCH_WORKSPACE=str(settings.workspace_dir))
    with log.open("ab") as out:
        subprocess.Popen([sys.executable, "-m", "workbench.jobs"], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return True


def run_worker(workers: int = 1, settings: Settings | None = None) -> None:
    """Run a Huey consumer in the foreground until interrupted."""
    settings = settings or get_settings()
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(settings).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JobError(f"a worker is already running for workspace {settings.workspace_dir}") from None
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    every = settings.reconcile_seconds
    fixed = reconcile(settings)
    if fixed:
        print(f"[workbench] marked jobs {fixed} as failed: their process was gone", flush=True)
    run_periodic(settings)
    threading.Thread(target=_reconcile_every, args=(every, settings), daemon=True, name="reconcile").start()
    consumer = get_huey(settings).create_consumer(workers=workers, worker_type="thread", periodic=False, max_delay=1.0,
                                                  check_worker_health=True)
    print(f"[workbench] worker for {settings.workspace_dir} (pid {os.getpid()}, {workers} at once, reconciling "
          f"every {every:g} s)", flush=True)
    consumer.run()
