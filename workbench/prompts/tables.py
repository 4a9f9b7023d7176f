"""Tables of the prompt library (migration 0003): versioned prompts and the batches that group them.

A prompt is never edited in place: refining it inserts a new row with ``parent_id`` pointing at the row it came from
and the same ``root_id`` (the id of the first version), so every generated image keeps the exact text that made it.
Templates and brand profiles are YAML files, not rows; a prompt records their names and the slot values it used.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow

PROMPT_STATUSES = ("active", "superseded")


class PromptRow(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    negative: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str] = mapped_column(String(100), default="")  # "" for a prompt written by hand
    scene: Mapped[str] = mapped_column(String(100), default="")
    slot_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    brand: Mapped[str] = mapped_column(String(100), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # recommended width/height/steps/guidance
    version: Mapped[int] = mapped_column(Integer, default=1)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id"), nullable=True, index=True)
    root_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    token_count: Mapped[int] = mapped_column(Integer, default=0)  # content tokens (without start/end)
    issues: Mapped[list[Any]] = mapped_column(JSON, default=list)  # rule and length warnings when saved
    created_by: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PromptBatchRow(Base):
    __tablename__ = "prompt_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(100), default="")
    brand: Mapped[str] = mapped_column(String(100), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the BatchSpec it was expanded from
    size: Mapped[int] = mapped_column(Integer, default=0)
    combinations: Mapped[int] = mapped_column(Integer, default=0)
    duplicates_removed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PromptBatchItemRow(Base):
    __tablename__ = "prompt_batch_items"

    batch_id: Mapped[int] = mapped_column(ForeignKey("prompt_batches.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
