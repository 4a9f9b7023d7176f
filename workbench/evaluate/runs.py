"""Evaluation runs: image sets x a reference set x metrics, run as a job (kind ``evaluate``), stored per image and
aggregated with the backbones used.

    cfg = EvalConfig(name="ckpt sweep",
                     image_sets=[ImageSet("base", batch="suite-s26-base"),
                                 ImageSet("step 1000", batch="suite-s26-ckpt1000", step=1000)],
                     reference=ReferenceSet(dataset="demo-aurelo", split="val"))
    eval_id = start_evaluation(cfg, user="ari")     # an evaluations row + a queued job (needs ``evaluate``)
    run_evaluation(eval_id)                         # what the job does (also callable in-process)
    result_rows([eval_id])                          # aggregates, with intervals and reliability

An image set is a generation batch, a list of generation ids, or both; its training step (for "metric vs step") is
given, or read from a ``checkpoint-<step>`` LoRA path. A prompt suite (``enqueue_prompt_suite``) queues one generate
job per model/LoRA/checkpoint with the same prompts and seeds, so the sets compare on identical inputs.

Paired metrics (LPIPS/SSIM/PSNR, "closeness to the product photo") pair an image with the reference photo whose
caption equals its prompt (case and spacing ignored), or, failing that, the longest reference caption of 3+ words
contained in the prompt (a prompt = trigger + caption). Unpaired images get no paired score.

A metric whose model is missing is stored as ``unavailable`` with the model reference and the remedy; it never gets
a number. OCR results of generated images are also written to the review queue (``record_check(..., "ocr")``).

Creating or queueing an evaluation and queueing a prompt suite need the ``evaluate`` permission (an analyst;
``workbench.review.auth``). ``run_evaluation`` runs one that ``create_evaluation`` allowed (the job does, as do the CLI
and the demo in-process), so it does not check again.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.csvsafe import csv_text, write_csv
from workbench.db import session_scope, utcnow
from workbench.evaluate import METRIC_CARDS, METRIC_GROUPS, PAIRED_PX
from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult
from workbench.review.auth import Actor, require
from workbench.settings import Settings, get_settings

DIVERSITY_PX = 256  # LPIPS diversity compares every pair of a prompt's images: at a lower resolution than paired
BACKBONE_SETTING = {"fid_kid": "fid_inception", "clip": "clip_scorer", "brand": "clip_scorer", "blip": "blip_itm",
                    "paired": "lpips_backbone", "diversity": "lpips_backbone", "preference": "preference",
                    "ocr": "ocr_backend"}
NEEDS_REFERENCE = ("fid_kid", "paired", "brand")


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
    def from_dict(cls, d: dict[str, Any]) -> "EvalConfig":
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
        q = select(Generation)
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


# -- backbones ------------------------------------------------------------------------------------------------------

@dataclass
class Backbone:
    group: str
    ref: str
    model: Any = None
    error: dict[str, str] | None = None  # {"ref", "reason", "remedy"} when unavailable
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def _package_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _backbone_info(ref: str, package: str) -> dict[str, Any]:
    from workbench.generate.sample import model_revision
    from workbench.models.sources import is_demo_model

    return {"ref": ref, "revision": model_revision(ref) if "/" in ref else "", "demo_model": is_demo_model(ref),
            "package": f"{package} {_package_version(package)}".strip()}


def load_backbone(group: str, ref: str, device: str = "cpu") -> Backbone:
    """Load what a metric group needs; ModelUnavailable becomes an ``unavailable`` Backbone, never an exception."""
    from workbench.models import sources

    packages = {"fid_kid": "torch-fidelity", "clip": "open_clip_torch", "brand": "open_clip_torch",
                "blip": "transformers", "paired": "torchmetrics", "diversity": "torchmetrics",
                "preference": "transformers", "ocr": "rapidocr"}
    try:
        if group == "fid_kid":
            model = sources.load_feature_extractor(ref)
        elif group in ("clip", "brand"):
            model = sources.load_open_clip(ref, device=device)
        elif group == "blip":
            model = sources.load_blip_itm(ref, device=device)
        elif group in ("paired", "diversity"):
            from workbench.evaluate.metrics import load_lpips

            model = load_lpips(ref)
        elif group == "preference":
            from workbench.evaluate.metrics import load_preference

            model = load_preference(ref, device=device)
        elif group == "ocr":
            from workbench.evaluate.ocr import load_ocr

            model = load_ocr(ref)
            info = {"ref": ref, "backend": model.backend, "fallback": model.fallback}
            return Backbone(group, ref, model, info=info)
        else:
            raise AssertionError(group)
    except sources.ModelUnavailable as exc:
        return Backbone(group, ref, error={"ref": exc.ref, "reason": exc.reason, "remedy": exc.remedy},
                        info={"ref": ref, "status": "unavailable"})
    return Backbone(group, ref, model, info=_backbone_info(ref, packages[group]))


# -- running --------------------------------------------------------------------------------------------------------

def _open(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def _chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _finite(v: float) -> float | None:
    import math

    return float(v) if math.isfinite(v) else None


class _Runner:
    """One evaluation: the state of a run between batches (metrics, per-set value lists, progress)."""

    def __init__(self, evaluation_id: int, cfg: EvalConfig, progress: Callable[..., None],
                 should_stop: Callable[[], bool], settings: Settings, models: dict[str, Any] | None = None):
        self.id, self.cfg, self.progress, self.should_stop, self.settings = evaluation_id, cfg, progress, \
            should_stop, settings
        self.models = models or {}
        self.device = cfg.device or settings.resolved_device()
        self.out_dir = settings.path("evaluations", str(evaluation_id))
        self.done = 0
        self.total = 0
        self._logo_cache: dict[str, str] = {}

    # backbones -----------------------------------------------------------------------------------------------
    def load(self) -> dict[str, Backbone]:
        refs = {**self.settings.models.model_dump(), **self.cfg.backbones}
        loaded: dict[str, Backbone] = {}
        for group in self.cfg.metrics:
            setting = BACKBONE_SETTING[group]
            if setting in self.models:  # an object passed in (tests inject tiny backbones this way)
                obj = self.models[setting]
                name = f"injected {type(obj).__name__}"
                loaded[group] = Backbone(group, name, obj, info={"ref": name, "injected": True})
                continue
            # clip and brand share one open_clip model; paired and diversity share one LPIPS network
            twin = next((b for b in loaded.values() if b.ref == refs[setting] and BACKBONE_SETTING[b.group] == setting),
                        None)
            loaded[group] = Backbone(group, twin.ref, twin.model, twin.error, twin.info) if twin else \
                load_backbone(group, refs[setting], self.device)
        return loaded

    def logo_text(self, brand: str) -> str:
        if self.cfg.logo_text:
            return self.cfg.logo_text
        brand = self.cfg.brand or brand
        if brand not in self._logo_cache:
            text = ""
            if brand:
                try:
                    from workbench.prompts.library import load_library

                    profile = load_library().brands.get(brand)
                    text = profile.logo_text if profile else ""
                except Exception:  # noqa: BLE001 - a broken profile means no logo text, reported per image
                    text = ""
            self._logo_cache[brand] = text
        return self._logo_cache[brand]

    def tick(self, n: int, message: str) -> None:
        self.done += n
        self.progress(self.done, self.total, message)

    # the run -------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        if any(g != "ocr" for g in cfg.metrics):  # every other metric runs on torch; an OCR-only run never imports it
            from workbench.evaluate import metrics as M
        sets = [(s, resolve_image_set(s)) for s in cfg.image_sets]
        reference_info: dict[str, Any] = {}
        refs: list[ReferenceRecord] = []
        if cfg.reference is not None:
            reference_info, refs = resolve_reference(cfg.reference)
        self.total = len(refs) + sum(len(r) for _, r in sets)
        self.progress(0, self.total, "loading models")
        bb = self.load()
        with session_scope() as s:
            row = s.get(Evaluation, self.id)
            row.reference = reference_info
            row.backbones = {g: (b.info if b.ok else {**b.info, **b.error}) for g, b in bb.items()}

        def usable(group: str) -> bool:
            return group in bb and bb[group].ok and (group not in NEEDS_REFERENCE or bool(refs))

        clip = M.ClipScore(*bb["clip"].model, device=self.device) if usable("clip") else None
        brand_clip = M.ClipScore(*bb["brand"].model, device=self.device) if usable("brand") else None
        blip = M.BlipScore(*bb["blip"].model, device=self.device) if usable("blip") else None
        pref = M.PreferenceScore(*bb["preference"].model, device=self.device) if usable("preference") else None
        dist = M.GenerativeDistances(bb["fid_kid"].model, kid_subsets=cfg.kid_subsets,
                                     fid_bootstrap=cfg.fid_bootstrap) if usable("fid_kid") else None
        paired = "paired" in cfg.metrics and bool(refs)
        lpips_ref = M.Lpips(bb["paired"].model) if paired and bb["paired"].ok else None
        diversity = M.LpipsDiversity(bb["diversity"].model) if usable("diversity") else None
        ocr = bb["ocr"].model if usable("ocr") else None

        # 1. one pass over the reference photos: FID/KID reference features and the brand centroid
        centroid = None
        if refs and (dist is not None or brand_clip is not None):
            total = None
            for chunk in _chunks(refs, cfg.batch_size):
                if self.should_stop():
                    return {"stopped": True}
                images = [_open(r.path) for r in chunk]
                if dist is not None:
                    dist.update(images, real=True)
                if brand_clip is not None:
                    emb = brand_clip.image_embeddings(images).sum(0)
                    total = emb if total is None else total + emb
                self.tick(len(chunk), f"reference photos {self.done}/{len(refs)}")
            if brand_clip is not None:
                centroid = total / len(refs)
        else:
            self.tick(len(refs), "reference photos")
        brand = M.BrandConsistency(brand_clip, centroid) if brand_clip is not None and centroid is not None else None
        index = CaptionIndex(refs) if paired else None
        if ocr is not None:
            self.out_dir.joinpath("ocr").mkdir(parents=True, exist_ok=True)

        summary: dict[str, Any] = {}
        for s, records in sets:
            values: dict[str, list[float]] = {k: [] for k in METRIC_CARDS}
            per_prompt: dict[str, float] = {}
            group: list[Any] = []
            group_prompt: str | None = None
            if dist is not None:
                dist.reset_generated()

            def flush_group() -> None:
                if diversity is not None and len(group) >= 2:
                    import torch

                    diversity.update(torch.stack(group))
                    per_prompt[group_prompt] = diversity.last_value
                    values["lpips_diversity"].append(diversity.last_value)
                group.clear()

            for chunk in _chunks(records, cfg.batch_size):
                if self.should_stop():
                    return {"stopped": True}
                images = [_open(r.path) for r in chunk]
                prompts = [r.prompt for r in chunk]
                scores: list[dict[str, float | None]] = [{} for _ in chunk]
                ocr_details: list[dict[str, Any] | None] = [None for _ in chunk]
                ref_paths: list[str] = ["" for _ in chunk]

                def put(key: str, vals) -> None:
                    for sc, v in zip(scores, vals):
                        sc[key] = _finite(float(v))
                        if sc[key] is not None:
                            values[key].append(sc[key])

                if clip is not None:
                    clip.update(images, prompts)
                    put("clip_cosine", clip.last_values)
                    put("clip_score_100", M.clip_score_100(clip.last_values))
                if blip is not None:
                    blip.update(images, prompts)
                    put("blip_itm", blip.last_values)
                if pref is not None:
                    pref.update(images, prompts)
                    put("pickscore", pref.last_values)
                if brand is not None:
                    brand.update(images)
                    put("brand_consistency", brand.last_values)
                if dist is not None:
                    dist.update(images, real=False)
                if index is not None:
                    self._paired(chunk, images, index, lpips_ref, scores, values, ref_paths)
                if diversity is not None:
                    for r, im in zip(chunk, images):
                        if r.prompt != group_prompt:
                            flush_group()
                            group_prompt = r.prompt
                        group.append(M.paired_tensor(im, DIVERSITY_PX).float())
                if ocr is not None:
                    self._ocr(chunk, images, ocr, scores, values, ocr_details)
                with session_scope() as sess:
                    for r, sc, od, rp in zip(chunk, scores, ocr_details, ref_paths):
                        sess.add(EvaluationImage(
                            evaluation_id=self.id, image_set=s.label, generation_id=r.generation_id,
                            image_path=r.path, prompt=r.prompt, reference_path=rp, scores=sc, ocr=od,
                            provenance={**r.provenance, "step": r.step, "brand": r.brand}))
                del images
                self.tick(len(chunk), f"{s.label}: {self.done}/{self.total} images")
            flush_group()
            summary[s.label] = self._store_aggregates(s, records, bb, values, per_prompt, dist, refs)
        return {"evaluation_id": self.id, "images": sum(len(r) for _, r in sets), "reference": len(refs),
                "sets": summary}

    def _paired(self, chunk, images, index, lpips_ref, scores, values, ref_paths) -> None:
        import torch

        from workbench.evaluate import metrics as M

        idx, gen, ref = [], [], []
        for i, (r, im) in enumerate(zip(chunk, images)):
            path = index.find(r.prompt)
            if path:
                idx.append(i)
                ref_paths[i] = path
                gen.append(M.paired_tensor(im, self.cfg.paired_px))
                ref.append(M.paired_tensor(_open(path), self.cfg.paired_px))
        if not idx:
            return
        preds, target = torch.stack(gen), torch.stack(ref)
        metrics = [("psnr_ref", M.Psnr()), ("ssim_ref", M.Ssim())]
        if lpips_ref is not None:
            metrics.append(("lpips_ref", lpips_ref))
        for key, metric in metrics:
            metric.update(preds, target)
            for i, v in zip(idx, metric.last_values.tolist()):
                scores[i][key] = _finite(v)
                if scores[i][key] is not None:
                    values[key].append(scores[i][key])

    def _ocr(self, chunk, images, engine, scores, values, details) -> None:
        from workbench.evaluate.ocr import check_logo, draw_overlay

        for i, (r, im) in enumerate(zip(chunk, images)):
            logo = self.logo_text(r.brand)
            if not logo:
                details[i] = {"skipped": f"brand {self.cfg.brand or r.brand!r} has no logo_text"}
                continue
            check = check_logo(engine, im, logo, self.cfg.ocr_threshold)
            name = f"{r.generation_id or 'img'}-{hashlib.sha1(r.path.encode()).hexdigest()[:10]}.png"
            overlay = self.out_dir / "ocr" / name
            tmp = overlay.with_name(f".{name}.tmp")
            draw_overlay(im, check).save(tmp, format="PNG")
            tmp.replace(overlay)
            details[i] = {**check.to_detail(), "overlay": str(overlay)}
            scores[i]["ocr_pass"] = 1.0 if check.passed else 0.0
            scores[i]["ocr_score"] = check.score
            values["ocr_pass"].append(scores[i]["ocr_pass"])
            if self.cfg.record_checks and r.generation_id is not None:
                from workbench.review.auth import system_actor
                from workbench.review.queue import record_check

                # the job acts as a system analyst (recording checks is the analyst's "evaluate" permission)
                record_check(system_actor("evaluation", role="analyst"), r.generation_id, "ocr", check.passed,
                             {"evaluation_id": self.id, "expected": check.expected, "read": check.text,
                              "score": round(check.score, 1), "confidence": check.confidence,
                              "backend": check.backend})

    def _store_aggregates(self, s: ImageSet, records, bb, values, per_prompt, dist, refs) -> dict[str, Any]:
        from workbench.evaluate import FID_RELIABLE_N, KID_RELIABLE_N, aggregate

        first = records[0].provenance
        set_info = {"model": first.get("model"), "loras": first.get("loras"), "params": s.params,
                    "fine_tuned": bool(first.get("loras")), "batch": s.batch}
        steps = {r.step for r in records}
        step = steps.pop() if len(steps) == 1 else None
        rows: list[EvaluationResult] = []
        distances = None  # FID and KID come from one compute (the FID bootstrap is the costly part)

        def add(metric: str, status: str, **kw: Any) -> None:
            detail = {**set_info, **kw.pop("detail", {})}
            rows.append(EvaluationResult(evaluation_id=self.id, image_set=s.label, metric=metric, status=status,
                                         step=step, detail=detail, **kw))

        for group in self.cfg.metrics:
            b = bb.get(group)
            for metric in METRIC_GROUPS[group]:
                card = METRIC_CARDS[metric]
                if b is not None and not b.ok and not (group == "paired" and metric != "lpips_ref"):
                    add(metric, "unavailable", detail={"unavailable": b.error})
                    continue
                if group in NEEDS_REFERENCE and not refs:
                    add(metric, "no_data", detail={"why": "no reference set chosen"})
                    continue
                if metric in ("fid", "kid"):
                    if dist is None or dist.n_fake < 2 or dist.n_real < 2:
                        add(metric, "no_data", n=dist.n_fake if dist else 0,
                            detail={"why": "FID/KID need at least 2 images in each set"})
                        continue
                    d = distances = distances or dist.compute()
                    if metric == "fid":
                        add("fid", "ok", n=d.n_fake, value=d.fid, ci_low=d.fid_ci[0] if d.fid_ci else None,
                            ci_high=d.fid_ci[1] if d.fid_ci else None, reliable=d.fid_reliable,
                            detail={"n_reference": d.n_real, "reliable_from": FID_RELIABLE_N,
                                    "interval": "95% percentile bootstrap over both sets" if d.fid_ci else "",
                                    "bootstrap": self.cfg.fid_bootstrap if d.fid_ci else 0})
                    else:
                        add("kid", "ok", n=d.n_fake, value=d.kid, ci_low=d.kid - d.kid_std, ci_high=d.kid + d.kid_std,
                            reliable=d.kid_reliable, detail={"n_reference": d.n_real, "std": d.kid_std,
                                                             "subset_size": d.kid_subset_size,
                                                             "interval": "mean ± std over subsets",
                                                             "reliable_from": KID_RELIABLE_N})
                    continue
                vals = values[metric]
                if not vals:
                    why = {"lpips_diversity": "no prompt has 2 or more images",
                           "ocr_pass": "no brand logo_text to look for"}.get(metric, "no image had a value")
                    if metric in ("lpips_ref", "ssim_ref", "psnr_ref"):
                        why = "no image's prompt matches a reference caption"
                    add(metric, "no_data", detail={"why": why})
                    continue
                a = aggregate(vals, higher_is_better=card.higher_is_better)
                extra: dict[str, Any] = {}
                if metric == "lpips_diversity":
                    extra = {"prompts": len(per_prompt)}
                if metric == "ocr_pass":
                    extra = {"failed": int(len(vals) - sum(vals))}
                if metric in ("lpips_ref", "ssim_ref", "psnr_ref"):
                    extra = {"paired": len(vals), "of": len(records)}
                add(metric, "ok", n=a.n, value=a.mean, ci_low=a.ci_low, ci_high=a.ci_high, median=a.median,
                    top5=a.top5, detail=extra)
        with session_scope() as sess:
            sess.add_all(rows)
        return {r.metric: r.value for r in rows}


def run_evaluation(evaluation_id: int, progress: Callable[..., None] | None = None,
                   should_stop: Callable[[], bool] | None = None, settings: Settings | None = None,
                   models: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a created evaluation in this process; marks it running, then done or failed (re-raising the error).
    ``models`` maps a Settings.models field to an already loaded backbone (e.g. an LPIPS network), used instead of
    loading that setting's reference."""
    settings = settings or get_settings()
    with session_scope() as s:
        row = s.get(Evaluation, evaluation_id)
        if row is None:
            raise EvaluationError(f"no evaluation with id {evaluation_id}")
        cfg = EvalConfig.from_dict(row.config)
        row.status, row.error = "running", ""
        s.query(EvaluationResult).filter_by(evaluation_id=evaluation_id).delete()  # a rerun starts clean
        s.query(EvaluationImage).filter_by(evaluation_id=evaluation_id).delete()
    try:
        cfg.check()
        result = _Runner(evaluation_id, cfg, progress or (lambda *a, **k: None), should_stop or (lambda: False),
                         settings, models).run()
    except BaseException as exc:
        with session_scope() as s:
            row = s.get(Evaluation, evaluation_id)
            row.status, row.error, row.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], utcnow()
        raise
    with session_scope() as s:
        row = s.get(Evaluation, evaluation_id)
        row.status = "stopped" if result.get("stopped") else "done"
        row.finished_at = utcnow()
    return result


