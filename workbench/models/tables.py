"""The ``scorers`` table: CLIP scorers fine-tuned on a brand's catalog (``workbench.train.clip_tune``), each an
open_clip folder in ``workspace/scorers/<id>/`` with its scorer card. Read through ``workbench.models.scorers``.

Created by migration ``0015_scorers_videos``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class Scorer(Base):
    __tablename__ = "scorers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # what a brand profile's ``scorer:`` names
    path: Mapped[str] = mapped_column(String(1000))  # the open_clip folder (config, weights, scorer_card.json)
    base_ref: Mapped[str] = mapped_column(String(500))  # the open_clip model it was tuned from
    dataset_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no FK: datasets are another branch
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the scorer card (recall before/after, ...)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
