"""The review queue: generated images with their provenance, automatic gate results and review state.

Gates: an image whose CLIP score is below its threshold (the one the generation gate used, else the brand profile's
``clip_threshold``) fails the CLIP gate; an image with a failed ``ocr`` check (``record_check``, written by the
evaluation side) fails the OCR gate; an image generated for a product whose fidelity check failed (its garment's
colour, DINO similarity or shape beyond the brand's ``fidelity:`` limits, ``products.record_fidelity``) fails the
fidelity gate. What a CLIP or OCR failure does is the brand's review policy (``set_policy``): ``flag`` keeps the image
in the queue with a mark, ``hold`` keeps it out of the default queue; approving a held image needs an explicit
override. Defaults: CLIP failures are flagged, OCR failures (a wrong logo) held; fidelity failures are always held
(it is not the product a shopper would receive), with the reason ("fidelity: colour ΔE 7.9 vs AUR-1001 reference,
limit 5").

Approvers, analysts and admins see the whole queue; a marketer sees only the images they generated.

    items = list_queue("ana", QueueFilter(brand="northwind", status="pending", gate="flagged"))
    items[0].gate.flags        # ["clip 0.19 < 0.25"]
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench import trash
from workbench.db import audit, session_scope, utcnow
from workbench.auth import Actor, AuthError, require
from workbench.review.tables import ReviewCheckRow, ReviewPolicyRow, ReviewRow, ReviewTagRow

STATUSES = ("pending", "approved", "rejected", "changes_requested")
GATE_STATES = ("passed", "flagged", "held")
POLICY_ACTIONS = ("flag", "hold")
REASON_RULES = ("required", "optional")  # does rejecting an image need a reason (the brand's policy)
DEFAULT_POLICY = {"on_clip_fail": "flag", "on_ocr_fail": "hold", "reject_reason": "required"}
WITHDRAWN = "withdrawn"  # the decision of an undo row: it cancels the decision before it


class ReviewError(Exception):
    """A review request that cannot be done as asked (unknown image, bad value, held image without override)."""


@dataclass(frozen=True)
class Policy:
    brand: str
    on_clip_fail: str = "flag"
    on_ocr_fail: str = "hold"
    reject_reason: str = "required"  # "optional": a reject without a comment is accepted

    @property
    def reason_required(self) -> bool:
        return self.reject_reason != "optional"


@dataclass(frozen=True)
class GateResult:
    clip_score: float | None
    clip_threshold: float | None
    clip_passed: bool | None  # None: no score or no threshold to compare with
    ocr_passed: bool | None  # None: not checked
    ocr_detail: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()  # one line per failed gate
    state: str = "passed"  # passed | flagged | held
    fidelity_passed: bool | None = None  # product fidelity (images generated for a product); None: not checked

    @property
    def held(self) -> bool:
        return self.state == "held"


@dataclass(frozen=True)
class Decision:
    id: int
    generation_id: int
    seq: int
    decision: str
    comment: str
    tags: tuple[str, ...]
    reviewer: str
    reviewer_role: str
    override_gate: bool
    prompt_version_id: int | None
    regen_job_id: int | None
    regen_batch: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: ReviewRow, tags: list[str]) -> Decision:
        return cls(id=row.id, generation_id=row.generation_id, seq=row.seq, decision=row.decision,
                   comment=row.comment, tags=tuple(sorted(tags)), reviewer=row.reviewer,
                   reviewer_role=row.reviewer_role, override_gate=row.override_gate,
                   prompt_version_id=row.prompt_version_id, regen_job_id=row.regen_job_id,
                   regen_batch=row.regen_batch, created_at=row.created_at)


@dataclass(frozen=True)
class QueueItem:
    """One image as the reviewer sees it: provenance, scores, gate result and where its review stands."""

    generation_id: int
    batch: str
    brand: str
    prompt: str
    negative_prompt: str
    prompt_id: int | None
    model: str
    vae: str
    loras: list[dict[str, Any]]
    quantization: str
    scheduler: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    image_path: str
    clip_score: float | None
    attempt: int
    demo_model: bool
    created_by: str
    created_at: dt.datetime
    replaces_id: int | None
    review_status: str
    review_seq: int  # decisions so far (undos included); pass it back as expected_seq when deciding
    gate: GateResult
    last_decision: Decision | None  # the decision that stands (an undone one does not)


@dataclass(frozen=True)
class QueueFilter:
    brand: str | None = None
    batch: str | None = None
    status: str | None = "pending"  # None: every status
    gate: str | None = None  # passed | flagged | held | all; None: passed and flagged (held only when asked for)
    created_by: str | None = None
    limit: int = 500

    def check(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ReviewError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.gate is not None and self.gate not in (*GATE_STATES, "all"):
            raise ReviewError(f"gate {self.gate!r} is not one of {', '.join(GATE_STATES)}, all")
        if self.limit < 1:
            raise ReviewError(f"limit {self.limit} must be at least 1")


def _generation_table():
    from workbench.generate.tables import Generation  # the generation capability owns the table

    return Generation


# -- policies and checks -------------------------------------------------------------------------------------------

def _trashed(s: Session, gen) -> bool:
    """Whether the image's batch is in the trash (``workbench.trash``): then it is in no queue, export or decision."""
    return trash.in_trash(s, "batch", gen.batch) is not None