def create_evaluation(cfg: EvalConfig, user: Actor) -> int:
    """Store the evaluation (not run yet) for ``user``; returns its id."""
    user = require(user, "evaluate").username
    cfg.check()
    with session_scope() as s:
        row = Evaluation(name=cfg.name or f"evaluation of {', '.join(x.label for x in cfg.image_sets)}"[:200],
                         config=cfg.to_dict(), reference={}, backbones={}, created_by=user)
        s.add(row)
        s.flush()
        return row.id


def start_evaluation(cfg: EvalConfig, user: Actor, start_worker: bool = True) -> int:
    """Create the evaluation and queue its job (kind ``evaluate``); returns the evaluation id."""
    from workbench.jobs import enqueue, ensure_worker

    who = require(user, "evaluate")
    evaluation_id = create_evaluation(cfg, who)
    if start_worker:
        ensure_worker()
    job_id = enqueue("evaluate", {"evaluation_id": evaluation_id}, title=f"evaluate #{evaluation_id}",
                     created_by=who.username)
    with session_scope() as s:
        s.get(Evaluation, evaluation_id).job_id = job_id
    return evaluation_id


def evaluate_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``evaluate``): config ``{"evaluation_id": N}`` from ``start_evaluation``."""
    from workbench.jobs import JobStopped

    evaluation_id = int(ctx.config["evaluation_id"])
    with session_scope() as s:
        s.get(Evaluation, evaluation_id).job_id = ctx.job_id
    ctx.log(f"evaluation {evaluation_id}")
    result = run_evaluation(evaluation_id, progress=lambda step, total, msg: ctx.progress(step, total, message=msg),
                            should_stop=ctx.should_stop, settings=ctx.settings)
    if result.get("stopped"):
        raise JobStopped()
    return result


# -- prompt suites --------------------------------------------------------------------------------------------------

@dataclass
class SuiteVariant:
    """One model to run the suite through: a base model, optionally with LoRAs (e.g. one training checkpoint)."""

    label: str
    model: str | None = None  # default: settings.models.sdxl_base
    loras: list[dict[str, Any]] = field(default_factory=list)  # [{"path", "scale"}]
    step: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


def suite_batch(suite: str, label: str) -> str:
    name = f"suite-{suite}-{label}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]


def enqueue_prompt_suite(suite: str, prompts: Sequence[str], variants: Sequence[SuiteVariant], seed: int = 0,
                         images_per_prompt: int = 1, width: int = 1024, height: int = 1024, steps: int = 30,
                         device: str | None = None, *, user: Actor) -> list[ImageSet]:
    """Queue one generate job per variant with the same prompts and seeds; returns the image sets to evaluate.
    Needs ``evaluate``: the suite is an analyst's measuring tool, so its jobs generate for them (as checked here)."""
    from workbench.generate.batch import BatchConfig, BatchPrompt, enqueue_batch
    from workbench.generate.pipeline import LoraSpec, PipelineSpec
    from workbench.review.auth import on_behalf_of

    user = require(user, "evaluate").username
    if not prompts:
        raise EvaluationError("a prompt suite needs at least one prompt")
    labels = [v.label for v in variants]
    if not variants or len(set(labels)) != len(labels):
        raise EvaluationError(f"suite variants need unique labels, got {labels}")
    device = device or get_settings().resolved_device()
    out = []
    for v in variants:
        batch = suite_batch(suite, v.label)
        spec = PipelineSpec(model=v.model or get_settings().models.sdxl_base, device=device,
                            loras=tuple(LoraSpec(l["path"], float(l.get("scale", 1.0))) for l in v.loras))
        config = BatchConfig(spec=spec, prompts=tuple(BatchPrompt(p) for p in prompts), batch=batch,
                             params={"width": width, "height": height, "steps": steps, "seed": seed,
                                     "num_images": images_per_prompt})
        enqueue_batch(on_behalf_of(user, "generate"), config, title=f"suite {suite}: {v.label}")
        out.append(ImageSet(label=v.label, batch=batch, step=v.step, params=dict(v.params)))
    return out


