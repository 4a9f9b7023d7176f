"""Deleting a generation batch (``workbench.trash``): ``delete_batch(actor, name)`` and the purge of its rows.

A batch in the trash leaves every list (the Generate page's results and batch picker, the review queue, exports,
evaluation image sets); its folder ``workspace/generations/<batch>/`` (and any of its files kept elsewhere) waits in
``workspace/trash/`` for ``trash_undo_hours``; ``workbench.trash.restore`` brings images, decisions and files back as
they were. Approved images may be deleted (the confirmation counts them): an export already made is its own zip under
``workspace/exports/`` and stays. A purge deletes the images' rows with their decisions, checks, videos and product
links; evaluation rows keep their scores with the image link emptied, and an image of another batch that replaced one
of these keeps its image, without the link.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect as sa_inspect, select, text

from workbench import trash
from workbench.auth import Actor, require
from workbench.db import AuditLog, Job, session_scope
from workbench.generate.pipeline import GenerationError
from workbench.generate.tables import Generation, GenerationVideo
from workbench.settings import get_settings


# Batches the pages write into with no name to choose (one-click images on the Generate page, product scenes): shared
# by every user and never finished, so deleting one would stop those buttons for the whole undo window.
SHARED_BATCHES = {"page": "the Generate page's one-click images",
                  "scenes": "the product scenes made on the Generate page"}


@dataclass
class BatchSummary:
    """What deleting a batch takes away: shown before the user confirms."""

    name: str
    images: int  # kept images (the ones review sees)
    attempts: int  # every row, gate attempts included
    approved: int
    exported: int  # approved images that appear in an export already made
    running: list[int]  # ids of generate jobs writing into it

    def warning(self) -> str:
        parts = [f"{self.images} image(s)"]
        if self.approved:
            parts.append(f"{self.approved} approved")
        if self.exported:
            parts.append(f"{self.exported} already exported (the export zips stay in exports/)")
        return ", ".join(parts)


def _job_batch(job: Job) -> str:
    return (job.config or {}).get("batch") or f"job-{job.id}"


def _running(s, name: str) -> list[int]:
    return [j.id for j in s.scalars(select(Job).where(Job.kind == "generate", Job.status.in_(("queued", "running"))))
            if _job_batch(j) == name]


def batch_summary(name: str) -> BatchSummary:
    with session_scope() as s:
        rows = s.execute(select(Generation.id, Generation.kept, Generation.review_status)
                         .where(Generation.batch == name)).all()
        if not rows or trash.in_trash(s, "batch", name) is not None:
            raise GenerationError(f"no generation batch {name!r}")
        approved = {r.id for r in rows if r.kept and r.review_status == "approved"}
        exported: set[int] = set()
        for after in s.scalars(select(AuditLog.after).where(AuditLog.action == "review.export")):
            exported |= approved & set((after or {}).get("generation_ids") or [])
        return BatchSummary(name, sum(1 for r in rows if r.kept), len(rows), len(approved), len(exported),
                            _running(s, name))


def _files(s, name: str) -> list[Path]:
    """The batch's folder, then any of its files kept outside it (images, videos)."""
    root = get_settings().path("generations").resolve()
    folder = (root / name).resolve()
    paths = [folder] if folder.parent == root else []
    rows = [g for g, in s.execute(select(Generation.image_path).where(Generation.batch == name))]
    ids = select(Generation.id).where(Generation.batch == name)
    for v in s.scalars(select(GenerationVideo).where(GenerationVideo.generation_id.in_(ids))):
        rows += [v.mp4_path, v.gif_path, v.sidecar_path]
    for p in rows:
        if p and Path(p).exists() and not Path(p).resolve().is_relative_to(folder):
            paths.append(Path(p))
    return paths


def delete_batch(actor: Actor, name: str) -> trash.TrashInfo:
    """Put generation batch ``name`` in the trash (``generate``). Refused while a job generates into it."""
    who = require(actor, "generate")
    if name in SHARED_BATCHES:
        raise GenerationError(f"batch {name!r} holds {SHARED_BATCHES[name]}, everyone's, and the page keeps adding to "
                              "it: it cannot be deleted as a whole")
    summary = batch_summary(name)

    def check(s) -> None:
        running = _running(s, name)
        if running:
            raise GenerationError(f"batch {name!r} is being generated (job {running[-1]}): stop it first "
                                  f"(`workbench jobs stop {running[-1]}` or the Generate page), then delete it")

    with session_scope() as s:
        paths = _files(s, name)
    detail = {"images": summary.images, "attempts": summary.attempts, "approved": summary.approved,
              "exported": summary.exported}
    return trash.put(who, "batch", name, name, paths, detail, check=check)


def purge_batch_rows(session, key: str) -> dict[str, Any]:
    """The trash's purge of a batch: see the module docstring for what goes and what is only unlinked."""
    ids = [i for i, in session.execute(select(Generation.id).where(Generation.batch == key))]
    if not ids:
        return {"images": 0}
    tables = set(sa_inspect(session.get_bind()).get_table_names())
    marks = ",".join(str(int(i)) for i in ids)  # integers from the database: safe to inline, no bind-parameter cap
    inside = f"generation_id IN ({marks})"
    if "reviews" in tables:
        session.execute(text(f"DELETE FROM review_tags WHERE review_id IN (SELECT id FROM reviews WHERE {inside})"))
        session.execute(text(f"DELETE FROM reviews WHERE {inside}"))
        session.execute(text(f"DELETE FROM review_checks WHERE {inside}"))
    for table in ("generation_products", "generation_videos"):
        if table in tables:
            session.execute(text(f"DELETE FROM {table} WHERE {inside}"))
    if "evaluation_images" in tables:
        session.execute(text(f"UPDATE evaluation_images SET generation_id = NULL WHERE {inside}"))
    session.execute(text(f"UPDATE generations SET replaces_id = NULL WHERE replaces_id IN ({marks}) "
                         f"AND batch != :b"), {"b": key})
    session.execute(text(f"UPDATE generations SET replaces_id = NULL WHERE id IN ({marks})"))
    n = session.execute(text(f"DELETE FROM generations WHERE id IN ({marks})")).rowcount
    return {"images": n}