def _live(Generation):
    """The filter that leaves out images of batches in the trash."""
    return Generation.batch.not_in(trash.hidden_keys("batch"))


def get_policy(brand: str, session: Session | None = None) -> Policy:
    def read(s: Session) -> Policy:
        row = s.get(ReviewPolicyRow, brand or "")
        return (Policy(brand, row.on_clip_fail, row.on_ocr_fail, row.reject_reason or "required") if row
                else Policy(brand, **DEFAULT_POLICY))

    if session is not None:
        return read(session)
    with session_scope() as s:
        return read(s)


def set_policy(actor: Actor, brand: str, on_clip_fail: str | None = None, on_ocr_fail: str | None = None,
               reject_reason: str | None = None) -> Policy:
    """Change what failed gates do to a brand's images, and whether rejecting one needs a reason (admin:
    ``settings``)."""
    for name, value in (("on_clip_fail", on_clip_fail), ("on_ocr_fail", on_ocr_fail)):
        if value is not None and value not in POLICY_ACTIONS:
            raise ReviewError(f"{name} {value!r} is not one of {', '.join(POLICY_ACTIONS)}")
    if reject_reason is not None and reject_reason not in REASON_RULES:
        raise ReviewError(f"reject_reason {reject_reason!r} is not one of {', '.join(REASON_RULES)}")
    with session_scope() as s:
        who = require(actor, "settings", s)
        before = get_policy(brand, s)
        row = s.get(ReviewPolicyRow, brand or "") or ReviewPolicyRow(brand=brand or "", **DEFAULT_POLICY)
        row.on_clip_fail = on_clip_fail or row.on_clip_fail
        row.on_ocr_fail = on_ocr_fail or row.on_ocr_fail
        row.reject_reason = reject_reason or row.reject_reason or "required"
        row.updated_by, row.updated_at = who.username, utcnow()
        s.add(row)
        after = Policy(row.brand, row.on_clip_fail, row.on_ocr_fail, row.reject_reason)
        audit(s, who.username, "review.set_policy", "review_policy", brand,
              before={"on_clip_fail": before.on_clip_fail, "on_ocr_fail": before.on_ocr_fail,
                      "reject_reason": before.reject_reason},
              after={"on_clip_fail": after.on_clip_fail, "on_ocr_fail": after.on_ocr_fail,
                     "reject_reason": after.reject_reason})
        return after


