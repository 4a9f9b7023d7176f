"""Tables of the Evaluation capability (migration ``0006_evaluation``).

``evaluations``        one evaluation run: which image sets, which reference set, which metrics, the backbones used
                       (model reference, revision, whether it is a tiny demo model) and where the job stands.
``evaluation_results`` one aggregate per (run, image set, metric): value, 95% bootstrap interval, median, top-5
                       average, n, and whether the number is reliable at that n, or ``unavailable`` with the model
                       that is missing. A metric that could not be computed never has a value.
``evaluation_images``  one row per evaluated image: its per-image scores (JSON, metric -> value), the OCR logo check,
                       and the provenance the drill-down shows (prompt, seed, model, LoRAs, training step).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow
from workbench.generate import tables as _generations  # noqa: F401 - the table evaluation_images points at


class Evaluation(Base):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued | running | done | failed
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # image sets, reference, metrics, backbones
    reference: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # resolved: dataset, split, n, brand
    backbones: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # metric -> {ref, revision, demo, ...}
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class EvaluationResult(Base):
    __tablename__ = "evaluation_results"
    __table_args__ = (UniqueConstraint("evaluation_id", "image_set", "metric", name="uq_evaluation_results"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    image_set: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16))  # ok | unavailable | no_data
    n: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # mean (per-image metrics) or the set metric
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    median: Mapped[float | None] = mapped_column(Float, nullable=True)
    top5: Mapped[float | None] = mapped_column(Float, nullable=True)
    reliable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: no sample-size rule for the metric
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the image set's training step, when known
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # why unavailable, KID std, thresholds, …


class EvaluationImage(Base):
    __tablename__ = "evaluation_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    image_set: Mapped[str] = mapped_column(String(200))
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id", ondelete="SET NULL"),
                                                      nullable=True, index=True)
    image_path: Mapped[str] = mapped_column(String(1000))
    prompt: Mapped[str] = mapped_column(Text, default="")
    reference_path: Mapped[str] = mapped_column(String(1000), default="")  # the paired product photo, if any
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # metric -> value
    ocr: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # LogoCheck fields
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # seed, model, loras, step, …
