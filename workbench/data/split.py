"""Train/val/test split with a fixed seed, stratified by category when the dataset has categories.

Each category (``items.category``; one group when there is none) is shuffled with ``random.Random(f"{seed}:{cat}")``
over its item ids in id order, then cut: ``round(n * val)`` to val, ``round(n * test)`` to test, the rest to train,
with at least one train item per category. Same seed and items: the same split. Excluded items get no split.
Splitting needs the ``datasets`` permission.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, update

from workbench.data.store import DatasetError
from workbench.data.tables import Dataset, Item
from workbench.db import audit, session_scope, utcnow
from workbench.auth import Actor, require
from workbench.settings import Settings

SPLITS = ("train", "val", "test")


@dataclass
class SplitResult:
    counts: dict[str, int]
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    stratified: bool = False


def assign(ids_by_category: dict[str, list[int]], val: float, test: float, seed: int) -> dict[int, str]:
    """The pure part: item id -> split."""
    out: dict[int, str] = {}
    for cat in sorted(ids_by_category):
        ids = sorted(ids_by_category[cat])
        random.Random(f"{seed}:{cat}").shuffle(ids)
        n = len(ids)
        n_val, n_test = round(n * val), round(n * test)
        while n_val + n_test >= n and (n_val or n_test):  # keep at least one train item
            if n_test >= n_val and n_test:
                n_test -= 1
            else:
                n_val -= 1
        for i, item_id in enumerate(ids):
            out[item_id] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return out


def split_dataset(actor: Actor, dataset_id: int, val: float = 0.1, test: float = 0.1, seed: int = 0,
                  stratify: bool = True,
                  *, settings: Settings | None = None) -> SplitResult:
    who = require(actor, "datasets", settings=settings)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions in [0, 1) with val + test < 1")
    with session_scope(settings) as s:
        ds = s.get(Dataset, dataset_id)
        if ds is None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        rows = s.execute(select(Item.id, Item.category, Item.excluded).where(Item.dataset_id == dataset_id)).all()
        cats = {r.category for r in rows if not r.excluded}
        stratified = stratify and len(cats - {""}) > 1
        groups: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            if not r.excluded:
                groups[r.category if stratified else ""].append(r.id)
        assigned = assign(groups, val, test, seed)
        updates = [{"id": r.id, "split": assigned.get(r.id)} for r in rows]
        if updates:
            s.execute(update(Item), updates)
        ds.split_config = {"val": val, "test": test, "seed": seed, "stratified": stratified}
        ds.updated_at = utcnow()
        audit(s, who.username, "dataset.split", "dataset", dataset_id, after=ds.split_config)
        counts = {k: 0 for k in SPLITS}
        by_cat: dict[str, dict[str, int]] = defaultdict(lambda: {k: 0 for k in SPLITS})
        cat_of = {r.id: r.category for r in rows}
        for item_id, sp in assigned.items():
            counts[sp] += 1
            by_cat[cat_of[item_id] or "(none)"][sp] += 1
    return SplitResult(counts, dict(by_cat), stratified)
