"""Reading and editing datasets: the queries and edits behind the Datasets page and ``workbench data``.

Every read is paginated or aggregated in SQL, so a page of the grid costs the same for 200 or 20,000 items.
Edits (captions, exclusions, deletions) need the ``datasets`` permission (``workbench.auth``) and write an audit
row, under the actor's name, in the same transaction.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import String, case, cast, delete, func, or_, select, update

from workbench.data.captions import MAX_CAPTION_CHARS, REGEX_TIMEOUT, caption_flags, find_replace, with_prefix
from workbench.data.images import analyse, thumb_path, write_thumbnail
from workbench.files import write_bytes_atomic
from workbench.data.tables import Dataset, Item
from workbench import trash
from workbench.db import audit, session_scope
from workbench.auth import Actor, UserInfo, require
from workbench.settings import Settings, get_settings

CAPTION_FLAGS = ("no_caption", "caption_fields_missing")
FLAG_HELP = {
    "tiny": "shorter side below a quarter of the base model's training resolution",
    "extreme_aspect": "aspect ratio beyond 3:1",
    "no_caption": "empty caption",
    "caption_fields_missing": "template fields were missing, or the caption holds None/NA",
    "exact_duplicate": "the same bytes as another item",
    "near_duplicate": "perceptual hash within 6 bits and a similar colour",
}


class DatasetError(ValueError):
    """A dataset or item that does not exist, or an edit that cannot be made; the message says which."""


@dataclass
class DatasetSummary:
    id: int
    name: str
    source_kind: str
    source: str
    items: int
    flagged: int
    excluded: int
    captioned: int
    created_at: Any


@dataclass
class ItemFilter:
    """Grid filters; empty values mean "any"."""

    category: str = ""
    brand: str = ""
    colour: str = ""
    flag: str = ""  # a flag name, "any" for any flag, "none" for unflagged
    text: str = ""  # caption or file name contains (case-insensitive)
    split: str = ""
    include_excluded: bool = True


@dataclass
class ItemPage:
    items: list[Item]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass
class DatasetStats:
    categories: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    caption_lengths: list[int] = field(default_factory=list)  # in words


def dataset_dir(dataset_id: int, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("datasets", str(dataset_id))


def image_path(item: Item, settings: Settings | None = None) -> Path:
    return dataset_dir(item.dataset_id, settings) / item.path


# -- datasets ------------------------------------------------------------------------------------------------------

def list_datasets(settings: Settings | None = None) -> list[DatasetSummary]:
    """Every dataset not in the trash, in id order."""
    with session_scope(settings) as s:
        def n(cond):
            return func.sum(case((cond, 1), else_=0))
        q = (select(Dataset, func.count(Item.id), n(cast(Item.flags, String) != "[]"), n(Item.excluded.is_(True)),
                    n(Item.caption != ""))
             .outerjoin(Item, Item.dataset_id == Dataset.id).where(Dataset.id.not_in(trash.hidden_ids("dataset")))
             .group_by(Dataset.id).order_by(Dataset.id))
        return [DatasetSummary(d.id, d.name, d.source_kind, d.source, n or 0, int(f or 0), int(x or 0), int(c or 0),
                               d.created_at) for d, n, f, x, c in s.execute(q)]


def get_dataset(ref: int | str, settings: Settings | None = None) -> Dataset:
    """A dataset by id or name (one in the trash is an error that says how to restore it)."""
    with session_scope(settings) as s:
        ds = s.get(Dataset, int(ref)) if str(ref).isdigit() else None
        if ds is None:
            ds = s.scalar(select(Dataset).where(Dataset.name == str(ref)))
        if ds is not None:
            gone = trash.in_trash(s, "dataset", ds.id)
            if gone is not None:
                raise DatasetError(f"dataset {ds.name!r} is in the trash (deleted by {gone.deleted_by}); restore it "
                                   f"with `workbench trash restore {gone.id}`")
        if ds is None:
            names = ", ".join(s.scalars(select(Dataset.name).where(Dataset.id.not_in(trash.hidden_ids("dataset")))
                                        .order_by(Dataset.id).limit(20)))
            raise DatasetError(f"no dataset {ref!r} (datasets: {names or 'none yet'})")
        return ds


# Jobs that read or write a dataset while they run: (kind, how their config names it).
_DATASET_JOBS = {"caption": lambda c, ds: str(c.get("dataset_id")) == str(ds.id),
                 "shop_crawl": lambda c, ds: c.get("dataset") == ds.name,
                 "train_lora": lambda c, ds: str((c.get("config") or {}).get("dataset") or "") == str(ds.id)}


def delete_dataset(actor: Actor, dataset_id: int, settings: Settings | None = None) -> trash.TrashInfo:
    """Put a dataset in the trash: hidden from every list and picker, its folder moved to workspace/trash/, for
    ``trash_undo_hours`` (then purged for good; ``workbench.trash.restore`` brings it back before). Refused while a
    job (captions, a shop import, a training run) uses it, and while its photos are a product's reference photos."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    from workbench.db import Job

    def check(s) -> None:
        ds = s.get(Dataset, dataset_id)
        if ds is None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        busy = [f"{j.kind} job {j.id} ({j.status})" for j in s.scalars(
            select(Job).where(Job.kind.in_(tuple(_DATASET_JOBS)), Job.status.in_(("queued", "running"))))
            if _DATASET_JOBS[j.kind](j.config or {}, ds)]
        if busy:
            raise DatasetError(f"dataset {ds.name!r} is in use by {', '.join(busy)}: stop it or let it finish first")
        linked = _product_photos(s, dataset_id)
        if linked:
            raise DatasetError(f"dataset {ds.name!r}: {linked[0]} photo(s) are reference photos of products "
                               f"({', '.join(linked[1][:5])}); unlink them on the Products tab first")

    with session_scope(settings) as s:
        ds = s.get(Dataset, dataset_id)
        if ds is None or trash.in_trash(s, "dataset", dataset_id) is not None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        name = ds.name
        items = s.scalar(select(func.count(Item.id)).where(Item.dataset_id == dataset_id)) or 0
    return trash.put(who, "dataset", dataset_id, name, [dataset_dir(dataset_id, settings)], {"items": items},
                     check=check, settings=settings)


