"""The process one job runs in: ``python -m workbench.jobs.runner JOB_ID`` (started by the supervising consumer).

It loads the job row, imports the handler of its kind, and calls it with a JobContext. Whatever the handler prints
goes to the job's log file. The outcome (done / failed with the log tail / stopped) is written here; if this process
dies without writing one, the supervisor or the start-up reconcile does.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from workbench.db import Job, session_scope, utcnow
from workbench.jobs.heartbeat import beat_job
from workbench.jobs.store import HOST, KINDS, JobStopped, database_unreachable, get_job, log_tail, retry_database
from workbench.settings import get_settings

PROCESS_ENV = "WORKBENCH_JOB_PROCESS"  # "forked" in a preloaded job process (the job log's first line says so)


class JobContext:
    """What a handler gets: its config, a log, progress reporting and the stop flag."""

    def __init__(self, job: Job, progress_every: float = 0.5, stop_check_every: float = 0.5):
        self.job_id = job.id
        self.kind = job.kind
        self.config: dict[str, Any] = dict(job.config or {})
        self.created_by = job.created_by
        self.settings = get_settings()
        self.dir = self.settings.path("jobs", str(job.id))
        self._progress_every = progress_every
        self._stop_check_every = stop_check_every
        self._last_progress = 0.0
        self._last_stop_check = 0.0
        self._stop = threading.Event()
        self._children: list[subprocess.Popen] = []
        self.unsaved: dict[str, Any] = {}  # progress not written yet (the database was unreachable)
        self._unrecorded = 0  # progress updates that failed in a row (the log says so once per outage)

    # -- log ---------------------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    # -- progress ----------------------------------------------------------------------------------------------
    def progress(self, step: int, total: int | None = None, message: str | None = None, force: bool = False,
                 **metrics: float) -> None:
        """Record progress. Written at most every ``progress_every`` seconds unless forced or at the last step. While
        the database is unreachable (a restart) the job goes on: what could not be written is kept and written
        with the next progress, or with the job's outcome."""
        now = time.monotonic()
        final = total is not None and step >= total
        if not (force or final or now - self._last_progress >= self._progress_every):
            return
        self._last_progress = now
        pending = self.unsaved
        pending["progress_step"] = step
        if total is not None:
            pending["progress_total"] = total
        if message is not None:
            pending["message"] = message
        pending["metrics"] = {**pending.get("metrics", {}), **metrics}
        try:
            with session_scope() as s:
                row = s.get(Job, self.job_id)
                apply_progress(row, pending)
                if row.stop_requested:
                    self._stop.set()
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            if not self._unrecorded:
                self.log(f"progress {step}/{total or '?'} not recorded yet: the database is unreachable "
                         f"({type(exc.orig or exc).__name__}); the job goes on")
            self._unrecorded += 1
            return
        if self._unrecorded:
            self.log(f"progress {step}/{total or '?'} recorded again after {self._unrecorded} unrecorded updates")
            self._unrecorded = 0
        self.unsaved = {}

    # -- stopping ----------------------------------------------------------------------------------------------
    def should_stop(self) -> bool:
        """True once a stop was requested (DB flag) or SIGTERM arrived. Cheap to call every step."""
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if now - self._last_stop_check >= self._stop_check_every:
            self._last_stop_check = now
            try:
                if get_job(self.job_id).stop_requested:
                    self._stop.set()
            except DBAPIError as exc:  # the database is away for a moment: look again at the next check
                if not database_unreachable(exc):
                    raise
        return self._stop.is_set()

    def check_stop(self) -> None:
        """Raise JobStopped when a stop was requested; call it where stopping is safe (after a checkpoint)."""
        if self.should_stop():
            raise JobStopped()

    # -- child processes ---------------------------------------------------------------------------------------
    def run_child(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
                  forward_stop: bool = True) -> int:
        """Run a command (e.g. ``accelerate launch -m workbench.train``), streaming its output into this job's log.
        A stop request is passed on as SIGTERM, unless ``forward_stop`` is False: then the child polls the job's stop
        flag itself (the training script checkpoints first) and the supervisor escalates only if it hangs.
        Returns the exit code."""
        self.log("$ " + " ".join(map(str, cmd)))
        proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                cwd=cwd, bufsize=1, text=True, errors="replace")
        self._children.append(proc)
        if forward_stop:
            threading.Thread(target=self._forward_stop, args=(proc,), daemon=True).start()
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
        return proc.wait()

    def _forward_stop(self, proc: subprocess.Popen) -> None:
        while proc.poll() is None:
            if self.should_stop():
                proc.send_signal(signal.SIGTERM)
                return
            time.sleep(0.25)

    def _on_sigterm(self, *_: Any) -> None:
        self._stop.set()
        for proc in self._children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)


