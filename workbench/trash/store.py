"""Soft delete with an undo window, shared by datasets, training runs and generation batches.

A capability's delete function checks what only it knows (the thing exists, no job of it is running) and calls
``put(who, kind, key, label, paths, detail, check=...)``: one transaction writes the ``trash`` row and the audit row
and moves the thing's files (folders or files) into ``workspace/trash/<kind>-<id>/`` with ``os.rename`` (atomic on
one filesystem; a folder on another filesystem is renamed beside itself as ``.trash-<kind>-<id>-<name>``). If the
transaction fails, the files are moved back. From then on the thing's rows stay in their tables but every listing
leaves them out (``hidden_keys(kind)``), until

- ``restore(actor, entry_id)``: the files move back to where they were (refused, naming the path, if something new
  lives there now); the rows show again;
- ``purge(actor)``: entries older than ``trash_undo_hours`` (default 24 h) lose their rows (the capability's
  ``KINDS[kind].purge`` function deletes them) and their files for good. Every job consumer runs ``purge_due`` with
  its periodic work (``workbench.jobs.store.PERIODIC``); ``workbench trash purge`` runs it by hand.

Each delete, restore and purge writes an audit row (``<kind>.delete|restore|purge``) with before/after.
"""
from __future__ import annotations

import datetime as dt
import errno
import importlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, cast, select
from sqlalchemy.orm import Session

from workbench.auth import Actor, UserInfo, require, system_actor
from workbench.db import audit, session_scope, utcnow, write_lock
from workbench.settings import Settings, get_settings
from workbench.trash.tables import TrashEntry


class TrashError(ValueError):
    """A delete, restore or purge that cannot be done; the message says why."""


@dataclass(frozen=True)
class Kind:
    noun: str  # how pages and messages name it
    permission: str  # delete and restore need it (workbench.auth.PERMISSIONS)
    purge: str  # "module:function(session, key) -> dict": deletes the thing's rows for good


# The functions are named, not imported: they live on the capabilities' floors, above this one.
KINDS: dict[str, Kind] = {
    "dataset": Kind("dataset", "datasets", "workbench.data.store:purge_dataset_rows"),
    "run": Kind("training run", "train", "workbench.train.runs:purge_run_rows"),
    "batch": Kind("generation batch", "generate", "workbench.generate.deletion:purge_batch_rows"),
}
PURGE_PERMISSION = "settings"  # purging before the window ends is an admin's call; the scheduled purge acts as system


@dataclass
class TrashInfo:
    id: int
    kind: str
    key: str
    label: str
    status: str
    deleted_by: str
    deleted_at: dt.datetime
    expires_at: dt.datetime
    detail: dict[str, Any]
    files: list[dict[str, str]]

    @property
    def noun(self) -> str:
        return KINDS[self.kind].noun if self.kind in KINDS else self.kind

    def seconds_left(self, now: dt.datetime | None = None) -> float:
        return max(0.0, (self.expires_at - (now or utcnow())).total_seconds())

    @classmethod
    def of(cls, e: TrashEntry) -> TrashInfo:
        return cls(e.id, e.kind, e.key, e.label, e.status, e.deleted_by, e.deleted_at, e.expires_at,
                   dict(e.detail or {}), list(e.files or []))


def undo_window(settings: Settings | None = None) -> dt.timedelta:
    return dt.timedelta(hours=(settings or get_settings()).trash_undo_hours)


