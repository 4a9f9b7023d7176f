"""What the Generate page reads: registered LoRAs, a batch's images, a user's results grouped per generation
request, how long an image takes here, saved prompts. Results are dataclasses, so the page never queries a table.

    [l.name for l in registered_loras()]; batch_images("page"); saved_prompts()
    groups = result_groups("mia")          # newest request first: one Generate click or one batch job each
    seconds_per_image(model, 1024, 1024, 30)   # from images made here at that size, or None

A request is recorded with each image (``GenerationParams.request``: ``page-…`` for a click on the page, ``job-<id>``
for a batch job). Images recorded before requests existed are grouped by batch and author (on the page's own
batch, also by prompt and settings).
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from workbench import trash
from workbench.db import session_scope


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA trained here (the Training page registers it)."""

    id: int
    name: str
    path: str
    rank: int
    step: int
    trigger: str
    is_demo: bool


@dataclass(frozen=True)
class ImageInfo:
    """One generated image as the gallery shows it."""

    id: int
    image_path: str
    seed: int
    attempt: int
    clip_score: float | None
    kept: bool
    demo_model: bool
    prompt: str
    prompt_id: int | None
    template: str
    asked_prompt: str = ""  # the prompt as asked (the gate may have refined ``prompt`` for a retry)
    base_seed: int = 0  # the seed the image was asked with (a gate retry uses another)
    created_at: dt.datetime | None = None
    review_status: str = ""


@dataclass(frozen=True)
class ResultGroup:
    """One generation request (a Generate click or a batch job) with its images, prompts and settings."""

    key: str  # the request id, or "batch|author|…" for images recorded before requests existed
    batch: str
    created_by: str
    started: dt.datetime
    finished: dt.datetime
    job_id: int | None
    prompts: tuple[str, ...]  # the prompts as asked, in the order first made
    settings: dict[str, Any]  # model (name only), demo, loras, width, height, steps, guidance, scheduler, …
    images: list[ImageInfo] = field(default_factory=list)  # oldest first, every gate attempt included

    @property
    def kept(self) -> list[ImageInfo]:
        return [i for i in self.images if i.kept]

    @property
    def seeds(self) -> list[int]:
        return sorted({i.base_seed for i in self.kept})


def _info(r) -> ImageInfo:
    p = r.params or {}
    return ImageInfo(r.id, r.image_path, r.seed, r.attempt, r.clip_score, bool(r.kept), bool(r.demo_model),
                     r.prompt, r.prompt_id, p.get("template", ""), p.get("asked_prompt") or r.prompt,
                     int(p.get("base_seed", r.seed)), r.created_at, r.review_status)


def _group_key(r) -> str:
    p = r.params or {}
    if p.get("request"):
        return str(p["request"])
    if r.batch == "page":  # one shared batch: tell the clicks apart by what was asked
        return f"page|{r.created_by}|{r.prompt}|{r.width}x{r.height}|{r.steps}|{r.guidance}|{r.model}"
    return f"{r.batch}|{r.created_by}"


def _settings(r) -> dict[str, Any]:
    p = r.params or {}
    return {"model": Path(r.model).name or r.model, "demo_model": bool(r.demo_model),
            "loras": [(lo.get("name") or Path(str(lo.get("path", ""))).name, lo.get("scale")) for lo in r.loras or []],
            "width": r.width, "height": r.height, "steps": r.steps, "guidance": r.guidance, "scheduler": r.scheduler,
            "quantization": r.quantization, "brand": r.brand, "gate_threshold": p.get("gate_threshold"),
            "products": list(p.get("products") or [])}


def result_groups(user: str | None, limit: int = 8, after_id: int = 0, max_rows: int = 800) -> list[ResultGroup]:
    """``user``'s generation requests (None: everyone's), newest first, at most ``limit``; only images with an id
    above ``after_id`` (the page's "clear": what came before is hidden, not deleted). Reads at most ``max_rows``
    images, so the oldest group shown may lack its oldest images."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        q = (select(Generation).where(Generation.id > after_id, Generation.batch.not_in(trash.hidden_keys("batch")))
             .order_by(Generation.id.desc()).limit(max_rows))
        if user is not None:
            q = q.where(Generation.created_by == user)
        groups: dict[str, ResultGroup] = {}
        for r in s.scalars(q):
            key = _group_key(r)
            g = groups.get(key)
            if g is None:
                if len(groups) == limit:
                    continue
                job = key[4:] if key.startswith("job-") and key[4:].isdigit() else None
                g = groups[key] = ResultGroup(key, r.batch, r.created_by, r.created_at, r.created_at,
                                              int(job) if job else None, (), _settings(r))
            g.images.append(_info(r))
        out = []
        for g in groups.values():
            images = sorted(g.images, key=lambda i: i.id)
            prompts = tuple(dict.fromkeys(i.asked_prompt for i in images))
            times = [i.created_at for i in images if i.created_at is not None]
            out.append(ResultGroup(g.key, g.batch, g.created_by, min(times, default=g.started),
                                   max(times, default=g.finished), g.job_id, prompts, g.settings, images))
        return out


def seconds_per_image(model: str, width: int, height: int, steps: int, sample: int = 400) -> tuple[float, int] | None:
    """(seconds one image takes here, how many measurements that is) for ``model`` at this size and ``steps``, from
    the time between consecutive kept images of one request (model loading excluded: it comes before the first),
    scaled by steps; None when no two such images were made here yet."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = s.execute(select(Generation.params, Generation.created_at, Generation.steps, Generation.batch)
                         .where(Generation.model == model, Generation.width == width, Generation.height == height,
                                Generation.kept.is_(True))
                         .order_by(Generation.id.desc()).limit(sample)).all()
    per_step = []
    for newer, older in zip(rows, rows[1:]):
        same = ((newer.params or {}).get("request") or newer.batch) == ((older.params or {}).get("request")
                                                                       or older.batch)
        gap = (newer.created_at - older.created_at).total_seconds()
        if same and 0 < gap < 3600 and newer.steps:
            per_step.append(gap / newer.steps)
    if not per_step:
        return None
    return statistics.median(per_step) * steps, len(per_step)


def registered_loras(limit: int = 200) -> list[LoraChoice]:
    """LoRAs trained here, newest first."""
    from workbench.train.tables import Lora

    with session_scope() as s:
        rows = s.scalars(select(Lora).where(or_(Lora.run_id.is_(None), Lora.run_id.not_in(trash.hidden_ids("run"))))
                         .order_by(Lora.id.desc()).limit(limit))
        return [LoraChoice(r.id, r.name, r.path, r.rank, r.step, r.trigger or "", bool(r.is_demo)) for r in rows]


def batch_images(batch: str, limit: int = 24) -> list[ImageInfo]:
    """The newest images of a batch (every attempt of the CLIP gate included), newest first."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = s.scalars(select(Generation).where(Generation.batch == batch,
                                                  Generation.batch.not_in(trash.hidden_keys("batch")))
                         .order_by(Generation.id.desc()).limit(limit))
        return [_info(r) for r in rows]


def saved_prompts(limit: int = 200):
    """The prompt library's current versions (not superseded by a refinement), newest first, as
    ``workbench.prompts.store.StoredPrompt``; ``prompt_history(id)`` lists a prompt's versions."""
    from workbench.prompts.store import StoredPrompt
    from workbench.prompts.tables import PromptRow

    with session_scope() as s:
        rows = s.scalars(select(PromptRow).where(PromptRow.status == "active").order_by(PromptRow.id.desc())
                         .limit(limit))
        return [StoredPrompt.from_row(r) for r in rows]