def accelerate_command(module_args: Sequence[str], num_processes: int, cpu: bool,
                       mixed_precision: str = "no") -> list[str]:
    """``accelerate launch`` for ``python -m <module_args>``. Several CPU processes need --multi_gpu (with
    ``cpu=True`` in the script's Accelerator/PartialState): ``--cpu --num_processes 2`` silently runs one process."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--num_processes",
           str(num_processes), "--mixed_precision", mixed_precision, "--dynamo_backend", "no"]
    if num_processes > 1:
        cmd += ["--multi_gpu", "--main_process_port", str(29500 + os.getpid() % 1000)]
    elif cpu:
        cmd += ["--cpu"]
    return cmd + ["-m", *module_args]


FINAL = ("done", "failed", "stopped")


def apply_progress(row: Job, values: dict[str, Any]) -> None:
    """Write progress ``values`` (progress_step, progress_total, message, metrics; each optional) onto a job row."""
    for key in ("progress_step", "progress_total", "message"):
        if key in values:
            setattr(row, key, values[key])
    if values.get("metrics"):
        row.metrics = {**(row.metrics or {}), **values["metrics"]}
    row.updated_at = utcnow()


def _set_outcome(job_id: int, unsaved: dict[str, Any] | None = None, **fields: Any) -> None:
    """Record the job's outcome (and progress it could not write while the database was away), trying again while
    the database is unreachable (``retry_database``)."""
    def write() -> None:
        with session_scope() as s:
            row = s.get(Job, job_id)
            if row.status in FINAL and row.finished_at is not None:
                # Another consumer judged this job dead (its heartbeat went silent) and recorded why; that stands.
                print(f"[workbench] the job ended as {fields.get('status')!r}, but it was already recorded as "
                      f"{row.status!r} ({row.message}); keeping that", flush=True)
                return
            if unsaved:
                apply_progress(row, unsaved)
            for key, value in fields.items():
                setattr(row, key, value)
            row.finished_at = utcnow()

    retry_database(write, f"recording job {job_id}'s outcome ({fields.get('status')})")


def _heartbeat(ctx: JobContext, every: float, done: threading.Event) -> None:
    """The job process's heartbeat (workbench.jobs.heartbeat): other machines judge the job by it. When the row says
    the job is over (failed by a consumer that thought it dead, or stopped), the job stops."""
    while not done.wait(every):
        try:
            status = beat_job(ctx.job_id)
        except Exception as exc:  # noqa: BLE001 - the database is away for a moment: beat again next round
            print(f"[workbench] heartbeat failed ({type(exc).__name__}: {exc})", flush=True)
            continue
        if status is not None:
            print(f"[workbench] this job is recorded as {status!r} elsewhere: stopping", flush=True)
            ctx._stop.set()
            return


def run(job_id: int) -> int:
    job = retry_database(lambda: get_job(job_id), f"reading job {job_id}")

    def start() -> bool:
        with session_scope() as s:
            row = s.get(Job, job_id)
            if row.status in FINAL:  # stopped (or ended) between its queueing and this process's start
                print(f"[workbench] job {job_id} is already {row.status} ({row.message}): not running it",
                      flush=True)
                return False
            row.status, row.pid, row.host = "running", os.getpid(), HOST  # the host: only it can judge the pid
            row.started_at = row.started_at or utcnow()
            row.heartbeat_at = utcnow()
            return True

    if not retry_database(start, f"starting job {job_id}"):
        return 0
    ctx = JobContext(job)
    beating = threading.Event()
    threading.Thread(target=_heartbeat, args=(ctx, ctx.settings.heartbeat_seconds, beating), daemon=True,
                     name="job-heartbeat").start()
    try:
        return _run(job_id, job, ctx)
    finally:
        beating.set()


def _run(job_id: int, job: Job, ctx: JobContext) -> int:
    signal.signal(signal.SIGTERM, ctx._on_sigterm)
    how = " (forked from the preloaded job server)" if os.environ.get(PROCESS_ENV) == "forked" else ""
    ctx.log(f"job {job_id} ({job.kind}) started, pid {os.getpid()}{how}, "
            f"config {json.dumps(job.config, default=str)}")
    try:
        module_name, func_name = KINDS[job.kind].split(":")
        handler = getattr(importlib.import_module(module_name), func_name)
        result = handler(ctx) or {}
    except JobStopped:
        ctx.log("stopped on request")
        _set_outcome(job_id, ctx.unsaved, status="stopped", message="stopped on request")
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must end as a failed job with its log
        traceback.print_exc()
        sys.stdout.flush()
        if database_unreachable(exc):
            message = (f"the database became unreachable while the job wrote to it ({type(exc).__name__}: "
                       f"{str(getattr(exc, 'orig', None) or exc).splitlines()[0]}); it can be resumed")
        else:
            message = f"{type(exc).__name__}: {exc}"
        unsaved = {k: v for k, v in ctx.unsaved.items() if k != "message"}
        _set_outcome(job_id, unsaved, status="failed", message=message[:2000], error=log_tail(job))
        return 1
    stopped = ctx.should_stop()
    ctx.log("stopped on request" if stopped else "done")
    _set_outcome(job_id, ctx.unsaved, status="stopped" if stopped else "done", result=result,
                 message="stopped on request" if stopped else "done")
    return 0



def run_inline(job_id: int) -> int:
    """Run a job created with ``enqueue(..., queue=False)`` in this process, its output appended to the job's log
    (what the supervisor does for queued jobs). Returns the exit code ``run`` gives."""
    import contextlib

    path = Path(get_job(job_id).log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = signal.getsignal(signal.SIGTERM)  # run() installs the job's handler; the caller keeps its own
    try:
        with path.open("a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            return run(job_id)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1])))