def record_check(actor: Actor, generation_id: int, check: str, passed: bool,
                 detail: dict[str, Any] | None = None) -> None:
    """Store an automatic check's result for an image (the OCR logo check: ``check="ocr"``); the latest one counts.
    Needs ``evaluate``: an analyst, or ``system_actor("evaluation", role="analyst")`` for an evaluation job."""
    with session_scope() as s:
        who = require(actor, "evaluate", s)
        if s.get(_generation_table(), generation_id) is None:
            raise ReviewError(f"generation {generation_id} does not exist")
        row = s.get(ReviewCheckRow, (generation_id, check))
        before = {"passed": row.passed, "detail": row.detail} if row else None
        row = row or ReviewCheckRow(generation_id=generation_id, check=check)
        row.passed, row.detail, row.checked_at = bool(passed), dict(detail or {}), utcnow()
        s.add(row)
        audit(s, who.username, f"review.check.{check}", "generation", generation_id, before=before,
              after={"passed": bool(passed), "detail": row.detail})


def _threshold(gen, brands: dict[str, float | None]) -> float | None:
    value = (gen.params or {}).get("gate_threshold")
    if value is not None:
        return float(value)
    if gen.brand not in brands:
        brands[gen.brand] = _brand_threshold(gen.brand)
    return brands[gen.brand]


def _brand_threshold(brand: str) -> float | None:
    if not brand:
        return None
    try:
        from workbench.prompts.library import load_library

        profile = load_library().brands.get(brand)
    except Exception:  # noqa: BLE001 - a broken profile file must not take the queue down; no threshold then
        return None
    return profile.clip_threshold if profile is not None else None


def gate_result(gen, checks: dict[str, ReviewCheckRow], policy: Policy, threshold: float | None,
                fidelity: list | tuple = ()) -> GateResult:
    """The image's gates: CLIP, OCR and (``fidelity``: its ``products.FidelityRow``s) product fidelity."""
    flags: list[str] = []
    held = False
    clip_passed = None
    if gen.clip_score is not None and threshold is not None:
        clip_passed = gen.clip_score >= threshold
        if not clip_passed:
            flags.append(f"CLIP {gen.clip_score:.3f} below {threshold:.3f}")
            held |= policy.on_clip_fail == "hold"
    ocr = checks.get("ocr")
    ocr_passed = ocr.passed if ocr is not None else None
    if ocr is not None and not ocr.passed:
        detail = ocr.detail or {}
        flags.append(f"OCR read {detail.get('read', '?')!r}, expected {detail.get('expected', '?')!r}")
        held |= policy.on_ocr_fail == "hold"
    verdicts = [f.passed for f in fidelity if f.passed is not None]
    fidelity_passed = all(verdicts) if verdicts else None
    for f in fidelity:
        if f.passed is False:
            flags.append(f"fidelity: {f.reason}")
            held = True
    state = "held" if held else "flagged" if flags else "passed"
    return GateResult(gen.clip_score, threshold, clip_passed, ocr_passed, dict(ocr.detail) if ocr else {},
                      tuple(flags), state, fidelity_passed)


def _fidelity(s: Session, ids: list[int]) -> dict[int, list]:
    """The product-fidelity checks of these images (products own the table), read in the queue's session."""
    from workbench.products.links import fidelity_rows

    out: dict[int, list] = {}
    for row in fidelity_rows(generation_ids=ids, session=s) if ids else []:
        out.setdefault(row.generation_id, []).append(row)
    return out


# -- reading the queue ---------------------------------------------------------------------------------------------

def _decisions(s: Session, ids: list[int], latest_only: bool) -> dict[int, list[Decision]]:
    if not ids:
        return {}
    rows = list(s.scalars(select(ReviewRow).where(ReviewRow.generation_id.in_(ids))
                          .order_by(ReviewRow.generation_id, ReviewRow.seq)))
    tags: dict[int, list[str]] = {}
    for review_id, tag in s.execute(select(ReviewTagRow.review_id, ReviewTagRow.tag)
                                    .where(ReviewTagRow.review_id.in_([r.id for r in rows]))):
        tags.setdefault(review_id, []).append(tag)
    out: dict[int, list[Decision]] = {}
    for row in rows:
        out.setdefault(row.generation_id, []).append(Decision.from_row(row, tags.get(row.id, [])))
    return {k: v[-1:] for k, v in out.items()} if latest_only else out


