"""The one entry point for getting photos into a dataset: ``import_dataset(source, ...)``.

    from workbench.data import import_dataset
    report = import_dataset("mia", "path/to/styles.csv", name="kaggle-small")   # mia needs ``datasets``
    print(report.summary())          # added / already present / skipped, with a reason for every skip

Pipeline: ``sources.open_source`` reads the source (folder, CSV, saved HF dataset, parquet, hub name, zip) into
candidates; ``images.ingest_one`` checks, hashes and thumbnails each one (in worker processes when there are many);
the rows are written in one transaction; duplicates are recomputed for the whole dataset.

One row per photo: (dataset_id, sha256) is unique, and rows go in with INSERT ... ON CONFLICT DO NOTHING inside the
write transaction, so imports running at once into one dataset store each photo once (the loser counts it as
"already present"); two imports creating the same new dataset name both import into the one dataset.

Atomicity (all-or-nothing at the dataset level): image files are written to a staging folder
``workspace/datasets/.import-<pid>-<random>/`` and moved into ``datasets/<id>/images/`` inside the same database
transaction that inserts the rows; if anything fails before the commit, the moved files and (for a new dataset) its
folder are removed and the transaction rolls back, so there is no half-imported dataset. A process killed outright
leaves at most its staging folder (removed by the next import) and content-addressed files that no row refers to.
The import is not resumable: running it again is cheap, because files whose bytes are already in the dataset are
reported as "already present" and add nothing.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench import trash
from workbench.data import dedupe
from workbench.data.captions import DEFAULT_TEMPLATE, MAX_CAPTION_CHARS, caption_flags, cut_caption
from workbench.data.images import image_flags, ingest_one, init_worker, tiny_side
from workbench.data.sources import Candidate, Skip, derive_columns, open_source
from workbench.data.tables import Dataset, Item
from workbench.db import audit, session_scope, utcnow, write_lock
from workbench.files import write_json_atomic
from workbench.jobs import pid_alive
from workbench.auth import Actor, require
from workbench.procs import plain_main
from workbench.settings import Settings, get_settings

Progress = Callable[[int, "int | None", str], None]
POOL_MIN_ITEMS = 64  # below this, worker start-up costs more than it saves
CHUNK = 512  # candidates in flight at once (bounds memory for sources that carry image bytes)
STORED_SKIPS = 1000  # skips kept in the dataset's import history (the report returned has them all)


class ImportError_(ValueError):
    """Raised for a dataset that cannot be found or named; sources raise SourceError."""


@dataclass
class ImportReport:
    dataset_id: int | None
    dataset_name: str
    kind: str
    source: str
    added: int = 0
    already_present: int = 0
    skipped: list[Skip] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    products: dict[str, int] = field(default_factory=dict)  # created / updated / linked (workbench.products)

    @property
    def seen(self) -> int:
        return self.added + self.already_present + len(self.skipped)

    def summary(self) -> str:
        lines = [f"{self.kind} import of {self.source} into dataset {self.dataset_name!r}"
                 f"{f' (id {self.dataset_id})' if self.dataset_id else ''}: {self.added} added, "
                 f"{self.already_present} already present, {len(self.skipped)} skipped in {self.seconds:.1f} s"]
        if self.flags:
            lines.append("flags: " + ", ".join(f"{k} {v}" for k, v in sorted(self.flags.items())))
        if self.duplicates.get("groups"):
            lines.append(f"duplicate groups: {self.duplicates['groups']} (exact items {self.duplicates['exact']}, "
                         f"near items {self.duplicates['near']})")
        lines.extend(self.notes)
        lines.extend(f"skipped {s}" for s in self.skipped)
        return "\n".join(lines)

    def as_dict(self, max_skips: int = STORED_SKIPS) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = [{"where": s.where, "reason": s.reason} for s in self.skipped[:max_skips]]
        d["skipped_count"] = len(self.skipped)
        return d


MOVING = "moving.json"  # in a staging folder: the files its import is moving into a dataset, written before the moves


def _dead_staging(root: Path) -> list[Path]:
    """Staging folders of imports whose process is gone."""
    found = []
    for p in root.glob(".import-*") if root.is_dir() else []:
        try:
            pid = int(p.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not pid_alive(pid):
            found.append(p)
    return found


def _clean_stale_staging(root: Path) -> None:
    """Remove the staging folders of dead imports that never began moving files (the others need the commit lock:
    ``_undo_dead_moves``)."""
    for p in _dead_staging(root):
        if not (p / MOVING).exists():
            shutil.rmtree(p, ignore_errors=True)


def _undo_dead_moves(s: Session, settings: Settings) -> None:
    """Called holding the import commit lock: for each import that died between its moves and its commit, remove
    the files it moved that no row refers to, and the folder of a dataset it was creating that no row has."""
    for staging in _dead_staging(settings.path("datasets")):
        try:
            moving = json.loads((staging / MOVING).read_text())
        except (OSError, ValueError):
            shutil.rmtree(staging, ignore_errors=True)
            continue
        dataset_id = int(moving["dataset_id"])
        referenced = set(s.scalars(select(Item.path).where(Item.dataset_id == dataset_id,
                                                           Item.path.in_(moving["files"]))))
        folder = settings.path("datasets", str(dataset_id))
        for rel in set(moving["files"]) - referenced:
            (folder / rel).unlink(missing_ok=True)
        if moving.get("created") and s.get(Dataset, dataset_id) is None:
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _chunks(it: Iterator[Candidate], n: int) -> Iterator[list[Candidate]]:
    while True:
        chunk = list(islice(it, n))
        if not chunk:
            return
        yield chunk


def tiny_threshold(settings: Settings | None = None) -> int:
    """Shorter sides below this many px are flagged ``tiny`` in this workspace: a quarter of its base model's
    training resolution (``images.tiny_side``; SDXL 256 px, the 64-px demo model 16 px)."""
    from workbench.models.sources import native_size

    return tiny_side(native_size((settings or get_settings()).models.sdxl_base))


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def import_dataset(
    actor: Actor, source: str | Path,
    *,
    name: str | None = None,
    dataset_id: int | None = None,
    template: str = DEFAULT_TEMPLATE,
    caption_column: str | None = None,
    image_column: str | None = None,
    kream: bool | None = None,
    images_dir: str | Path | None = None,
    workers: int | None = None,
    max_pixels: int | None = None,
    progress: Progress | None = None,

    settings: Settings | None = None,
) -> ImportReport:
    """Import ``source`` into a new dataset (``name``, default the source's name) or into an existing one
    (``dataset_id``, or a ``name`` that exists). Returns the report; raises SourceError when the source as a whole
    cannot be read. See the module docstring for what a failure leaves behind. ``created_by`` needs the ``datasets``
    permission."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    started = time.monotonic()
    datasets_root = settings.path("datasets")
    datasets_root.mkdir(parents=True, exist_ok=True)
    _clean_stale_staging(datasets_root)
    with session_scope(settings) as s:
        if dataset_id is not None:
            ds = s.get(Dataset, dataset_id)
            if ds is None:
                raise ImportError_(f"no dataset with id {dataset_id}")
        else:
            name = (name or Path(str(source).rstrip("/")).stem or "dataset").strip()[:200]
            ds = s.scalar(select(Dataset).where(Dataset.name == name))
        gone = trash.in_trash(s, "dataset", ds.id) if ds is not None else None
        if gone is not None:
            raise ImportError_(f"dataset {ds.name!r} is in the trash (entry {gone.id}): restore it "
                               f"(`workbench trash restore {gone.id}`) or import under another name")
        target_id = ds.id if ds else None
        target_name = ds.name if ds else name
        known = frozenset(s.scalars(select(Item.sha256).where(Item.dataset_id == target_id))) if ds else frozenset()
    staging = datasets_root / f".import-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (staging / "images").mkdir(parents=True)
    thumbs = settings.path("thumbs")
    src = None
    try:
        src = open_source(source, template=template, caption_column=caption_column, image_column=image_column,
                          kream=kream, images_dir=images_dir, staging=staging)
        report = ImportReport(target_id, target_name, src.kind, src.location)
        records = _ingest(src, staging, thumbs, known, workers, max_pixels, progress)
        min_side = tiny_threshold(settings)
        for _, rec in records:  # "tiny" is judged against this workspace's base model (the workers use SDXL's)
            if not rec["error"]:
                rec["flags"] = image_flags(rec["width"], rec["height"], min_side)
        report.skipped = list(src.skips)
        rows = []
        seen_keys: set[str] = set()
        seen_sha: dict[str, str] = {}
        cut: list[str] = []
        for cand, rec in records:
            if rec["error"]:
                report.skipped.append(Skip(cand.key, rec["error"]))
                continue
            if rec["sha256"] in known:
                report.already_present += 1
                continue
            if cand.key in seen_keys:
                report.skipped.append(Skip(cand.key, "the same name appears twice in the source"))
                continue
            if rec["sha256"] in seen_sha:  # a dataset holds each photo once (unique dataset_id, sha256)
                report.skipped.append(Skip(cand.key, f"the same bytes as {seen_sha[rec['sha256']]} (an exact "
                                                     "duplicate; the photo is stored once)"))
                continue
            seen_keys.add(cand.key)
            seen_sha[rec["sha256"]] = cand.key
            if len(cand.caption) > MAX_CAPTION_CHARS:
                cand.caption = cut_caption(cand.caption)
                cut.append(cand.key)
            category, brand, colour = derive_columns(cand.attributes)
            flags = sorted(set(rec["flags"]) | set(caption_flags(cand.caption, cand.missing_fields)))
            rows.append({
                "source_key": cand.key[:1000], "path": rec["path"], "sha256": rec["sha256"], "phash": rec["phash"],
                "color": rec["color"], "width": rec["width"], "height": rec["height"], "format": rec["format"],
                "mode": rec["mode"], "file_size": rec["file_size"], "caption": cand.caption,
                "caption_source": cand.caption_source, "attributes": _jsonable(cand.attributes),
                "category": category, "brand": brand, "colour": colour, "source": src.kind, "split": None,
                "flags": flags, "dup_group": None, "excluded": False, "created_at": utcnow(),
            })
        report.notes.extend(src.notes)
        if cut:
            report.notes.append(f"{len(cut)} caption(s) longer than {MAX_CAPTION_CHARS:,} characters were cut to "
                                f"that length: {', '.join(cut[:20])}{' ...' if len(cut) > 20 else ''}")
        for r in rows:
            for f in r["flags"]:
                report.flags[f] = report.flags.get(f, 0) + 1
        if not rows and target_id is None:
            report.notes.append("nothing could be imported, so no dataset was created")
            report.seconds = time.monotonic() - started
            return report
        if progress:
            progress(report.seen, report.seen, "writing to the database")
        _commit(report, rows, staging, settings, source=str(source), template=template if src.kind == "csv" else "",
                created_by=who.username)
        report.seconds = time.monotonic() - started
        return report
    finally:
        if src is not None:
            src.close()
        shutil.rmtree(staging, ignore_errors=True)


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, float) and v != v:
            v = None
        out[str(k)] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    return out