def _product_photos(s, dataset_id: int) -> tuple[int, list[str]] | None:
    """(photos, SKUs) of this dataset's items that are products' photos; None when there are none (or no products)."""
    from sqlalchemy import inspect as sa_inspect, text

    if not sa_inspect(s.get_bind()).has_table("product_items"):
        return None
    rows = s.execute(text("SELECT p.sku FROM product_items pi JOIN items i ON i.id = pi.item_id "
                          "JOIN products p ON p.id = pi.product_id WHERE i.dataset_id = :d"), {"d": dataset_id}).all()
    return (len(rows), sorted({r[0] for r in rows})) if rows else None


def purge_dataset_rows(session, key: str) -> dict[str, Any]:
    """The trash's purge of a dataset: its items (their product links, embeddings and masks cascade) and its row."""
    dataset_id = int(key)
    n = session.execute(delete(Item).where(Item.dataset_id == dataset_id)).rowcount
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
    return {"items": n}


# -- items ---------------------------------------------------------------------------------------------------------

def _flag_like(flag: str):
    return cast(Item.flags, String).like(f'%"{flag}"%')


def _filtered(q, dataset_id: int, f: ItemFilter):
    q = q.where(Item.dataset_id == dataset_id)
    if f.category:
        q = q.where(Item.category == f.category)
    if f.brand:
        q = q.where(Item.brand == f.brand)
    if f.colour:
        q = q.where(Item.colour == f.colour)
    if f.split:
        q = q.where(Item.split == f.split) if f.split != "none" else q.where(Item.split.is_(None))
    if f.flag == "any":
        q = q.where(cast(Item.flags, String) != "[]")
    elif f.flag == "none":
        q = q.where(cast(Item.flags, String) == "[]")
    elif f.flag == "excluded":
        q = q.where(Item.excluded.is_(True))
    elif f.flag:
        q = q.where(_flag_like(f.flag))
    if f.text:
        needle = f"%{f.text.lower()}%"
        q = q.where(or_(func.lower(Item.caption).like(needle), func.lower(Item.source_key).like(needle)))
    if not f.include_excluded:
        q = q.where(Item.excluded.is_(False))
    return q


