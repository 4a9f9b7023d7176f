"""Running an evaluation: image sets x a reference set x metrics, as a job (kind ``evaluate``) or in-process, stored
per image and aggregated with the backbones used.

    eval_id = start_evaluation("ari", cfg)          # an evaluations row + a queued job (needs ``evaluate``)
    run_evaluation(eval_id)                         # what the job does (also callable in-process)

Images are read batch by batch and dropped. A metric whose model is missing is stored as ``unavailable`` with the
model reference and the remedy; it never gets a number. OCR results of generated images are also written to the
review queue (``record_check(..., "ocr")``).

Creating or queueing an evaluation needs the ``evaluate`` permission (an analyst; ``workbench.auth``).
``run_evaluation`` runs one that ``create_evaluation`` allowed (the job does, as do the CLI and the demo in-process),
so it does not check again.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.db import session_scope, utcnow
from workbench.evaluate.backbones import BACKBONE_SETTING, Backbone, load_backbone
from workbench.evaluate.cards import METRIC_CARDS, METRIC_GROUPS
from workbench.evaluate.config import (NEEDS_REFERENCE, CaptionIndex, EvalConfig, EvaluationError, ImageSet,
                                       ReferenceRecord, resolve_image_set, resolve_reference)
from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

DIVERSITY_PX = 256  # LPIPS diversity compares every pair of a prompt's images: at a lower resolution than paired


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


class _Stopped(Exception):
    """``should_stop()`` said so between two batches: the run ends as stopped (what it stored stays)."""


@dataclass
class _Metrics:
    """The metric objects of one run: None where the group was not asked for, its backbone is unavailable, or it needs
    the reference set and there is none."""

    paired: bool = False  # LPIPS/SSIM/PSNR to the product photo (SSIM and PSNR need no backbone)
    ocr: Any = None
    clip: Any = None
    brand_clip: Any = None
    blip: Any = None
    pref: Any = None
    dist: Any = None  # FID and KID
    lpips_ref: Any = None
    diversity: Any = None
    brand: Any = None  # BrandConsistency, once the reference pass gave the centroid
    index: CaptionIndex | None = None  # finds a prompt's product photo (paired metrics)


@dataclass
class _SetValues:
    """One image set's values: every metric's per-image values, LPIPS diversity per prompt, and the images of the
    prompt diversity is collecting."""

    values: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in METRIC_CARDS})
    per_prompt: dict[str, float] = field(default_factory=dict)
    group: list[Any] = field(default_factory=list)
    group_prompt: str | None = None

    def put(self, scores: list[dict[str, float | None]], key: str, vals) -> None:
        for sc, v in zip(scores, vals):
            sc[key] = _finite(float(v))
            if sc[key] is not None:
                self.values[key].append(sc[key])


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
        refs = {**self.settings.models.model_dump(), **self.brand_scorer(), **self.cfg.backbones}
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

    def brand_scorer(self) -> dict[str, str]:
        """The evaluation's brand profile's ``scorer:`` as the CLIP backbone (a run's ``backbones`` still win)."""
        if not self.cfg.brand:
            return {}
        from workbench.prompts.library import load_library

        profile = load_library().brands.get(self.cfg.brand)
        return {"clip_scorer": profile.scorer} if profile is not None and profile.scorer else {}

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
        try:
            return self._run()
        except _Stopped:
            return {"stopped": True}

    def check_stop(self) -> None:
        if self.should_stop():
            raise _Stopped()

    def _run(self) -> dict[str, Any]:
        cfg = self.cfg
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
        m = self._metrics(bb, refs)
        self._reference_pass(refs, m)
        if m.ocr is not None:
            self.out_dir.joinpath("ocr").mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {}
        for s, records in sets:
            summary[s.label] = self._evaluate_set(s, records, m, bb, refs)
        return {"evaluation_id": self.id, "images": sum(len(r) for _, r in sets), "reference": len(refs),
                "sets": summary}

    def _metrics(self, bb: dict[str, Backbone], refs: list[ReferenceRecord]) -> _Metrics:
        """The metric objects whose backbone loaded (and, where they need one, with a reference set)."""
        cfg = self.cfg

        def usable(group: str) -> bool:
            return group in bb and bb[group].ok and (group not in NEEDS_REFERENCE or bool(refs))

        m = _Metrics(paired="paired" in cfg.metrics and bool(refs), ocr=bb["ocr"].model if usable("ocr") else None)
        # every other metric runs on torch; an OCR-only run never imports it
        if not any(g != "ocr" for g in cfg.metrics):
            return m
        from workbench.evaluate import metrics as M

        m.clip = M.ClipScore(*bb["clip"].model, device=self.device) if usable("clip") else None
        m.brand_clip = M.ClipScore(*bb["brand"].model, device=self.device) if usable("brand") else None
        m.blip = M.BlipScore(*bb["blip"].model, device=self.device) if usable("blip") else None
        m.pref = M.PreferenceScore(*bb["preference"].model, device=self.device) if usable("preference") else None
        m.dist = M.GenerativeDistances(bb["fid_kid"].model, kid_subsets=cfg.kid_subsets,
                                       fid_bootstrap=cfg.fid_bootstrap) if usable("fid_kid") else None
        m.lpips_ref = M.Lpips(bb["paired"].model) if m.paired and bb["paired"].ok else None
        m.diversity = M.LpipsDiversity(bb["diversity"].model) if usable("diversity") else None
        return m

    def _reference_pass(self, refs: list[ReferenceRecord], m: _Metrics) -> None:
        """One pass over the reference photos: FID/KID reference features and the brand centroid."""
        centroid = None
        if refs and (m.dist is not None or m.brand_clip is not None):
            total = None
            for chunk in _chunks(refs, self.cfg.batch_size):
                self.check_stop()
                images = [_open(r.path) for r in chunk]
                if m.dist is not None:
                    m.dist.update(images, real=True)
                if m.brand_clip is not None:
                    emb = m.brand_clip.image_embeddings(images).sum(0)
                    total = emb if total is None else total + emb
                self.tick(len(chunk), f"reference photos {self.done}/{len(refs)}")
            if m.brand_clip is not None:
                centroid = total / len(refs)
        else:
            self.tick(len(refs), "reference photos")
        if m.brand_clip is not None and centroid is not None:
            from workbench.evaluate import metrics as M

            m.brand = M.BrandConsistency(m.brand_clip, centroid)
        m.index = CaptionIndex(refs) if m.paired else None

    def _evaluate_set(self, s: ImageSet, records, m: _Metrics, bb, refs) -> dict[str, Any]:
        """Every image of one set, batch by batch: per-image scores stored as each batch finishes, then the
        aggregates."""
        v = _SetValues()
        if m.dist is not None:
            m.dist.reset_generated()
        for chunk in _chunks(records, self.cfg.batch_size):
            self.check_stop()
            images = [_open(r.path) for r in chunk]
            scores: list[dict[str, float | None]] = [{} for _ in chunk]
            ocr_details: list[dict[str, Any] | None] = [None for _ in chunk]
            ref_paths: list[str] = ["" for _ in chunk]
            self._image_text(chunk, images, m, scores, v)
            if m.dist is not None:
                m.dist.update(images, real=False)
            if m.index is not None:
                self._paired(chunk, images, m.index, m.lpips_ref, scores, v.values, ref_paths)
            if m.diversity is not None:
                self._diversity(chunk, images, m.diversity, v)
            if m.ocr is not None:
                self._ocr(chunk, images, m.ocr, scores, v.values, ocr_details)
            with session_scope() as sess:
                for r, sc, od, rp in zip(chunk, scores, ocr_details, ref_paths):
                    sess.add(EvaluationImage(
                        evaluation_id=self.id, image_set=s.label, generation_id=r.generation_id,
                        image_path=r.path, prompt=r.prompt, reference_path=rp, scores=sc, ocr=od,
                        provenance={**r.provenance, "step": r.step, "brand": r.brand}))
            del images
            self.tick(len(chunk), f"{s.label}: {self.done}/{self.total} images")
        self._flush_diversity(m.diversity, v)
        return self._store_aggregates(s, records, bb, v.values, v.per_prompt, m.dist, refs)

    def _image_text(self, chunk, images, m: _Metrics, scores, v: _SetValues) -> None:
        """Image-prompt scores (CLIP, BLIP, PickScore) and brand consistency."""
        prompts = [r.prompt for r in chunk]
        if m.clip is not None:
            from workbench.evaluate import metrics as M

            m.clip.update(images, prompts)
            v.put(scores, "clip_cosine", m.clip.last_values)
            v.put(scores, "clip_score_100", M.clip_score_100(m.clip.last_values))
        if m.blip is not None:
            m.blip.update(images, prompts)
            v.put(scores, "blip_itm", m.blip.last_values)
        if m.pref is not None:
            m.pref.update(images, prompts)
            v.put(scores, "pickscore", m.pref.last_values)
        if m.brand is not None:
            m.brand.update(images)
            v.put(scores, "brand_consistency", m.brand.last_values)

    def _diversity(self, chunk, images, diversity, v: _SetValues) -> None:
        """Collect each prompt's images (a set is sorted by prompt); a prompt's group is scored when the next
        begins."""
        from workbench.evaluate import metrics as M

        for r, im in zip(chunk, images):
            if r.prompt != v.group_prompt:
                self._flush_diversity(diversity, v)
                v.group_prompt = r.prompt
            v.group.append(M.paired_tensor(im, DIVERSITY_PX).float())

    @staticmethod
    def _flush_diversity(diversity, v: _SetValues) -> None:
        if diversity is not None and len(v.group) >= 2:
            import torch

            diversity.update(torch.stack(v.group))
            v.per_prompt[v.group_prompt] = diversity.last_value
            v.values["lpips_diversity"].append(diversity.last_value)
        v.group.clear()

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
                from workbench.auth import system_actor
                from workbench.review.queue import record_check

                # the job acts as a system analyst (recording checks is the analyst's "evaluate" permission)
                record_check(system_actor("evaluation", role="analyst"), r.generation_id, "ocr", check.passed,
                             {"evaluation_id": self.id, "expected": check.expected, "read": check.text,
                              "score": round(check.score, 1), "confidence": check.confidence,
                              "backend": check.backend})

    def _store_aggregates(self, s: ImageSet, records, bb, values, per_prompt, dist, refs) -> dict[str, Any]:
        from workbench.evaluate.cards import FID_RELIABLE_N, KID_RELIABLE_N, aggregate

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


def create_evaluation(actor: Actor, cfg: EvalConfig) -> int:
    """Store the evaluation (not run yet) for ``user``; returns its id."""
    actor = require(actor, "evaluate").username
    cfg.check()
    with session_scope() as s:
        row = Evaluation(name=cfg.name or f"evaluation of {', '.join(x.label for x in cfg.image_sets)}"[:200],
                         config=cfg.to_dict(), reference={}, backbones={}, created_by=actor)
        s.add(row)
        s.flush()
        return row.id


def start_evaluation(actor: Actor, cfg: EvalConfig) -> int:
    """Create the evaluation and queue its job (kind ``evaluate``; queueing starts a consumer when none is alive);
    returns the evaluation id."""
    from workbench.jobs import enqueue

    who = require(actor, "evaluate")
    evaluation_id = create_evaluation(who, cfg)
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
