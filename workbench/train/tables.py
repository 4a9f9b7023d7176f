"""Tables of the Training capability: ``loras`` (a trained adapter the Generate page can use) and ``checkpoints``
(a resumable training state of a run).

Created by migration ``0005_training``. A run lives in ``workspace/runs/<run id>/`` where the run id is the id of the
job that started it; a resumed run is a new job (``jobs.resumed_from``) writing into the same folder, so ``run_id``
stays the first job's id and ``job_id`` is the job that wrote the row.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class Lora(Base):
    """A LoRA file (diffusers format, adapter metadata inside) with where it came from."""

    __tablename__ = "loras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    path: Mapped[str] = mapped_column(String(1000))  # folder holding pytorch_lora_weights.safetensors
    method: Mapped[str] = mapped_column(String(32))  # text_to_image_lora | dreambooth_lora
    base_model: Mapped[str] = mapped_column(String(1000))
    rank: Mapped[int] = mapped_column(Integer)
    lora_alpha: Mapped[float] = mapped_column(Float)
    trigger: Mapped[str] = mapped_column(Text, default="")  # the instance prompt of a DreamBooth run
    step: Mapped[int] = mapped_column(Integer, default=0)
    final_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    dataset: Mapped[str] = mapped_column(String(1000), default="")
    manifest_hash: Mapped[str] = mapped_column(String(64), default="")
    text_encoder: Mapped[bool] = mapped_column(Boolean, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)  # trained on a tiny demo model
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Checkpoint(Base):
    """One ``checkpoint-<step>`` folder of a run (accelerate state + LoRA + data position)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "step", name="uq_checkpoints_run_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples: Mapped[list[Any]] = mapped_column(JSON, default=list)  # validation image paths, relative to the run
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