# -- reading results ------------------------------------------------------------------------------------------------

def list_evaluations(limit: int = 50) -> list[Evaluation]:
    with session_scope() as s:
        return list(s.scalars(select(Evaluation).order_by(Evaluation.id.desc()).limit(limit)))


def get_evaluation(evaluation_id: int) -> Evaluation:
    with session_scope() as s:
        row = s.get(Evaluation, evaluation_id)
    if row is None:
        raise EvaluationError(f"no evaluation with id {evaluation_id}")
    return row


def status_of(e: Evaluation) -> str:
    """The evaluation's status, or its job's when the job ended without the run recording it (a killed process)."""
    if e.status in ("queued", "running") and e.job_id:
        from workbench.jobs import JobError, get_job

        try:
            job = get_job(e.job_id)
        except JobError:
            return e.status
        if job.status in ("failed", "stopped"):
            return job.status
    return e.status


def unavailable_text(detail: dict[str, Any]) -> str:
    u = detail.get("unavailable") or {}
    return f"unavailable: {u.get('ref', '?')} — run `workbench models pull`"


def display_value(r: EvaluationResult | dict[str, Any]) -> str:
    """How a result reads in a table: the number with its interval and reliability, or why there is none."""
    get = r.get if isinstance(r, dict) else lambda k, d=None: getattr(r, k, d)
    status, detail = get("status"), get("detail") or {}
    if status == "unavailable":
        return unavailable_text(detail)
    if status != "ok" or get("value") is None:
        return f"no data: {detail.get('why', '')}".rstrip(": ")
    value, lo, hi = get("value"), get("ci_low"), get("ci_high")
    text = f"{value:.4g}"
    if lo is not None and hi is not None:
        text += f" [{lo:.4g}, {hi:.4g}]"
    if get("reliable") is False:
        text += f" · unreliable: n={get('n')}"
    return text