def _ingest(src, staging: Path, thumbs: Path, known: frozenset[str], workers: int | None, max_pixels: int | None,
            progress: Progress | None) -> list[tuple[Candidate, dict[str, Any]]]:
    workers = workers or default_workers()
    use_pool = workers > 1 and (src.total is None or src.total >= POOL_MIN_ITEMS)
    out: list[tuple[Candidate, dict[str, Any]]] = []
    pool = None
    done = 0
    try:
        if use_pool:
            # spawn, not fork: the caller may be a Streamlit server or a job process with threads and DB connections.
            with plain_main():
                pool = multiprocessing.get_context("spawn").Pool(workers, initializer=init_worker, initargs=(known,))
        else:
            init_worker(known)
        for chunk in _chunks(src.candidates, CHUNK):
            tasks = [(c.key, str(c.path) if c.path else None, c.data, str(staging / "images"), str(thumbs),
                      max_pixels) for c in chunk]
            results = pool.imap(ingest_one, tasks, chunksize=8) if pool else map(ingest_one, tasks)
            for cand, rec in zip(chunk, results):
                cand.data = None  # free the bytes: they are on disk now
                out.append((cand, rec))
                done += 1
                if progress and (done % 25 == 0 or done == src.total):
                    progress(done, src.total, f"checked {done}" + (f" of {src.total}" if src.total else ""))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        init_worker(frozenset())
    return out


