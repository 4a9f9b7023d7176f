"""Tables of the review capability (migration 0007): decisions and their tags, automatic check results, and the
per-brand policy for images that fail a gate.

A decision is never edited: each one is a new ``reviews`` row numbered ``seq`` = 1, 2, … per image, and the pair
(generation_id, seq) is unique; an undo is a row too (decision ``withdrawn``, cancelling the one before it). That
uniqueness is the optimistic-concurrency arbiter: two approvers who both saw an
image at seq n both try to write seq n + 1, and the database lets exactly one of them in.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow
from workbench.generate import tables as _generations  # noqa: F401 - the table our foreign keys point at


class ReviewRow(Base):
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("generation_id", "seq", name="uq_reviews_generation_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1 for the first decision on the image, then 2, 3, …
    decision: Mapped[str] = mapped_column(String(24))  # approved | rejected | changes_requested | withdrawn (an undo)
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewer_role: Mapped[str] = mapped_column(String(20))
    override_gate: Mapped[bool] = mapped_column(Boolean, default=False)  # approved although a gate held it back
    # Set once, right after the decision, by the feedback loop (request changes):
    prompt_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # prompts.id
    regen_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    regen_batch: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReviewTagRow(Base):
    __tablename__ = "review_tags"

    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class ReviewCheckRow(Base):
    """The latest result of an automatic check of one image (``ocr`` today), written by the evaluation side."""

    __tablename__ = "review_checks"

    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id"), primary_key=True)
    check: Mapped[str] = mapped_column(String(20), primary_key=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. {"expected": "ACME", "read": "ACNE"}
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReviewPolicyRow(Base):
    """What a failed gate does to a brand's images: ``flag`` (in the queue, marked) or ``hold`` (kept out of the
    default queue; approving one needs an explicit override); and whether rejecting one needs a reason."""

    __tablename__ = "review_policies"

    brand: Mapped[str] = mapped_column(String(100), primary_key=True)
    on_clip_fail: Mapped[str] = mapped_column(String(8), default="flag")
    on_ocr_fail: Mapped[str] = mapped_column(String(8), default="hold")
    reject_reason: Mapped[str] = mapped_column(String(8), default="required")  # required | optional (migration 0020)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReviewPresenceRow(Base):
    """Which image each approver has open on the Review page, and since when (migration 0024): one row per user,
    replaced as they move on. Soft and short-lived (``workbench.review.presence``): it steers approvers apart, the
    decision's ``seq`` still settles any race. No foreign key: an image may be purged while someone looks at it."""

    __tablename__ = "review_presence"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    generation_id: Mapped[int] = mapped_column(Integer, index=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