def result_rows(evaluation_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every aggregate of the given runs, one dict per (run, image set, metric), ready for a table or CSV."""
    with session_scope() as s:
        evals = {e.id: e for e in s.scalars(select(Evaluation).where(Evaluation.id.in_(list(evaluation_ids))))}
        rows = s.scalars(select(EvaluationResult).where(EvaluationResult.evaluation_id.in_(list(evaluation_ids)))
                         .order_by(EvaluationResult.evaluation_id, EvaluationResult.id)).all()
    out = []
    for r in rows:
        e = evals[r.evaluation_id]
        card = METRIC_CARDS.get(r.metric)
        backbone = (e.backbones or {}).get(next((g for g, ms in METRIC_GROUPS.items() if r.metric in ms), ""), {})
        out.append({"evaluation": r.evaluation_id, "name": e.name, "image_set": r.image_set, "step": r.step,
                    "fine_tuned": (r.detail or {}).get("fine_tuned"), "metric": r.metric,
                    "title": card.title if card else r.metric, "status": r.status,
                    "value": r.value if r.status == "ok" else None, "ci_low": r.ci_low if r.status == "ok" else None,
                    "ci_high": r.ci_high if r.status == "ok" else None, "median": r.median, "top5": r.top5,
                    "n": r.n, "reliable": r.reliable, "display": display_value(r),
                    "higher_is_better": card.higher_is_better if card else None,
                    "backbone": backbone.get("ref", ""), "backbone_demo": bool(backbone.get("demo_model")),
                    "params": (r.detail or {}).get("params") or {}, "detail": r.detail or {}})
    return out


def image_rows(evaluation_id: int) -> list[dict[str, Any]]:
    """Per-image rows for the drill-down: path, prompt, provenance, every score and the OCR result."""
    with session_scope() as s:
        rows = s.scalars(select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id)
                         .order_by(EvaluationImage.id)).all()
    out = []
    for r in rows:
        ocr = r.ocr or {}
        out.append({"id": r.id, "image_set": r.image_set, "generation_id": r.generation_id, "image": r.image_path,
                    "prompt": r.prompt, "reference": r.reference_path, **{k: v for k, v in (r.scores or {}).items()},
                    "ocr_read": ocr.get("text"), "ocr_backend": ocr.get("backend"), "ocr_overlay": ocr.get("overlay"),
                    "provenance": r.provenance or {}})
    return out


CSV_COLUMNS = ["evaluation", "name", "image_set", "step", "metric", "status", "value", "ci_low", "ci_high", "median",
               "top5", "n", "reliable", "backbone", "display"]


def export_csv(evaluation_ids: Sequence[int], path: str | Path | None = None) -> str:
    """The aggregates of the given runs as CSV (written to ``path`` when given); returns the text."""
    rows = result_rows(evaluation_ids)
    if path is not None:
        return write_csv(path, CSV_COLUMNS, rows, lineterminator="\n")
    return csv_text(CSV_COLUMNS, rows, lineterminator="\n")