def _insert_ignoring(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str],
                     returning: Any) -> list[Any]:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, returning ``returning`` of the rows that went in (SQLite and
    PostgreSQL): a row another transaction committed first is left alone, not an IntegrityError."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        raise ImportError_(f"imports need SQLite or PostgreSQL, not {dialect}")
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=keys).returning(returning)
    if len(rows) == 1:
        return list(session.scalars(stmt, rows[0]))
    return list(session.scalars(stmt, rows)) if rows else []


def _target_dataset(s: Session, report: ImportReport, source: str, template: str,
                    created_by: str) -> tuple[Dataset, bool]:
    """The dataset to write into, and whether this import created it. When another import created the same name
    since this one started, both import into it (the page's rule: an existing name adds to it); the report says so."""
    if report.dataset_id is not None:
        ds = s.get(Dataset, report.dataset_id)
        if ds is None:
            raise ImportError_(f"dataset {report.dataset_name!r} (id {report.dataset_id}) was deleted during the "
                               "import; nothing was imported")
        return ds, False
    now = utcnow()
    new_id = _insert_ignoring(s, Dataset.__table__, [{
        "name": report.dataset_name, "description": "", "source": source[:1000], "source_kind": report.kind,
        "caption_template": template, "imports": [], "split_config": {}, "created_by": created_by,
        "created_at": now, "updated_at": now}], ["name"], Dataset.id)
    ds = s.get(Dataset, new_id[0]) if new_id else s.scalar(select(Dataset).where(Dataset.name == report.dataset_name))
    if not new_id:
        report.notes.append(f"a dataset named {report.dataset_name!r} was just created by another import; these "
                            "photos were added to it (photos both imports hold are stored once)")
    return ds, bool(new_id)