def query_items(dataset_id: int, filt: ItemFilter | None = None, page: int = 1, per_page: int = 24,
                settings: Settings | None = None) -> ItemPage:
    """One page of items (1-based), in id order, and the filtered total."""
    filt = filt or ItemFilter()
    page = max(1, page)
    with session_scope(settings) as s:
        total = s.scalar(_filtered(select(func.count(Item.id)), dataset_id, filt)) or 0
        pages = max(1, -(-total // per_page))
        page = min(page, pages)
        items = list(s.scalars(_filtered(select(Item), dataset_id, filt).order_by(Item.id)
                               .offset((page - 1) * per_page).limit(per_page)))
    return ItemPage(items, total, page, per_page)


def get_item(item_id: int, settings: Settings | None = None) -> Item:
    with session_scope(settings) as s:
        item = s.get(Item, item_id)
        if item is None:
            raise DatasetError(f"no item with id {item_id}")
        return item


def filter_options(dataset_id: int, settings: Settings | None = None) -> dict[str, list[str]]:
    """Distinct values for the grid's filter boxes."""
    with session_scope(settings) as s:
        def distinct(col):
            return [v for v in s.scalars(select(col).where(Item.dataset_id == dataset_id, col != "")
                                         .distinct().order_by(col))]
        flags = sorted({f for row in s.scalars(select(Item.flags).where(Item.dataset_id == dataset_id,
                                                                         cast(Item.flags, String) != "[]")
                                               .distinct()) for f in (row or [])})
        return {"category": distinct(Item.category), "brand": distinct(Item.brand), "colour": distinct(Item.colour),
                "flag": flags}


def stats(dataset_id: int, settings: Settings | None = None) -> DatasetStats:
    out = DatasetStats()
    with session_scope(settings) as s:
        for cat, n in s.execute(select(Item.category, func.count()).where(Item.dataset_id == dataset_id)
                                .group_by(Item.category).order_by(func.count().desc())):
            out.categories[cat or "(none)"] = n
        for sp, n in s.execute(select(Item.split, func.count()).where(Item.dataset_id == dataset_id)
                               .group_by(Item.split)):
            out.splits[sp or "(unsplit)"] = n
        flag_counts: Counter[str] = Counter()
        for flags, n in s.execute(select(cast(Item.flags, String), func.count()).where(Item.dataset_id == dataset_id)
                                  .group_by(cast(Item.flags, String))):
            for f in json.loads(flags or "[]"):
                flag_counts[f] += n
        excluded = s.scalar(select(func.count()).where(Item.dataset_id == dataset_id, Item.excluded.is_(True)))
        if excluded:
            flag_counts["excluded"] = excluded
        out.flags = dict(flag_counts.most_common())
        for w, h, cap in s.execute(select(Item.width, Item.height, Item.caption).where(Item.dataset_id == dataset_id)):
            out.widths.append(w)
            out.heights.append(h)
            out.caption_lengths.append(len(cap.split()))
    return out


def ensure_thumbnail(item: Item, settings: Settings | None = None) -> Path:
    """The item's thumbnail on disk (``workspace/thumbs``), made again if it was deleted."""
    settings = settings or get_settings()
    thumbs = settings.path("thumbs")
    path = thumb_path(thumbs, item.sha256)
    if not path.exists():
        write_thumbnail(analyse(image_path(item, settings).read_bytes()).thumb, thumbs, item.sha256)
    return path


# -- caption edits -------------------------------------------------------------------------------------------------

def _with_caption(item: Item, caption: str, source: str) -> None:
    caption = " ".join(caption.split())
    if len(caption) > MAX_CAPTION_CHARS:
        raise DatasetError(f"the caption of item {item.id} ({item.source_key}) would be {len(caption):,} characters "
                           f"long, too long (the limit is {MAX_CAPTION_CHARS:,}; the text encoder reads about 77 "
                           "tokens); shorten it. Nothing was changed")
    keep = [f for f in (item.flags or []) if f not in CAPTION_FLAGS]
    item.caption = caption
    item.caption_source = source
    item.flags = sorted(set(keep) | set(caption_flags(caption)))


def set_caption(actor: Actor, item_id: int, caption: str, settings: Settings | None = None) -> Item:
    """Edit one caption (the grid's detail view)."""
    who = require(actor, "datasets", settings=settings)
    with session_scope(settings) as s:
        item = s.get(Item, item_id)
        if item is None:
            raise DatasetError(f"no item with id {item_id}")
        before = item.caption
        _with_caption(item, caption, "edited")
        audit(s, who.username, "item.caption", "item", item_id, before={"caption": before},
              after={"caption": item.caption})
        return item


def _bulk(dataset_id: int, change, action: str, detail: dict[str, Any], filt: ItemFilter | None, who: UserInfo,
          settings: Settings | None) -> int:
    changed = 0
    with session_scope(settings) as s:
        if s.get(Dataset, dataset_id) is None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        for item in s.scalars(_filtered(select(Item), dataset_id, filt or ItemFilter())):
            new = change(item.caption)
            if new != item.caption:
                _with_caption(item, new, item.caption_source if item.caption_source else "edited")
                changed += 1
        audit(s, who.username, action, "dataset", dataset_id, after={**detail, "changed": changed})
    return changed


def bulk_find_replace(actor: Actor, dataset_id: int, find: str, replace: str, regex: bool = False,
                      ignore_case: bool = False,
                      filt: ItemFilter | None = None, *, settings: Settings | None = None) -> int:
    """Find/replace in every caption (of the filtered items). Returns how many captions changed."""
    who = require(actor, "datasets", settings=settings)
    find_replace("", find, replace, regex, ignore_case)  # validate once, before touching anything
    deadline = time.monotonic() + REGEX_TIMEOUT  # one budget for all the captions: a timeout rolls back every edit

    def change(caption: str) -> str:
        return find_replace(caption, find, replace, regex, ignore_case, timeout=deadline - time.monotonic())

    return _bulk(dataset_id, change, "dataset.caption_replace", {"find": find, "replace": replace, "regex": regex},
                 filt, who, settings)


def apply_prefix(actor: Actor, dataset_id: int, prefix: str, filt: ItemFilter | None = None, *,
                 settings: Settings | None = None) -> int:
    """Put the instance/trigger phrase in front of every caption (idempotent). Returns how many changed."""
    who = require(actor, "datasets", settings=settings)
    if not prefix.strip():
        raise DatasetError("the trigger prefix is empty")
    return _bulk(dataset_id, lambda c: with_prefix(c, prefix), "dataset.caption_prefix", {"prefix": prefix}, filt,
                 who, settings)


# -- duplicates and exclusions -------------------------------------------------------------------------------------

def duplicate_groups(dataset_id: int, limit: int = 200, settings: Settings | None = None) -> list[list[Item]]:
    """Groups of exact/near duplicates, largest first (items in id order)."""
    with session_scope(settings) as s:
        ids = s.execute(select(Item.dup_group, func.count()).where(Item.dataset_id == dataset_id,
                                                                   Item.dup_group.is_not(None))
                        .group_by(Item.dup_group).order_by(func.count().desc(), Item.dup_group).limit(limit)).all()
        groups = []
        for gid, _ in ids:
            groups.append(list(s.scalars(select(Item).where(Item.dataset_id == dataset_id, Item.dup_group == gid)
                                         .order_by(Item.id))))
        return groups


def set_excluded(actor: Actor, item_ids: list[int], excluded: bool, settings: Settings | None = None) -> int:
    who = require(actor, "datasets", settings=settings)
    with session_scope(settings) as s:
        n = s.execute(update(Item).where(Item.id.in_(item_ids)).values(excluded=excluded)).rowcount
        audit(s, who.username, "item.exclude" if excluded else "item.include", "item",
              ",".join(map(str, item_ids))[:100], after={"ids": item_ids, "excluded": excluded})
        return n


def resolve_group(actor: Actor, dataset_id: int, group: int, keep: list[int],
                  settings: Settings | None = None) -> int:
    """The user's choice for one duplicate group: keep ``keep``, exclude the rest (reversible). Returns excluded."""
    actor = require(actor, "datasets", settings=settings)
    with session_scope(settings) as s:
        members = list(s.scalars(select(Item.id).where(Item.dataset_id == dataset_id, Item.dup_group == group)))
    if not members:
        raise DatasetError(f"dataset {dataset_id} has no duplicate group {group}")
    unknown = set(keep) - set(members)
    if unknown:
        raise DatasetError(f"items {sorted(unknown)} are not in duplicate group {group} (members: {members})")
    set_excluded(actor, [i for i in members if i in keep], False, settings)
    drop = [i for i in members if i not in keep]
    return set_excluded(actor, drop, True, settings) if drop else 0


# -- export --------------------------------------------------------------------------------------------------------

def export_imagefolder(dataset_id: int, out_dir: str | Path, include_excluded: bool = False,
                       settings: Settings | None = None) -> Path:
    """The original files and a ``metadata.jsonl`` (file_name, text, split, attributes) in ``out_dir``."""
    settings = settings or get_settings()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    with session_scope(settings) as s:
        q = select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)
        if not include_excluded:
            q = q.where(Item.excluded.is_(False))
        for item in s.scalars(q):
            name = f"images/{item.id:06d}{Path(item.path).suffix}"
            shutil.copyfile(image_path(item, settings), out / name)
            lines.append(json.dumps({"file_name": name, "text": item.caption, "split": item.split,
                                     "source_key": item.source_key, **{f"attr_{k}": v for k, v in
                                                                        item.attributes.items()}},
                                    ensure_ascii=False, sort_keys=True))
    write_bytes_atomic(out / "metadata.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
    return out
