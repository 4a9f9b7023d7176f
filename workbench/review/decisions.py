"""Decisions on images: approve, reject, request changes; one at a time or in bulk; never silently overwritten.

Optimistic concurrency: the caller says how many decisions the image had when they looked at it (``expected_seq``,
``QueueItem.review_seq``: 0 for a pending image). The decision is stored as number ``expected_seq + 1``; the
database's unique (image, number) constraint lets exactly one of two simultaneous approvers in, and the other gets
``DecisionConflict`` carrying the decision that won. Re-deciding an image is allowed, knowingly: with the number of
the decision you saw. Each decision, its tags, the image's new review status and the audit row commit together.

    item = list_queue("ana")[0]
    decide("ana", item.generation_id, "approve", expected_seq=item.review_seq, tags=["hero"])
    undo_decision("ana", item.generation_id, 1)      # within UNDO_SECONDS, by the same reviewer

A reject needs a reason (the comment) unless the brand's review policy makes it optional (``set_policy(...,
reject_reason="optional")``). An undo is a decision row too (``withdrawn``, numbered like any other, so it races
safely): the image goes back to the status it had before, and the audit log records ``review.undo``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError

from workbench.db import audit, session_scope
from workbench.auth import Actor, require
from workbench.review.queue import (WITHDRAWN, Decision, ReviewError, _decisions, _generation_table, _items, _trashed,
                                    effective, get_policy)
from workbench.review.tables import ReviewRow, ReviewTagRow

# what the reviewer does -> the image's review status
DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}
TAG = re.compile(r"[a-z0-9][a-z0-9 _.-]{0,49}\Z")
LOCK_RETRIES = 5
UNDO_SECONDS = 30  # how long after a decision its reviewer may take it back


class DecisionConflict(ReviewError):
    """Someone decided the image since you looked at it. ``current`` is their decision (None: it was withdrawn)."""

    def __init__(self, generation_id: int, expected_seq: int, current: Decision | None, attempted: str):
        self.generation_id, self.expected_seq, self.current, self.attempted = (generation_id, expected_seq, current,
                                                                                 attempted)
        if current is None:
            now = "it has no decision"
        else:
            now = (f"it is now {current.decision} by {current.reviewer} at {current.created_at:%Y-%m-%d %H:%M:%S}"
                   + (f" ({current.comment})" if current.comment else "") + f", decision #{current.seq}")
        super().__init__(f"image {generation_id} changed while you looked at it: {now}. Your {attempted!r} was not "
                         "saved; look at the current decision and decide again if you still want to.")


@dataclass(frozen=True)
class BulkResult:
    decided: list[Decision] = field(default_factory=list)
    conflicts: list[DecisionConflict] = field(default_factory=list)
    errors: list[ReviewError] = field(default_factory=list)  # unknown image, held without override, …

    @property
    def summary(self) -> str:
        return (f"{len(self.decided)} decided, {len(self.conflicts)} changed by someone else meanwhile, "
                f"{len(self.errors)} refused")


def normalize_decision(decision: str) -> str:
    key = (decision or "").strip().lower().replace(" ", "_").replace("-", "_")
    key = {v: k for k, v in DECISIONS.items()}.get(key, key)  # "approved" works as well as "approve"
    key = {"changes": "request_changes"}.get(key, key)
    if key not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    return key


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    out = []
    for tag in tags or ():
        t = " ".join(str(tag).split()).lower()
        if not TAG.match(t):
            raise ReviewError(f"tag {tag!r}: 1-50 letters, digits, spaces and . _ - (starting with a letter or digit)")
        out.append(t)
    return tuple(sorted(set(out)))


def check_decision(decision: str, comment: str, tags: Iterable[str], expected_seq: int) -> tuple[str, str, tuple]:
    key = normalize_decision(decision)
    comment = (comment or "").strip()
    if key == "request_changes" and not comment:
        raise ReviewError("comment: say what should change; it goes back to the marketer and into the prompt's history")
    if not isinstance(expected_seq, int) or expected_seq < 0:
        raise ReviewError(f"expected_seq {expected_seq!r} must be the number of decisions you saw (0 for pending)")
    return key, comment, normalize_tags(tags)


def current_decision(generation_id: int) -> Decision | None:
    with session_scope() as s:
        return (_decisions(s, [generation_id], latest_only=True).get(generation_id) or [None])[-1]


def decide(actor: Actor, generation_id: int, decision: str, *, comment: str = "", tags: Iterable[str] = (),
           expected_seq: int = 0, override_gate: bool = False) -> Decision:
    """Record one decision (``approve`` | ``reject`` | ``request_changes``). Raises PermissionDenied,
    DecisionConflict (someone else decided first) or ReviewError."""
    key, comment, tags = check_decision(decision, comment, tags, expected_seq)
    Generation = _generation_table()
    for attempt in range(LOCK_RETRIES):
        try:
            with session_scope() as s:
                who = require(actor, "decide", s)
                gen = s.get(Generation, generation_id)
                if gen is None or _trashed(s, gen):
                    raise ReviewError(f"generation {generation_id} does not exist")
                if not gen.kept:
                    raise ReviewError(f"generation {generation_id} is a discarded gate attempt, not an image to review")
                item = _items(s, [gen])[0]
                if item.review_seq != expected_seq:
                    raise DecisionConflict(generation_id, expected_seq, item.last_decision, key)
                if key == "approve" and item.gate.held and not override_gate:
                    raise ReviewError(f"image {generation_id} is held back by its gates ({'; '.join(item.gate.flags)})"
                                      ": approve it with override_gate=True if you checked it")
                if key == "reject" and not comment and get_policy(gen.brand, s).reason_required:
                    raise ReviewError("comment: say why you reject the image; the reason goes back to the marketer"
                                      + (f" (brand {gen.brand}'s review policy asks for one)" if gen.brand else ""))
                row = ReviewRow(generation_id=generation_id, seq=expected_seq + 1, decision=DECISIONS[key],
                                comment=comment, reviewer=who.username, reviewer_role=who.role,
                                override_gate=bool(override_gate and item.gate.held))
                s.add(row)
                s.flush()  # the unique (generation_id, seq) constraint decides races here
                s.add_all(ReviewTagRow(review_id=row.id, tag=t) for t in tags)
                before = item.review_status
                s.execute(update(Generation).where(Generation.id == generation_id)
                          .values(review_status=DECISIONS[key]))
                audit(s, who.username, f"review.{key}", "generation", generation_id,
                      before={"review_status": before, "seq": expected_seq},
                      after={"review_status": DECISIONS[key], "seq": row.seq, "review_id": row.id,
                             "comment": comment, "tags": list(tags), "override_gate": row.override_gate})
                s.flush()
                return Decision.from_row(row, list(tags))
        except IntegrityError:
            raise DecisionConflict(generation_id, expected_seq, current_decision(generation_id), key) from None
        except OperationalError as exc:  # SQLite: "database is locked" past the busy timeout; try again
            if "locked" not in str(exc) or attempt == LOCK_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def undo_decision(actor: Actor, generation_id: int, seq: int, *, within: float = UNDO_SECONDS) -> Decision:
    """Take back decision number ``seq`` on an image: only its own reviewer, only within ``within`` seconds, only
    while it is still the image's latest decision, and not a change request that already made a prompt version or
    a regeneration job (those stay: undo them where they are). Writes a ``withdrawn`` row numbered ``seq + 1``,
    puts the image back to the status it had before (pending, or the decision that stood before), and audits
    ``review.undo``. Returns the withdrawn row. Raises ReviewError (DecisionConflict when someone decided since)."""
    from workbench.db import utcnow

    Generation = _generation_table()
    try:
        with session_scope() as s:
            who = require(actor, "decide", s)
            gen = s.get(Generation, generation_id)
            if gen is None or _trashed(s, gen):
                raise ReviewError(f"generation {generation_id} does not exist")
            rows = _decisions(s, [generation_id], latest_only=False).get(generation_id, [])
            target = next((d for d in rows if d.seq == seq), None)
            if target is None or target.decision == WITHDRAWN:
                raise ReviewError(f"image {generation_id} has no decision #{seq} to undo")
            if rows[-1].seq != seq:
                raise DecisionConflict(generation_id, seq, effective(rows), "undo")
            if target.reviewer != who.username:
                raise ReviewError(f"decision #{seq} on image {generation_id} is {target.reviewer}'s: only they can "
                                  "undo it; decide again instead")
            age = (utcnow() - target.created_at).total_seconds()
            if age > within:
                raise ReviewError(f"decision #{seq} on image {generation_id} was made {age:.0f} s ago: undo works for "
                                  f"{within:.0f} s; decide again instead")
            if target.prompt_version_id or target.regen_job_id:
                raise ReviewError(f"decision #{seq} on image {generation_id} already saved a prompt version or queued "
                                  "a regeneration: those stay, so it cannot be undone; decide again instead")
            standing = effective(rows[:-1])  # what stood before the undone decision (its status is its decision)
            status, before = (standing.decision if standing else "pending"), gen.review_status
            row = ReviewRow(generation_id=generation_id, seq=seq + 1, decision=WITHDRAWN,
                            comment=f"undid decision #{seq} ({target.decision})", reviewer=who.username,
                            reviewer_role=who.role, override_gate=False)
            s.add(row)
            s.flush()  # the unique (generation_id, seq) constraint decides races with a new decision here
            s.execute(update(Generation).where(Generation.id == generation_id).values(review_status=status))
            audit(s, who.username, "review.undo", "generation", generation_id,
                  before={"review_status": before, "seq": seq, "decision": target.decision},
                  after={"review_status": status, "seq": row.seq, "review_id": row.id, "undid": seq})
            s.flush()
            return Decision.from_row(row, [])
    except IntegrityError:
        raise DecisionConflict(generation_id, seq, current_decision(generation_id), "undo") from None


def bulk_decide(actor: Actor, expected: Mapping[int, int], decision: str, *, comment: str = "",
                tags: Iterable[str] = (), override_gate: bool = False) -> BulkResult:
    """The same decision on many images: ``expected`` maps each image id to the decision count you saw. Each image
    is decided on its own, so a conflict on one never blocks (or undoes) the others."""
    check_decision(decision, comment, tags, 0)
    require(actor, "decide")  # a refused role fails once, not once per image
    result = BulkResult()
    for generation_id, seq in expected.items():
        try:
            result.decided.append(decide(actor, generation_id, decision, comment=comment, tags=tags,
                                         expected_seq=seq, override_gate=override_gate))
        except DecisionConflict as exc:
            result.conflicts.append(exc)
        except ReviewError as exc:
            result.errors.append(exc)
    return result