def effective(decisions: list[Decision]) -> Decision | None:
    """The decision that stands after undos: each ``withdrawn`` row cancels the standing decision before it (a stack:
    approve, reject, undo -> approve stands). None: no decision stands (the image is pending again)."""
    stack: list[Decision] = []
    for d in decisions:
        if d.decision == WITHDRAWN:
            if stack:
                stack.pop()
        else:
            stack.append(d)
    return stack[-1] if stack else None


def _items(s: Session, gens: list) -> list[QueueItem]:
    ids = [g.id for g in gens]
    checks: dict[int, dict[str, ReviewCheckRow]] = {}
    if ids:
        for row in s.scalars(select(ReviewCheckRow).where(ReviewCheckRow.generation_id.in_(ids))):
            checks.setdefault(row.generation_id, {})[row.check] = row
    every = _decisions(s, ids, latest_only=False)
    fidelity = _fidelity(s, ids)
    policies: dict[str, Policy] = {}
    thresholds: dict[str, float | None] = {}
    items = []
    for g in gens:
        policy = policies.get(g.brand) or policies.setdefault(g.brand, get_policy(g.brand, s))
        gate = gate_result(g, checks.get(g.id, {}), policy, _threshold(g, thresholds), fidelity.get(g.id, ()))
        rows = every.get(g.id) or []
        last = effective(rows)
        items.append(QueueItem(
            generation_id=g.id, batch=g.batch, brand=g.brand, prompt=g.prompt, negative_prompt=g.negative_prompt,
            prompt_id=g.prompt_id, model=g.model, vae=g.vae, loras=list(g.loras or []), quantization=g.quantization,
            scheduler=g.scheduler, seed=g.seed, steps=g.steps, guidance=g.guidance, width=g.width, height=g.height,
            image_path=g.image_path, clip_score=g.clip_score, attempt=g.attempt, demo_model=g.demo_model,
            created_by=g.created_by, created_at=g.created_at, replaces_id=g.replaces_id,
            # The status from the same decision rows as the number: the generation row may have been read before
            # a decision that the decision rows, read after it, include (each SELECT sees its own snapshot).
            review_status=(last.decision if last else "pending") if rows else g.review_status,
            review_seq=rows[-1].seq if rows else 0, gate=gate, last_decision=last))
    return items


def list_queue(actor: Actor, flt: QueueFilter | None = None) -> list[QueueItem]:
    """Kept images matching the filter, oldest first. Marketers get their own images only, whatever they ask."""
    flt = flt or QueueFilter()
    flt.check()
    Generation = _generation_table()
    with session_scope() as s:
        try:
            who = require(actor, "view_queue", s)
            created_by = flt.created_by
        except AuthError:
            who = require(actor, "view_own", s)
            created_by = who.username
        q = select(Generation).where(Generation.kept.is_(True), _live(Generation)).order_by(Generation.id)
        if flt.brand:
            q = q.where(Generation.brand == flt.brand)
        if flt.batch:
            q = q.where(Generation.batch == flt.batch)
        if flt.status:
            q = q.where(Generation.review_status == flt.status)
        if created_by:
            q = q.where(Generation.created_by == created_by)
        items = _items(s, list(s.scalars(q)))
    if flt.status:  # an image decided between the two reads above is not what the filter asked for any more
        items = [i for i in items if i.review_status == flt.status]
    if flt.gate is None:
        items = [i for i in items if not i.gate.held]
    elif flt.gate != "all":
        items = [i for i in items if i.gate.state == flt.gate]
    return items[:flt.limit]


def get_item(actor: Actor, generation_id: int) -> QueueItem:
    Generation = _generation_table()
    with session_scope() as s:
        try:
            require(actor, "view_queue", s)
            own = None
        except AuthError:
            own = require(actor, "view_own", s).username
        gen = s.get(Generation, generation_id)
        if gen is None or _trashed(s, gen) or (own is not None and gen.created_by != own):
            raise ReviewError(f"generation {generation_id} does not exist")
        return _items(s, [gen])[0]


