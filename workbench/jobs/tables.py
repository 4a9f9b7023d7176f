"""The ``workers`` table (migration 0016): one row per job consumer, with its heartbeat.

A consumer (``workbench worker``, or the local one the app starts) inserts its row at start-up, writes ``last_seen``
every ``heartbeat_seconds`` and marks itself ``stopped`` when it exits. One that stops beating (SIGKILL, power loss,
a cut cable) is marked ``lost`` by the others; what happens to its jobs is decided by the jobs' own heartbeats
(``workbench.jobs.heartbeat``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow

WORKER_STATUSES = ("alive", "stopped", "lost")


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    gpu: Mapped[bool] = mapped_column(Boolean, default=False)  # takes jobs that require a GPU
    status: Mapped[str] = mapped_column(String(16), default="alive", index=True)
    queues: Mapped[str] = mapped_column(String(200), default="")  # the Huey queues it consumes, comma-separated
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it stopped or was marked lost