def _commit(report: ImportReport, rows: list[dict[str, Any]], staging: Path, settings: Settings, *, source: str,
            template: str, created_by: str) -> None:
    """Write the rows and move their files in one transaction. The rows go in first, so the write lock is held
    (SQLite) before any file moves, and a photo another import committed meanwhile is counted as already present."""
    moved: list[Path] = []
    new_dir: Path | None = None
    try:
        with session_scope(settings) as s:
            write_lock(s, "dataset-import")  # one import commits at a time: _undo_dead_moves races no commit
            _undo_dead_moves(s, settings)
            ds, created = _target_dataset(s, report, source, template, created_by)
            if created:
                new_dir = settings.path("datasets", str(ds.id))
            inserted = set(_insert_ignoring(s, Item.__table__, [{**r, "dataset_id": ds.id} for r in rows],
                                            ["dataset_id", "sha256"], Item.sha256))
            dest = settings.path("datasets", str(ds.id), "images")
            dest.mkdir(parents=True, exist_ok=True)
            # What a kill from here to the commit would leave behind, for the next import to remove
            write_json_atomic(staging / MOVING, {"dataset_id": ds.id, "created": created,
                                                 "files": [r["path"] for r in rows if r["sha256"] in inserted]})
            try:
                for r in rows:
                    f = staging / r["path"]
                    if r["sha256"] in inserted and f.exists() and not (dest / f.name).exists():
                        os.replace(f, dest / f.name)
                        moved.append(dest / f.name)
                report.duplicates = dedupe.recompute(s, ds.id)
            except BaseException:  # undo the moves while this transaction still holds the write lock
                for p in moved:
                    p.unlink(missing_ok=True)
                moved.clear()
                raise
            report.added = len(inserted)
            report.already_present += len(rows) - len(inserted)
            report.dataset_id, report.dataset_name = ds.id, ds.name
            ds.imports = [*(ds.imports or []), {**report.as_dict(), "at": utcnow().isoformat(timespec="seconds")}]
            ds.updated_at = utcnow()
            audit(s, created_by, "dataset.import", "dataset", ds.id,
                  after={"source": source, "added": report.added, "skipped": len(report.skipped)})
    except BaseException:
        for p in moved:
            p.unlink(missing_ok=True)
        if new_dir is not None:
            shutil.rmtree(new_dir, ignore_errors=True)
            report.dataset_id = None
        report.added = 0
        raise
