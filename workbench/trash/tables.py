"""The ``trash`` table (migration ``0022_trash``): one row per deleted dataset, training run or generation batch.

While a row is ``deleted`` the thing's own rows stay where they are (their ids stay taken, so nothing made meanwhile
can take them) and every listing leaves them out (``workbench.trash.hidden_keys``); its files wait under
``workspace/trash/<kind>-<row id>/``. A restore moves the files back and marks the row ``restored``; a purge deletes
the thing's rows and files for good and marks it ``purged``. Rows are never deleted: with the audit log they are the
record of what went where.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class TrashEntry(Base):
    __tablename__ = "trash"
    __table_args__ = (Index("ix_trash_kind_key_status", "kind", "key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # dataset | run | batch
    key: Mapped[str] = mapped_column(String(200))  # dataset id, run id, batch name
    label: Mapped[str] = mapped_column(String(300), default="")  # what the user knew it as
    status: Mapped[str] = mapped_column(String(12), default="deleted", index=True)  # deleted | restored | purged
    # [{"path": where it lived, "trash": where it waits}] in the order they were moved
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # counts shown in the confirmation and list
    deleted_by: Mapped[str] = mapped_column(String(100), default="")
    deleted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    restored_by: Mapped[str] = mapped_column(String(100), default="")
    restored_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    purged_by: Mapped[str] = mapped_column(String(100), default="")
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
