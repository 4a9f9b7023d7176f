"""Heartbeats of consumers and job processes (issue #23 item 2), and how a consumer judges the others' by them.

Every consumer writes its ``workers.last_seen`` each ``heartbeat_seconds`` (10 s by default); a running job's
``jobs.heartbeat_at`` is written as often by the job's own process and by its supervisor while that lives. A pid
means something only on its own machine (``supervisor.reconcile`` judges those), so a job running on another machine
is judged by its heartbeat: a consumer that sees it unchanged for ``DEAD_AFTER`` (3) intervals marks the job failed
with the reason, and a silent consumer ``lost``. Silence is measured on the judge's own monotonic clock (how long the
value it reads has not changed), never by comparing another machine's clock with ours. With the defaults a job of a
machine that died is failed within 40 s (30 s of silence + one round of the judge's own beat).

A job that was declared dead but is only cut off finds out at its next beat (its row is no longer ``running``) and
stops; the outcome recorded for it stays.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from workbench.db import Job, session_scope, utcnow
from workbench.jobs.store import HOST
from workbench.jobs.tables import Worker
from workbench.settings import Settings, get_settings

DEAD_AFTER = 3  # heartbeats missed before a job or a consumer is judged dead


def silence_limit(settings: Settings | None = None) -> float:
    """Seconds of unchanged heartbeat after which a job or a consumer counts as dead."""
    return DEAD_AFTER * (settings or get_settings()).heartbeat_seconds


# -- consumers ----------------------------------------------------------------------------------------------------

def register_worker(gpu: bool, queues: list[str], settings: Settings | None = None) -> int:
    with session_scope(settings) as s:
        row = Worker(host=HOST, pid=os.getpid(), gpu=gpu, status="alive", queues=",".join(queues))
        s.add(row)
        s.flush()
        return row.id


def beat_worker(worker_id: int, settings: Settings | None = None) -> None:
    """A consumer's heartbeat. One that was marked lost while cut off is alive again (its jobs' fate stands); one
    that recorded its own stop stays stopped (a last beat may come while it exits)."""
    with session_scope(settings) as s:
        s.execute(update(Worker).where(Worker.id == worker_id, Worker.status != "stopped")
                  .values(last_seen=utcnow(), status="alive"))


def worker_stopped(worker_id: int, reason: str, settings: Settings | None = None) -> None:
    with session_scope(settings) as s:
        s.execute(update(Worker).where(Worker.id == worker_id)
                  .values(status="stopped", stopped_at=utcnow(), last_seen=utcnow(), reason=reason))


def gpu_worker_alive(settings: Settings | None = None) -> bool:
    with session_scope(settings) as s:
        return s.scalar(select(Worker.id).where(Worker.status == "alive", Worker.gpu.is_(True)).limit(1)) is not None


@dataclass(frozen=True)
class WorkerInfo:
    id: int
    host: str
    pid: int
    gpu: bool
    status: str
    queues: str
    started_at: Any
    last_seen: Any
    reason: str


def list_workers(include_stopped: bool = False, settings: Settings | None = None) -> list[WorkerInfo]:
    with session_scope(settings) as s:
        q = select(Worker).order_by(Worker.id.desc())
        if not include_stopped:
            q = q.where(Worker.status != "stopped")
        return [WorkerInfo(w.id, w.host, w.pid, w.gpu, w.status, w.queues, w.started_at, w.last_seen, w.reason)
                for w in s.scalars(q.limit(200))]


# -- jobs ---------------------------------------------------------------------------------------------------------

def beat_job(job_id: int, settings: Settings | None = None) -> str | None:
    """A running job's heartbeat. Returns None while the job is running, else the status someone else recorded for
    it (it was stopped, or failed by another consumer that judged it dead): the caller then stops."""
    with session_scope(settings) as s:
        done = s.execute(update(Job).where(Job.id == job_id, Job.status == "running")
                         .values(heartbeat_at=utcnow())).rowcount
        if done:
            return None
        return s.scalar(select(Job.status).where(Job.id == job_id)) or "gone"


class Silence:
    """How long each watched heartbeat has stayed unchanged, on this process's clock."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[Any, float]] = {}

    def quiet_for(self, key: tuple[str, int], value: Any, now: float) -> float:
        seen = self._seen.get(key)
        if seen is None or seen[0] != value:
            self._seen[key] = (value, now)
            return 0.0
        return now - seen[1]

    def keep_only(self, keys: set[tuple[str, int]]) -> None:
        for key in set(self._seen) - keys:
            del self._seen[key]