def window_text(settings: Settings | None = None) -> str:
    """The stated undo time in words ("24 hours")."""
    hours = (settings or get_settings()).trash_undo_hours
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def trash_root(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("trash")


# -- reading --------------------------------------------------------------------------------------------------------

def hidden_keys(kind: str):
    """A subquery of the keys of ``kind`` now in the trash, for ``column.not_in(...)`` in a listing."""
    return select(TrashEntry.key).where(TrashEntry.kind == kind, TrashEntry.status == "deleted")


def hidden_ids(kind: str):
    """``hidden_keys`` as integers (dataset and run ids)."""
    return select(cast(TrashEntry.key, Integer)).where(TrashEntry.kind == kind, TrashEntry.status == "deleted")


def in_trash(session: Session, kind: str, key: Any) -> TrashInfo | None:
    e = session.scalar(select(TrashEntry).where(TrashEntry.kind == kind, TrashEntry.key == str(key),
                                                TrashEntry.status == "deleted"))
    return TrashInfo.of(e) if e is not None else None


def deleted_keys(kind: str, settings: Settings | None = None) -> set[str]:
    with session_scope(settings) as s:
        return set(s.scalars(hidden_keys(kind)))


def list_trash(include_done: bool = False, limit: int = 200, settings: Settings | None = None) -> list[TrashInfo]:
    """What waits in the trash, newest first (``include_done``: restored and purged entries too)."""
    with session_scope(settings) as s:
        q = select(TrashEntry).order_by(TrashEntry.id.desc()).limit(limit)
        if not include_done:
            q = q.where(TrashEntry.status == "deleted")
        return [TrashInfo.of(e) for e in s.scalars(q)]


def get_entry(entry_id: int, settings: Settings | None = None) -> TrashInfo:
    with session_scope(settings) as s:
        e = s.get(TrashEntry, int(entry_id))
        if e is None:
            raise TrashError(f"no trash entry {entry_id} (see `workbench trash list`)")
        return TrashInfo.of(e)


# -- moving files ---------------------------------------------------------------------------------------------------

def _move(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)


def _move_in(paths: Iterable[Path], folder: Path, tag: str) -> list[dict[str, str]]:
    """Move each existing path into ``folder`` (or beside itself when ``folder`` is on another filesystem). On an
    error, what was moved goes back and the error is raised."""
    moved: list[dict[str, str]] = []
    try:
        for i, path in enumerate(Path(p) for p in paths):
            if not path.exists():
                continue
            dest = folder / f"{i}-{path.name}"
            try:
                _move(path, dest)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                dest = path.with_name(f".{tag}-{path.name}")
                os.rename(path, dest)
            moved.append({"path": str(path), "trash": str(dest)})
    except BaseException:
        _move_back(moved)
        raise
    return moved


def _move_back(moved: list[dict[str, str]]) -> None:
    for m in reversed(moved):
        if Path(m["trash"]).exists() and not Path(m["path"]).exists():
            _move(Path(m["trash"]), Path(m["path"]))


# -- delete, restore, purge -----------------------------------------------------------------------------------------

def put(who: UserInfo, kind: str, key: Any, label: str, paths: Iterable[Path], detail: dict[str, Any] | None = None,
        check: Callable[[Session], None] | None = None, settings: Settings | None = None) -> TrashInfo:
    """Put a thing in the trash (a capability's delete function calls this after ``require``). ``check(session)``
    runs inside the locked transaction (e.g. "no job of it is running") and raises to refuse."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    settings = settings or get_settings()
    with session_scope(settings) as s:
        write_lock(s, "trash")
        done = in_trash(s, kind, key)
        if done is not None:
            raise TrashError(f"{KINDS[kind].noun} {label!r} is already in the trash (entry {done.id}, deleted by "
                             f"{done.deleted_by})")
        if check is not None:
            check(s)
        now = utcnow()
        e = TrashEntry(kind=kind, key=str(key), label=label[:300], files=[], detail=dict(detail or {}),
                       deleted_by=who.username, deleted_at=now, expires_at=now + undo_window(settings))
        s.add(e)
        s.flush()
        moved = _move_in(list(paths), trash_root(settings) / f"{kind}-{e.id}", f"trash-{kind}-{e.id}")
        try:
            e.files = moved
            audit(s, who.username, f"{kind}.delete", kind, key,
                  before={"name": label, "status": "active", **e.detail},
                  after={"status": "deleted", "trash_id": e.id, "expires_at": e.expires_at.isoformat(),
                         "files": moved})
            s.flush()
            info = TrashInfo.of(e)
            s.commit()
        except BaseException:
            _move_back(moved)
            raise
    return info


def restore(actor: Actor, entry_id: int, settings: Settings | None = None) -> TrashInfo:
    """Bring a deleted thing back: its files to where they were, its rows into every listing."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        write_lock(s, "trash")
        e = s.get(TrashEntry, int(entry_id))
        if e is None:
            raise TrashError(f"no trash entry {entry_id} (see `workbench trash list`)")
        who = require(actor, KINDS[e.kind].permission, s)
        if e.status != "deleted":
            raise TrashError(f"trash entry {e.id} ({KINDS[e.kind].noun} {e.label!r}) was already {e.status}"
                             + (" and cannot come back" if e.status == "purged" else ""))
        taken = [m["path"] for m in e.files or [] if Path(m["path"]).exists()]
        if taken:
            raise TrashError(f"cannot restore {KINDS[e.kind].noun} {e.label!r}: {', '.join(taken)} exists again; "
                             "move it away first")
        lost = [m["trash"] for m in e.files or [] if not Path(m["trash"]).exists()]
        if lost:
            raise TrashError(f"cannot restore {KINDS[e.kind].noun} {e.label!r}: its files are gone from the trash "
                             f"({', '.join(lost)})")
        moved: list[dict[str, str]] = []
        try:
            for m in e.files or []:
                _move(Path(m["trash"]), Path(m["path"]))
                moved.append(m)
            e.status, e.restored_by, e.restored_at = "restored", who.username, utcnow()
            audit(s, who.username, f"{e.kind}.restore", e.kind, e.key,
                  before={"status": "deleted", "trash_id": e.id, "deleted_by": e.deleted_by},
                  after={"status": "active", "name": e.label, "files": [m["path"] for m in moved]})
            info = TrashInfo.of(e)
            s.commit()
        except BaseException:
            for m in reversed(moved):  # back into the trash: the entry stays as it was
                _move(Path(m["path"]), Path(m["trash"]))
            raise
    folder = trash_root(settings) / f"{info.kind}-{info.id}"
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return info


def _purger(kind: str) -> Callable[[Session, str], dict[str, Any]]:
    module, func = KINDS[kind].purge.split(":")
    return getattr(importlib.import_module(module), func)


def purge(actor: Actor, entry_id: int | None = None, *, due_only: bool = True, now: dt.datetime | None = None,
          settings: Settings | None = None) -> list[TrashInfo]:
    """Delete for good the entries whose window has ended (``due_only``), or entry ``entry_id`` (``due_only=False``:
    even before its window ends). Rows go first, then files: a crash between leaves only files in workspace/trash."""
    settings = settings or get_settings()
    now = now or utcnow()
    who = require(actor, PURGE_PERMISSION, settings=settings)
    with session_scope(settings) as s:
        q = select(TrashEntry.id).where(TrashEntry.status == "deleted").order_by(TrashEntry.id)
        if entry_id is not None:
            q = q.where(TrashEntry.id == int(entry_id))
        if due_only:
            q = q.where(TrashEntry.expires_at <= now)
        ids = list(s.scalars(q))
    if entry_id is not None and not ids:
        info = get_entry(entry_id, settings)
        if info.status != "deleted":
            raise TrashError(f"trash entry {entry_id} was already {info.status}")
        raise TrashError(f"trash entry {entry_id} can still be restored until {info.expires_at:%Y-%m-%d %H:%M} UTC; "
                         "purge it now on purpose with --now")
    done = []
    for i in ids:
        with session_scope(settings) as s:
            write_lock(s, "trash")
            e = s.get(TrashEntry, i)
            if e is None or e.status != "deleted":
                continue  # another consumer's purge or a restore got there first
            counts = _purger(e.kind)(s, e.key) or {}
            e.status, e.purged_by, e.purged_at = "purged", who.username, utcnow()
            audit(s, who.username, f"{e.kind}.purge", e.kind, e.key,
                  before={"status": "deleted", "trash_id": e.id, "name": e.label, "deleted_by": e.deleted_by,
                          "deleted_at": e.deleted_at.isoformat(), **counts},
                  after={"status": "purged"})
            info = TrashInfo.of(e)
        for m in info.files:
            target = Path(m["trash"])
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        shutil.rmtree(trash_root(settings) / f"{info.kind}-{info.id}", ignore_errors=True)
        done.append(info)
    return done


def purge_due(settings: Settings | None = None) -> list[int]:
    """The scheduled purge (``workbench.jobs.store.PERIODIC``): entries past their window. Queues no job."""
    purge(system_actor("system"), settings=settings)
    return []