def history(actor: Actor, generation_id: int) -> list[Decision]:
    """Every decision on an image, oldest first."""
    get_item(actor, generation_id)  # same visibility rules as the image itself
    with session_scope() as s:
        return _decisions(s, [generation_id], latest_only=False).get(generation_id, [])


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def audit_trail(actor: Actor, entity: str | None = None, entity_id: Any = None, limit: int = 200, *,
                who: Sequence[str] | None = None, actions: Sequence[str] | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[AuditEntry]:
    """Audit rows, newest first (``entity="generation", entity_id=12``: everything that happened to image 12);
    ``who``: only these users' actions; ``actions``: only these actions (``review.approve``, …); ``since`` /
    ``until``: only rows recorded in [since, until) (UTC)."""
    from workbench.db import AuditLog

    with session_scope() as s:
        require(actor, "view_audit", s)
        q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if entity:
            q = q.where(AuditLog.entity == entity)
        if entity_id is not None and str(entity_id) != "":
            q = q.where(AuditLog.entity_id == str(entity_id))
        if who:
            q = q.where(AuditLog.actor.in_(list(who)))
        if actions:
            q = q.where(AuditLog.action.in_(list(actions)))
        if since is not None:
            q = q.where(AuditLog.at >= since)
        if until is not None:
            q = q.where(AuditLog.at < until)
        return [AuditEntry(r.at, r.actor, r.action, r.entity, r.entity_id, r.before, r.after) for r in s.scalars(q)]


def audit_options(actor: Actor) -> dict[str, list[str]]:
    """Who acted, which actions and which kinds of object the audit log holds (the page's filters)."""
    from workbench.db import AuditLog

    with session_scope() as s:
        require(actor, "view_audit", s)
        return {name: sorted(v for v, in s.execute(select(col).distinct()) if v)
                for name, col in (("who", AuditLog.actor), ("action", AuditLog.action), ("entity", AuditLog.entity))}


@dataclass(frozen=True)
class ExportPreview:
    """What ``export_approved`` would write for a brand / batch: ``count`` approved images, ``missing`` of them
    without their file; ``reason`` says why an export cannot run now ("" when it can)."""

    count: int
    missing: int
    reason: str

    @property
    def ready(self) -> bool:
        return not self.reason


def export_preview(actor: Actor, brand: str | None = None, batch: str | None = None) -> ExportPreview:
    """Count what an export of ``brand`` / ``batch`` would hold, with the rules ``export_approved`` applies (at least
    one of the two named; at least one approved image; every file present). Needs ``export``."""
    from pathlib import Path

    if not brand and not batch:
        return ExportPreview(0, 0, "pick a brand or a campaign: an export is one campaign, not the whole workspace")
    Generation = _generation_table()
    with session_scope() as s:
        require(actor, "export", s)
        q = select(Generation.image_path).where(Generation.kept.is_(True), Generation.review_status == "approved",
                                                _live(Generation))
        if brand:
            q = q.where(Generation.brand == brand)
        if batch:
            q = q.where(Generation.batch == batch)
        paths = list(s.scalars(q))
    missing = sum(not Path(p).is_file() for p in paths)
    if not paths:
        return ExportPreview(0, 0, "no approved images here yet")
    if missing:
        return ExportPreview(len(paths), missing, f"{missing} approved image file(s) are missing on the server")
    return ExportPreview(len(paths), 0, "")


def filter_options(actor: Actor) -> dict[str, list[str]]:
    """Brands and batches that have kept images (for the page's filters)."""
    Generation = _generation_table()
    with session_scope() as s:
        try:
            require(actor, "view_queue", s)
            own = None
        except AuthError:
            own = require(actor, "view_own", s).username
        q = select(Generation.brand, Generation.batch).where(Generation.kept.is_(True), _live(Generation)).distinct()
        if own:
            q = q.where(Generation.created_by == own)
        rows = s.execute(q).all()
    return {"brand": sorted({b for b, _ in rows if b}), "batch": sorted({b for _, b in rows})}

