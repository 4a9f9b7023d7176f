"""What an evaluation compares: its config (``EvalConfig``: image sets x a reference set x metrics, checked, stored as
a dict) and how that resolves to images: an image set is a generation batch, a list of generation ids, or both; its
training step (for "metric vs step") is given, or read from a ``checkpoint-<step>`` LoRA path.

Paired metrics (LPIPS/SSIM/PSNR, "closeness to the product photo") pair an image with the reference photo whose
caption equals its prompt (case and spacing ignored), or, failing that, the longest reference caption of 3+ words
contained in the prompt (a prompt = trigger + caption): ``CaptionIndex``. Unpaired images get no paired score.

    cfg = EvalConfig(image_sets=[ImageSet("base", batch="suite-s26-base")],
                     reference=ReferenceSet(dataset="demo-aurelo", split="val"))
    cfg.check()
    records = resolve_image_set(cfg.image_sets[0])
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from workbench import trash
from workbench.db import session_scope
from workbench.evaluate.cards import METRIC_GROUPS, PAIRED_PX
from workbench.settings import get_settings

NEEDS_REFERENCE = ("fid_kid", "paired", "brand")  # metric groups that compare with the reference set


class EvaluationError(ValueError):
    """An evaluation that cannot run as configured; the message names the setting and its value."""


# -- configuration --------------------------------------------------------------------------------------------------

@dataclass
class ImageSet:
    label: str
    batch: str | None = None  # a generations batch
    generation_ids: list[int] = field(default_factory=list)
    step: int | None = None  # training step of the checkpoint that made it (for "metric vs step")
    params: dict[str, Any] = field(default_factory=dict)  # sweep parameters to chart against, e.g. {"rank": 8}
    kept_only: bool = True  # leave out CLIP-gate attempts that were not kept


@dataclass
class ReferenceSet:
    dataset: int | str  # id or name
    split: str | None = "val"  # train | val | test | None (every non-excluded item)


@dataclass
class EvalConfig:
    image_sets: list[ImageSet]
    reference: ReferenceSet | None = None
    name: str = ""
    metrics: list[str] = field(default_factory=lambda: list(METRIC_GROUPS))
    brand: str = ""  # brand profile for the logo text (default: each generation's brand)
    logo_text: str = ""  # overrides the brand profile's logo_text
    ocr_threshold: float = 85.0
    backbones: dict[str, str] = field(default_factory=dict)  # Settings.models field -> reference, overriding settings
    batch_size: int = 8
    paired_px: int = PAIRED_PX
    fid_bootstrap: int = 50
    kid_subsets: int = 100
    device: str | None = None
    record_checks: bool = True  # write OCR results to the review queue

    def check(self) -> None:
        if not self.image_sets:
            raise EvaluationError("image_sets is empty: choose at least one generation batch or list of generation ids")
        labels = [s.label for s in self.image_sets]
        for s in self.image_sets:
            if not s.label.strip():
                raise EvaluationError("an image set has an empty label")
            if not s.batch and not s.generation_ids:
                raise EvaluationError(f"image set {s.label!r}: give a batch or generation_ids")
        dup = sorted({l for l in labels if labels.count(l) > 1})
        if dup:
            raise EvaluationError(f"image set labels must be unique; repeated: {', '.join(dup)}")
        unknown = [m for m in self.metrics if m not in METRIC_GROUPS]
        if unknown:
            raise EvaluationError(f"metrics {unknown} unknown; choose from {', '.join(METRIC_GROUPS)}")
        if not self.metrics:
            raise EvaluationError("metrics is empty")
        fields = set(get_settings().models.model_dump())
        bad = sorted(set(self.backbones) - fields)
        if bad:
            raise EvaluationError(f"backbones {bad}: not model settings (known: {', '.join(sorted(fields))})")
        if self.reference is not None and self.reference.split not in (None, "train", "val", "test"):
            raise EvaluationError(f"reference split {self.reference.split!r} must be train, val, test or empty")
        if not 1 <= self.batch_size <= 256:
            raise EvaluationError(f"batch_size {self.batch_size} must be between 1 and 256")
        if not 0 <= self.ocr_threshold <= 100:
            raise EvaluationError(f"ocr_threshold {self.ocr_threshold} must be between 0 and 100")
        if not 32 <= self.paired_px <= 2048:
            raise EvaluationError(f"paired_px {self.paired_px} must be between 32 and 2048")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalConfig:
        d = dict(d)
        d.pop("evaluation_id", None)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise EvaluationError(f"unknown evaluation setting(s): {', '.join(sorted(unknown))}")
        sets = []
        for s in d.pop("image_sets", []):
            extra = set(s) - set(ImageSet.__dataclass_fields__)
            if extra:
                raise EvaluationError(f"image set {s.get('label')!r}: unknown key(s) {', '.join(sorted(extra))}")
            sets.append(ImageSet(**s))
        ref = d.pop("reference", None)
        if isinstance(ref, dict):
            extra = set(ref) - {"dataset", "split"}
            if extra:
                raise EvaluationError(f"reference: unknown key(s) {', '.join(sorted(extra))}")
            ref = ReferenceSet(**ref)
        return cls(image_sets=sets, reference=ref, **d)


# -- what gets evaluated --------------------------------------------------------------------------------------------

@dataclass
class ImageRecord:
    image_set: str
    path: str
    prompt: str
    generation_id: int | None = None
    brand: str = ""
    step: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReferenceRecord:
    path: str
    caption: str


STEP_IN_PATH = re.compile(r"checkpoint-(\d+)")


def _step_from_loras(loras: list[dict[str, Any]]) -> int | None:
    for l in loras or []:
        m = STEP_IN_PATH.search(f"{l.get('path', '')} {l.get('name', '')}")
        if m:
            return int(m.group(1))
    return None


def resolve_image_set(s: ImageSet) -> list[ImageRecord]:
    """The images of a set, sorted by prompt (so a prompt's images are neighbours) then id."""
    from workbench.generate.tables import Generation

    with session_scope() as sess:
        q = select(Generation).where(Generation.batch.not_in(trash.hidden_keys("batch")))  # the trash's left out
        if s.batch and s.generation_ids:
            q = q.where((Generation.batch == s.batch) | Generation.id.in_(s.generation_ids))
        elif s.batch:
            q = q.where(Generation.batch == s.batch)
        else:
            q = q.where(Generation.id.in_(s.generation_ids))
        if s.kept_only:
            q = q.where(Generation.kept.is_(True))
        rows = sess.scalars(q.order_by(Generation.prompt, Generation.id)).all()
        if s.generation_ids:
            missing = sorted(set(s.generation_ids) - {r.id for r in rows})
            if missing:
                raise EvaluationError(f"image set {s.label!r}: generation ids {missing} do not exist (or were not "
                                      "kept by the CLIP gate)")
        out = []
        for r in rows:
            prov = {"batch": r.batch, "model": r.model, "loras": r.loras, "seed": r.seed, "steps": r.steps,
                    "guidance": r.guidance, "scheduler": r.scheduler, "quantization": r.quantization,
                    "attempt": r.attempt, "demo_model": r.demo_model, "size": f"{r.width}x{r.height}"}
            step = s.step if s.step is not None else _step_from_loras(r.loras)
            out.append(ImageRecord(s.label, r.image_path, r.prompt, r.id, r.brand, step, prov))
    if not out:
        raise EvaluationError(f"image set {s.label!r} has no images (batch {s.batch!r}, ids {s.generation_ids})")
    return out


def resolve_reference(ref: ReferenceSet) -> tuple[dict[str, Any], list[ReferenceRecord]]:
    from workbench.data.store import get_dataset, image_path
    from workbench.data.tables import Item

    try:
        ds = get_dataset(ref.dataset)
    except Exception as exc:  # noqa: BLE001 - DatasetError or a bad id: one clear message
        raise EvaluationError(f"reference dataset {ref.dataset!r}: {exc}") from None
    with session_scope() as s:
        q = select(Item).where(Item.dataset_id == ds.id, Item.excluded.is_(False))
        if ref.split:
            q = q.where(Item.split == ref.split)
        items = s.scalars(q.order_by(Item.id)).all()
        records = [ReferenceRecord(str(image_path(i)), i.caption or "") for i in items]
    if not records:
        split = f"split {ref.split!r}" if ref.split else "any split"
        raise EvaluationError(f"reference dataset {ds.name!r} has no photos in {split} (split the dataset first, "
                              "or choose another split)")
    return {"dataset_id": ds.id, "dataset": ds.name, "split": ref.split, "n": len(records)}, records


def _norm_caption(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


class CaptionIndex:
    """Finds the product photo of a prompt: same caption, else the longest caption (3+ words) inside the prompt."""

    def __init__(self, refs: Sequence[ReferenceRecord]):
        self.exact: dict[str, str] = {}
        for r in refs:
            key = _norm_caption(r.caption)
            if key:
                self.exact.setdefault(key, r.path)
        self.long = sorted((k for k in self.exact if len(k.split()) >= 3), key=len, reverse=True)

    def find(self, prompt: str) -> str | None:
        key = _norm_caption(prompt)
        if key in self.exact:
            return self.exact[key]
        padded = f" {key} "
        for cap in self.long:
            if f" {cap} " in padded:
                return self.exact[cap]
        return None
