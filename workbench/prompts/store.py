"""The prompt library in the database: save batches and single prompts, refine a prompt into a new version, read
them back. Every change needs the ``prompts`` permission (``workbench.auth``) and writes an audit row, under
the user's name, in the same transaction.

    saved = save_batch("mia", batch, "SS26 tees")
    v2 = refine("mia", saved.prompt_ids[0], "…sharper text…", reason="logo was blurry")
    [p.version for p in prompt_history(v2.id)]   # [1, 2]
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import func, insert, select, update

from workbench.db import audit, session_scope, utcnow
from workbench.prompts.expand import Batch, PromptCheck, check_prompt
from workbench.prompts.library import Library, load_library
from workbench.prompts.tables import PromptBatchItemRow, PromptBatchRow, PromptRow
from workbench.prompts.yamlio import PromptError
from workbench.auth import Actor, require


@dataclass(frozen=True)
class StoredPrompt:
    id: int
    text: str
    negative: str
    template: str
    scene: str
    slot_values: dict[str, Any]
    brand: str
    params: dict[str, Any]
    version: int
    parent_id: int | None
    root_id: int | None
    status: str
    token_count: int
    issues: list[str]
    created_by: str
    reason: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: PromptRow) -> StoredPrompt:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class SavedBatch:
    id: int
    name: str
    template: str
    brand: str
    spec: dict[str, Any]
    size: int
    combinations: int
    duplicates_removed: int
    created_by: str
    created_at: dt.datetime
    prompt_ids: list[int] = field(default_factory=list)  # in batch order (left empty by list_batches)


def _row_values(check: PromptCheck) -> dict[str, Any]:
    return {"token_count": check.tokens.count, "issues": check.issues}


def save_batch(actor: Actor, batch: Batch, name: str) -> SavedBatch:
    """Store every prompt of an expanded batch (version 1 each) and the batch that lists them, in order."""
    actor = require(actor, "prompts").username
    name = name.strip()
    if not name:
        raise PromptError("name: give the batch a name")
    if not batch.prompts:
        raise PromptError("the batch is empty: nothing to save")
    spec = batch.spec
    now = utcnow()
    rows = [{"text": p.text, "negative": p.negative, "template": p.template, "scene": p.scene or "",
             "slot_values": p.slot_values, "brand": spec.brand or "", "params": p.params, "version": 1,
             "status": "active", "created_by": actor, "reason": f"batch {name}", "created_at": now,
             **_row_values(p.check)} for p in batch.prompts]
    with session_scope() as s:
        # One multi-row INSERT … RETURNING: a 10,000-prompt batch saves in well under a second.
        ids = list(s.scalars(insert(PromptRow).returning(PromptRow.id, sort_by_parameter_order=True), rows))
        s.execute(update(PromptRow).where(PromptRow.id.between(min(ids), max(ids)), PromptRow.root_id.is_(None))
                  .values(root_id=PromptRow.id))  # first versions are their own root
        row = PromptBatchRow(name=name, template=spec.template, brand=spec.brand or "", spec=spec.to_dict(),
                             size=len(ids), combinations=batch.combinations,
                             duplicates_removed=batch.duplicates_removed, created_by=actor, created_at=now)
        s.add(row)
        s.flush()
        s.execute(insert(PromptBatchItemRow), [{"batch_id": row.id, "position": i, "prompt_id": pid}
                                               for i, pid in enumerate(ids)])
        audit(s, actor, "prompt_batch.save", "prompt_batch", row.id,
              after={"name": name, "template": spec.template, "brand": spec.brand, "size": len(ids)})
        return _batch(row, ids)


def save_prompt(actor: Actor, text: str, *, negative: str = "", brand: str = "", template: str = "", scene: str = "",
                slot_values: dict[str, Any] | None = None, params: dict[str, Any] | None = None, reason: str = "",
                library: Library | None = None) -> StoredPrompt:
    """Store one prompt (written by hand, or a single rendered one) as version 1, checked against its brand."""
    actor = require(actor, "prompts").username
    text = " ".join(text.split())
    if not text:
        raise PromptError("text: the prompt is empty")
    check = check_prompt(text, negative, _brand(brand, library))
    with session_scope() as s:
        row = PromptRow(text=text, negative=negative, template=template, scene=scene, slot_values=slot_values or {},
                        brand=brand, params=params or {}, version=1, status="active", created_by=actor, reason=reason,
                        **_row_values(check))
        s.add(row)
        s.flush()
        row.root_id = row.id
        audit(s, actor, "prompt.create", "prompt", row.id, after={"text": text, "brand": brand})
        s.flush()
        return StoredPrompt.from_row(row)


def refine(actor: Actor, prompt_id: int, new_text: str, reason: str, *, negative: str | None = None,
           library: Library | None = None) -> StoredPrompt:
    """A new version of a prompt: same template, scene, slots, brand and settings, new text, linked to its parent,
    with who and why. The parent is kept (images made from it still point at it) and marked superseded."""
    actor = require(actor, "prompts").username
    new_text = " ".join(new_text.split())
    if not new_text:
        raise PromptError("new_text: the refined prompt is empty")
    if not reason.strip():
        raise PromptError("reason: say why the prompt changed; it is kept with the version")
    with session_scope() as s:
        parent = s.get(PromptRow, prompt_id)
        if parent is None:
            raise PromptError(f"prompt {prompt_id} does not exist")
        negative = parent.negative if negative is None else negative
        if new_text == parent.text and negative == parent.negative:
            raise PromptError(f"new_text: same as version {parent.version}; nothing to refine")
        root = parent.root_id or parent.id
        version = s.scalar(select(func.max(PromptRow.version)).where(PromptRow.root_id == root)) or parent.version
        check = check_prompt(new_text, negative, _brand(parent.brand, library))
        row = PromptRow(text=new_text, negative=negative, template=parent.template, scene=parent.scene,
                        slot_values=dict(parent.slot_values), brand=parent.brand, params=dict(parent.params),
                        version=version + 1, parent_id=parent.id, root_id=root, status="active", created_by=actor,
                        reason=reason.strip(), **_row_values(check))
        parent.status = "superseded"
        s.add(row)
        s.flush()
        audit(s, actor, "prompt.refine", "prompt", row.id,
              before={"id": parent.id, "version": parent.version, "text": parent.text},
              after={"id": row.id, "version": row.version, "text": new_text, "reason": row.reason})
        return StoredPrompt.from_row(row)


def _brand(name: str, library: Library | None):
    if not name:
        return None
    lib = library or load_library()
    return lib.brands.get(name)  # a profile deleted since: the prompt is still stored, checked without its rules


def get_prompt(prompt_id: int) -> StoredPrompt:
    with session_scope() as s:
        row = s.get(PromptRow, prompt_id)
        if row is None:
            raise PromptError(f"prompt {prompt_id} does not exist")
        return StoredPrompt.from_row(row)


def prompt_history(prompt_id: int) -> list[StoredPrompt]:
    """Every version of the prompt ``prompt_id`` belongs to, oldest first."""
    root = get_prompt(prompt_id).root_id or prompt_id
    with session_scope() as s:
        rows = s.scalars(select(PromptRow).where(PromptRow.root_id == root).order_by(PromptRow.version, PromptRow.id))
        return [StoredPrompt.from_row(r) for r in rows]


def _batch(row: PromptBatchRow, ids: list[int]) -> SavedBatch:
    return SavedBatch(id=row.id, name=row.name, template=row.template, brand=row.brand, spec=dict(row.spec),
                      size=row.size, combinations=row.combinations, duplicates_removed=row.duplicates_removed,
                      created_by=row.created_by, created_at=row.created_at, prompt_ids=ids)


def list_batches(limit: int = 50) -> list[SavedBatch]:
    """Newest first, without their prompt ids."""
    with session_scope() as s:
        rows = s.scalars(select(PromptBatchRow).order_by(PromptBatchRow.id.desc()).limit(limit))
        return [_batch(r, []) for r in rows]


def get_batch(batch_id: int) -> SavedBatch:
    with session_scope() as s:
        row = s.get(PromptBatchRow, batch_id)
        if row is None:
            raise PromptError(f"prompt batch {batch_id} does not exist")
        ids = list(s.scalars(select(PromptBatchItemRow.prompt_id).where(PromptBatchItemRow.batch_id == batch_id)
                             .order_by(PromptBatchItemRow.position)))
        return _batch(row, ids)


def batch_prompts(batch_id: int) -> list[StoredPrompt]:
    """The prompts of a saved batch in batch order (what Generate renders)."""
    with session_scope() as s:
        if s.get(PromptBatchRow, batch_id) is None:
            raise PromptError(f"prompt batch {batch_id} does not exist")
        rows = s.scalars(select(PromptRow).join(PromptBatchItemRow, PromptBatchItemRow.prompt_id == PromptRow.id)
                         .where(PromptBatchItemRow.batch_id == batch_id).order_by(PromptBatchItemRow.position))
        return [StoredPrompt.from_row(r) for r in rows]
