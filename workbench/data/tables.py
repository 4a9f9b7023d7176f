"""Tables of the Datasets capability: ``datasets`` (one imported photo set) and ``items`` (one image in it).

Created by migration ``0002_datasets``; ``0008_items_unique`` makes (dataset_id, sha256) unique. Images live
content-addressed under ``workspace/datasets/<id>/images/``
(``<sha256>.<ext>``), so the row holds only the relative path; thumbnails under ``workspace/thumbs/``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class Dataset(Base):
    """A named set of product photos. ``imports`` keeps one report per import (counts + skipped files with reasons)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(1000), default="")  # what the first import read
    source_kind: Mapped[str] = mapped_column(String(32), default="")  # imagefolder | kohya | csv | hf | zip | folder
    caption_template: Mapped[str] = mapped_column(Text, default="")
    imports: Mapped[list[Any]] = mapped_column(JSON, default=list)
    split_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Item(Base):
    """One image of a dataset. ``flags`` is a sorted list of quality flags (see ``workbench.data.quality.FLAGS``)."""

    __tablename__ = "items"
    __table_args__ = (
        Index("uq_items_dataset_sha", "dataset_id", "sha256", unique=True),  # one row per photo (0008)
        Index("ix_items_dataset_category", "dataset_id", "category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    source_key: Mapped[str] = mapped_column(String(1000))  # file name / row key inside the source it came from
    path: Mapped[str] = mapped_column(String(500))  # relative to workspace/datasets/<dataset_id>/
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[str] = mapped_column(String(16))  # 64-bit DCT perceptual hash, hex
    color: Mapped[str] = mapped_column(String(7), default="")  # mean foreground colour "#rrggbb" (near-dup check)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16), default="")
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    caption: Mapped[str] = mapped_column(Text, default="")
    caption_source: Mapped[str] = mapped_column(String(32), default="")  # source | template | blip | edited
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    category: Mapped[str] = mapped_column(String(200), default="")
    brand: Mapped[str] = mapped_column(String(200), default="")
    colour: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(32), default="")  # importer that brought it in
    split: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dup_group: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def aspect(self) -> float:
        return self.width / self.height if self.height else 0.0
