"""The ``generations`` table: one row per generated image (every attempt of the CLIP loop included)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class Generation(Base):
    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(100), index=True)
    prompt_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # workbench.prompts version, when from one
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(500))
    vae: Mapped[str] = mapped_column(String(500), default="")
    loras: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"path", "scale", "name"}]
    quantization: Mapped[str] = mapped_column(String(16), default="none")
    scheduler: Mapped[str] = mapped_column(String(32))
    dtype: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    guidance: Mapped[float] = mapped_column(Float)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the full provenance written into the PNG
    image_path: Mapped[str] = mapped_column(String(1000))
    clip_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    kept: Mapped[bool] = mapped_column(Boolean, default=True)
    demo_model: Mapped[bool] = mapped_column(Boolean, default=False)
    review_status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class GenerationVideo(Base):
    """A video made from a generated (or catalog) image (``workbench.generate.video``): the ``generations`` row
    holds its poster frame (a PNG with the provenance), so the review queue, evaluation and export treat it as an
    image; this row names the MP4, the GIF and the JSON sidecar. Migration ``0015_scorers_videos``."""

    __tablename__ = "generation_videos"

    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    source_generation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the image it was made from
    mp4_path: Mapped[str] = mapped_column(String(1000))
    gif_path: Mapped[str] = mapped_column(String(1000), default="")
    sidecar_path: Mapped[str] = mapped_column(String(1000), default="")
    frames: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
