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

Several consumers (issue #23 item 2): each has a ``workers`` row and a heartbeat, and judges the others' jobs by
their heartbeats (``workbench.jobs.heartbeat``): a job of a machine that died is failed with the reason within
4 x ``heartbeat_seconds``; a job a dead consumer had taken but not started is queued again (it never ran). A job that
requires a GPU (``requires_gpu``: training when ``device = "cuda"``, generation on a CUDA device) goes on a queue of
its own, which only consumers with a GPU (``worker_gpu``) read. A consumer started by ``ensure_worker`` exits after
``worker_idle_exit_seconds`` without a job. With the SQLite queue one machine runs the consumer (``worker.lock``);
with Redis each machine holds its own lock (``workers/<host>.lock``).

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

from sqlalchemy import select, update

from workbench.db import Job, session_scope, utcnow
from workbench.jobs import heartbeat
from workbench.jobs.spawn import cuda_present, start_job_process
from workbench.jobs.store import (HOST, KINDS, PERIODIC, SUPERVISING, JobError, database_unreachable, get_job,
                                  log_path_for, log_tail, process_gone, retry_database)
from workbench.jobs.tables import Worker
from workbench.settings import Settings, get_settings

# -- queue --------------------------------------------------------------------------------------------------------

QUEUE, GPU_QUEUE = "workbench", "workbench-gpu"  # every consumer reads the first; only GPU consumers the second
_hueys: dict[tuple[str, str], tuple[Any, Any]] = {}


def get_huey(settings: Settings | None = None, gpu: bool = False):
    """The Huey instance for this workspace (created on first use, with the supervising task registered); ``gpu``:
    the queue of jobs that require a GPU."""
    return _queue(settings, gpu)[0]


def _queue(settings: Settings | None = None, gpu: bool = False) -> tuple[Any, Any]:
    settings = settings or get_settings()
    name = GPU_QUEUE if gpu else QUEUE
    key = (settings.redis_url or str(settings.workspace_dir), name)
    if key not in _hueys:
        if settings.redis_url:
            from huey import RedisHuey

            huey = RedisHuey(name, url=settings.redis_url)
        else:
            from huey import SqliteHuey

            settings.workspace_dir.mkdir(parents=True, exist_ok=True)
            huey = SqliteHuey(name, filename=str(settings.path("queue.db")))
        task = huey.task(name="workbench.execute_job")(_execute_job)
        _hueys[key] = (huey, task)
    return _hueys[key]


def needs_gpu(kind: str, config: dict[str, Any], settings: Settings) -> bool:
    """Whether a job only runs on a GPU machine: a kind in ``gpu_job_kinds``, training queued where ``device =
    "cuda"``, generation whose pipeline asks for a CUDA device."""
    unknown = sorted(set(settings.gpu_job_kinds) - set(KINDS))
    if unknown:
        raise JobError(f"gpu_job_kinds names unknown job kinds {', '.join(unknown)}; known: {', '.join(sorted(KINDS))}")
    if kind in settings.gpu_job_kinds:
        return True
    if kind == "train_lora":
        return settings.device == "cuda"
    if kind == "generate":
        return str((config.get("spec") or {}).get("device", "")).startswith("cuda")
    return False


def worker_has_gpu(settings: Settings) -> bool:
    return settings.worker_gpu if settings.worker_gpu is not None else cuda_present()


def enqueue(
    kind: str,
    config: dict[str, Any] | None = None,
    *,
    title: str = "",
    created_by: str = "",
    resumed_from: int | None = None,
    settings: Settings | None = None,
    queue: bool = True,
    requires_gpu: bool | None = None,
) -> int:
    """Create a queued job and hand it to the queue; start a local consumer when none is alive (settings.auto_worker).
    Returns the job id. With ``queue=False`` only the row is created: the caller runs it in its own process with
    ``workbench.jobs.runner.run(job_id)`` (the demo builder does, so a job that builds other jobs never waits on the
    queue it is part of). ``requires_gpu`` (default: ``needs_gpu``): only a consumer with a GPU takes the job."""
    settings = settings or get_settings()
    if kind not in KINDS:
        raise JobError(f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    config = dict(config or {})
    json.dumps(config)  # fail here, not in the worker, when the config cannot be stored
    gpu = needs_gpu(kind, config, settings) if requires_gpu is None else bool(requires_gpu)
    with session_scope(settings) as s:
        job = Job(kind=kind, title=title or kind, config=config, created_by=created_by, resumed_from=resumed_from,
                  metrics={}, result={}, requires_gpu=gpu)
        s.add(job)
        s.flush()
        job.log_path = str(log_path_for(job.id, settings))
        job_id = job.id
    path = log_path_for(job_id, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    if queue:
        _queue(settings, gpu)[1](job_id)
        if gpu and not heartbeat.gpu_worker_alive(settings):
            with session_scope(settings) as s:
                s.get(Job, job_id).message = ("waiting for a GPU worker (none is running: start `workbench worker` "
                                              "on a machine with a GPU)")
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


def reap_silent(silence: heartbeat.Silence, settings: Settings | None = None,
                worker_id: int | None = None) -> dict[str, list[int]]:
    """One round of judging the others by their heartbeats (each consumer runs it every beat): a running job of
    another machine silent for ``DEAD_AFTER`` beats is failed with the reason; another consumer silent as long is
    marked lost; a job a stopped or lost consumer had taken but not started is queued again. Returns the ids:
    ``{"failed": [...], "lost": [...], "requeued": [...]}``."""
    settings = settings or get_settings()
    limit, now = heartbeat.silence_limit(settings), time.monotonic()
    out: dict[str, list[int]] = {"failed": [], "lost": [], "requeued": []}
    with session_scope(settings) as s:
        workers = s.execute(select(Worker.id, Worker.host, Worker.last_seen)
                            .where(Worker.status == "alive", Worker.id != (worker_id or 0))).all()
        running = s.execute(select(Job.id, Job.host, Job.heartbeat_at, Job.started_at, Job.worker_id)
                            .where(Job.status == "running", Job.host != HOST)).all()
        claimed = s.execute(select(Job.id, Job.worker_id, Job.requires_gpu)
                            .join(Worker, Worker.id == Job.worker_id)
                            .where(Job.status == "queued", Worker.status.in_(("stopped", "lost")))).all()
    watched: set[tuple[str, int]] = set()
    for wid, host, last_seen in workers:
        watched.add(("worker", wid))
        quiet = silence.quiet_for(("worker", wid), last_seen, now)
        if quiet >= limit:
            with session_scope(settings) as s:
                if s.execute(update(Worker).where(Worker.id == wid, Worker.status == "alive",
                                                  Worker.last_seen == last_seen)
                             .values(status="lost", reason=f"no heartbeat for {quiet:.0f} s (seen from {HOST})")
                             ).rowcount:
                    out["lost"].append(wid)
    for job_id, host, beat, started, wid in running:
        watched.add(("job", job_id))
        last = beat or started
        quiet = silence.quiet_for(("job", job_id), last, now)
        if quiet < limit:
            continue
        with session_scope(settings) as s:
            job = s.get(Job, job_id)
            if job is None or job.status != "running" or (job.heartbeat_at or job.started_at) != last:
                continue  # it beat, or ended, meanwhile
            job.status, job.finished_at = "failed", utcnow()
            job.message = (f"no heartbeat from its process on {host} for {quiet:.0f} s (worker {wid}): the machine "
                           "died, was cut off, or the process was killed; it can be resumed")
            job.error = log_tail(job) or "(the log is empty)"
            out["failed"].append(job_id)
    for job_id, wid, gpu in claimed:
        with session_scope(settings) as s:
            if not s.execute(update(Job).where(Job.id == job_id, Job.status == "queued", Job.worker_id == wid)
                             .values(worker_id=None, host="", message=f"queued again: worker {wid} took it and "
                                     "stopped before starting it")).rowcount:
                continue
        _queue(settings, gpu)[1](job_id)
        out["requeued"].append(job_id)
    silence.keep_only(watched)
    return out


def _heartbeat_every(worker_id: int, settings: Settings) -> None:
    """The consumer's heartbeat thread: beat, then judge the others (``reap_silent``)."""
    silence = heartbeat.Silence()
    while True:
        time.sleep(settings.heartbeat_seconds)
        try:
            heartbeat.beat_worker(worker_id, settings)
            out = reap_silent(silence, settings, worker_id)
        except Exception as exc:  # noqa: BLE001 - the database is away for a moment: beat again next round
            print(f"[workbench] heartbeat failed ({type(exc).__name__}: {exc})", flush=True)
            continue
        for what, ids in out.items():
            if ids:
                print(f"[workbench] {what} {'workers' if what == 'lost' else 'jobs'} {ids}: no heartbeat for "
                      f"{heartbeat.silence_limit(settings):g} s", flush=True)


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
    """Record the end of job ``job_id`` whose process exited with ``returncode``, unless it wrote its own outcome;
    jobs that ran inside that same process (``run_inline``: the demo's training run and generation) end with it."""
    inside: list[int] = []

    def write() -> None:
        with session_scope() as s:
            job = s.get(Job, job_id)
            if job is not None and job.pid:
                inside[:] = s.scalars(select(Job.id).where(Job.status == "running", Job.host == HOST,
                                                           Job.pid == job.pid, Job.id != job_id))
            if job is None or job.status not in ("queued", "running"):
                return  # the job process wrote its own outcome
            job.finished_at = utcnow()
            if job.stop_requested:
                job.status, job.message = "stopped", f"stopped (exit code {returncode})"
            else:
                job.status = "failed"
                job.message = f"the job process exited with code {returncode} without finishing"
                job.error = log_tail(job) or "(the log is empty)"

    retry_database(write, f"recording how job {job_id}'s process ended")
    if inside:
        reconcile(job_ids=inside)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job runs in its own session: this reaches its children (accelerate, trainers) too
    except ProcessLookupError:
        pass


class _Consumer:
    """What this process's consumer is: its workers row, whether it has a GPU, and when it last had work."""

    worker_id: int | None = None
    gpu: bool = False
    last_busy: float = time.monotonic()


def _execute_job(job_id: int) -> None:
    """Huey task: run the job in a child process, watch for a stop request, escalate, record the outcome."""
    settings = get_settings()
    job = retry_database(lambda: get_job(job_id, settings), f"reading job {job_id}")
    if job.status != "queued":
        return  # stopped while queued, or already taken
    if job.requires_gpu and _Consumer.worker_id is not None and not _Consumer.gpu:
        _queue(settings, True)[1](job_id)  # on the wrong queue (queued by an older version): to the GPU consumers
        return
    # Take it: one consumer only, even if the task was delivered twice. Until its process runs it stays 'queued'.
    def take() -> bool:
        with session_scope(settings) as s:
            return bool(s.execute(update(Job).where(Job.id == job_id, Job.status == "queued", Job.worker_id.is_(None))
                                  .values(worker_id=_Consumer.worker_id, host=HOST)).rowcount)

    if not retry_database(take, f"taking job {job_id}"):
        return
    log_path = Path(job.log_path or log_path_for(job_id, settings))
    SUPERVISING.add(job_id)
    _Consumer.last_busy = time.monotonic()
    try:
        _supervise(job_id, job, log_path, settings)
    finally:
        SUPERVISING.discard(job_id)
        _Consumer.last_busy = time.monotonic()


def _supervise(job_id: int, job: Job, log_path: Path, settings: Settings) -> None:
    proc = start_job_process(job_id, job.kind, dict(job.config or {}), log_path, settings)
    log = open(log_path, "ab", buffering=0)

    def started() -> None:
        with session_scope(settings) as s:
            row = s.get(Job, job_id)
            row.pid, row.host = proc.pid, HOST
            if row.status == "queued":
                row.status, row.started_at, row.heartbeat_at = "running", utcnow(), utcnow()

    retry_database(started, f"recording job {job_id}'s process")
    grace = settings.stop_grace_seconds
    stop_seen_at: float | None = None
    term_sent_at: float | None = None
    beat_at = time.monotonic()
    while proc.poll() is None:
        time.sleep(0.25)
        now = time.monotonic()
        if now - beat_at >= settings.heartbeat_seconds:  # the job beats too; this covers a process slow to start
            beat_at = now
            try:
                heartbeat.beat_job(job_id, settings)
            except Exception:  # noqa: BLE001, S110 - a missed beat; the job's own beat or the next one counts
                pass
        if stop_seen_at is None:
            try:
                if get_job(job_id, settings).stop_requested:
                    stop_seen_at = now
            except Exception as exc:  # the database is away for a moment (a restart): look again next round
                if not database_unreachable(exc):
                    raise
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
    """One consumer per workspace with the SQLite queue (one machine); one per machine with Redis, whose machines
    may share the workspace on a network file system."""
    if settings.redis_url:
        return settings.path("workers", "".join(c if c.isalnum() or c in "-_." else "_" for c in HOST) + ".lock")
    return settings.path("worker.lock")


# Consumers this process started (``ensure_worker``): reaped once they exit (an auto-started one exits when idle), so
# a long-running app server does not collect a zombie process per idle exit.
_STARTED: list[subprocess.Popen] = []


def _reap_started() -> None:
    _STARTED[:] = [proc for proc in _STARTED if proc.poll() is None]


def worker_alive(settings: Settings | None = None) -> bool:
    """True when a consumer holds this workspace's worker lock (only meaningful on the same machine)."""
    settings = settings or get_settings()
    _reap_started()
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
    cmd = [sys.executable, "-m", "workbench.jobs"]
    if settings.worker_idle_exit_seconds > 0:
        cmd += ["--idle-exit", f"{settings.worker_idle_exit_seconds:g}"]
    with log.open("ab") as out:
        _STARTED.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True))
    return True


def _pending(settings: Settings, queues: list[str]) -> int:
    """Tasks waiting on the queues this consumer reads (a GPU job waiting for a GPU worker does not keep a CPU
    consumer up)."""
    return sum(get_huey(settings, name == GPU_QUEUE).pending_count() for name in queues)


def _exit_when_idle(seconds: float, lock, settings: Settings, queues: list[str], done: threading.Event) -> None:
    """Sets ``done`` once this consumer has had no job for ``seconds``. The lock is released before the queue is
    looked at once more, so a job queued meanwhile is either seen here or starts a new consumer (``ensure_worker``)."""
    while True:
        time.sleep(min(1.0, seconds / 4))
        if SUPERVISING or time.monotonic() - _Consumer.last_busy < seconds:
            continue
        fcntl.flock(lock, fcntl.LOCK_UN)
        if SUPERVISING or _pending(settings, queues):
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                break  # a new consumer holds the workspace now: leave the work to it
            _Consumer.last_busy = time.monotonic()
            continue
        break
    done.set()


def run_worker(workers: int = 1, settings: Settings | None = None, idle_exit: float = 0) -> None:
    """Run a Huey consumer in the foreground until interrupted (or, with ``idle_exit`` seconds, until it has had
    no job that long: the local consumer ``ensure_worker`` starts)."""
    settings = settings or get_settings()
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    path = _lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JobError(f"a worker is already running for workspace {settings.workspace_dir} on {HOST}") from None
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    gpu = worker_has_gpu(settings)
    queues = [QUEUE, GPU_QUEUE] if gpu else [QUEUE]
    _Consumer.worker_id, _Consumer.gpu = heartbeat.register_worker(gpu, queues, settings), gpu
    _Consumer.last_busy = time.monotonic()
    every = settings.reconcile_seconds
    fixed = reconcile(settings)
    if fixed:
        print(f"[workbench] marked jobs {fixed} as failed: their process was gone", flush=True)
    run_periodic(settings)
    threading.Thread(target=_reconcile_every, args=(every, settings), daemon=True, name="reconcile").start()
    threading.Thread(target=_heartbeat_every, args=(_Consumer.worker_id, settings), daemon=True,
                     name="heartbeat").start()
    consumers = [get_huey(settings, name == GPU_QUEUE).create_consumer(
        workers=workers, worker_type="thread", periodic=False, max_delay=1.0, check_worker_health=True)
        for name in queues]
    idle = threading.Event()
    if idle_exit > 0:
        def stop_when_idle() -> None:
            _exit_when_idle(idle_exit, lock, settings, queues, idle)
            consumers[0].stop_flag.set()  # ends consumers[0].run() below

        threading.Thread(target=stop_when_idle, daemon=True, name="idle-exit").start()
    print(f"[workbench] worker {_Consumer.worker_id} on {HOST} for {settings.workspace_dir} (pid {os.getpid()}, "
          f"{workers} at once, queues {', '.join(queues)}, heartbeat every {settings.heartbeat_seconds:g} s, "
          f"reconciling every {every:g} s" + (f", exits after {idle_exit:g} s idle" if idle_exit > 0 else "") + ")",
          flush=True)
    reason = "stopped"
    try:
        for consumer in consumers[1:]:
            consumer.start()  # its signal handlers are replaced by the first consumer's, which stops them all
        consumers[0].run()
    finally:
        graceful = idle.is_set() or consumers[0]._graceful
        for consumer in consumers:
            consumer.stop(graceful=graceful)  # graceful: a job taken at the last moment is supervised to its end
        if idle.is_set():
            reason = f"idle for {idle_exit:g} s"
            print(f"[workbench] no job for {idle_exit:g} s: exiting", flush=True)
        heartbeat.worker_stopped(_Consumer.worker_id, reason, settings)
