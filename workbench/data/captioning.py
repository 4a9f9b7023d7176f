"""BLIP captions for a dataset, run as the ``caption`` job (registered by ``import workbench.data``).

    from workbench.data.captioning import enqueue_caption
    job_id = enqueue_caption("mia", dataset_id, mode="uncaptioned", prefix="a photo of TOK woman")

The job loads the captioner named by ``config["model"]`` (default ``settings.models.blip_captioner``) through
``workbench.models.sources.load_blip_captioner``: a hub id, a local folder, or the tiny demo captioner. A model that
is neither cached nor reachable fails the job with the loader's error (model id + remedy); nothing is made up.
Batches run on the GPU when there is one (fp16). Captions are written batch by batch, so a stopped or failed job keeps
what it finished and "uncaptioned" mode picks up where it stopped. Mode ``all`` re-captions everything; an optional
trigger phrase is put in front of each new caption. Queueing, stopping and captioning in-process need the
``datasets`` permission; the job captions as the user who queued it (checked then).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image
from sqlalchemy import select

from workbench.data.captions import with_prefix
from workbench.data.images import decode, oriented, to_rgb
from workbench.data.store import DatasetError, _with_caption, image_path
from workbench.data.tables import Dataset, Item
from workbench.db import audit, session_scope
from workbench.auth import Actor, on_behalf_of, require
from workbench.settings import Settings, get_settings

CaptionFn = Callable[[Sequence[Image.Image]], list[str]]


@dataclass
class CaptionResult:
    captioned: int
    total: int
    failed: int
    stopped: bool = False


def _as_caption_fn(loaded: Any, device: str = "cpu", max_new_tokens: int = 30) -> CaptionFn:
    """Adapt what the loader returns: a callable on a list of images, an object with ``caption(images)``, or a
    (model, processor) pair / an object with ``.model`` and ``.processor`` (transformers BLIP)."""
    if hasattr(loaded, "caption") and callable(loaded.caption):
        return loaded.caption
    if isinstance(loaded, tuple) and len(loaded) == 2:
        model, processor = loaded
    elif hasattr(loaded, "model") and hasattr(loaded, "processor"):
        model, processor = loaded.model, loaded.processor
    elif callable(loaded):
        return loaded
    else:
        raise TypeError(f"cannot caption with {type(loaded).__name__}: expected (model, processor) or a callable")
    import torch

    dtype = torch.float16 if device == "cuda" else torch.float32
    model = model.to(device=device, dtype=dtype).eval()

    def caption(images: Sequence[Image.Image]) -> list[str]:
        inputs = processor(images=list(images), return_tensors="pt").to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens)
        return [t.strip() for t in processor.batch_decode(out, skip_special_tokens=True)]

    return caption


def load_captioner(ref: str | None = None, device: str | None = None, max_new_tokens: int = 30,
                   settings: Settings | None = None) -> CaptionFn:
    settings = settings or get_settings()
    from workbench.models.sources import load_blip_captioner

    return _as_caption_fn(load_blip_captioner(ref or settings.models.blip_captioner),
                          device or settings.resolved_device(), max_new_tokens)


def caption_items(actor: Actor, dataset_id: int, caption_fn: CaptionFn, mode: str = "uncaptioned", prefix: str = "",
                  batch_size: int = 8, progress: Callable[[int, int, str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, *,
                  settings: Settings | None = None) -> CaptionResult:
    """Caption the dataset's items (mode ``uncaptioned`` or ``all``), ``batch_size`` images at a time."""
    who = require(actor, "datasets", settings=settings)
    if mode not in ("uncaptioned", "all"):
        raise ValueError(f"mode must be 'uncaptioned' or 'all', got {mode!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    settings = settings or get_settings()
    with session_scope(settings) as s:
        if s.get(Dataset, dataset_id) is None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        q = select(Item).where(Item.dataset_id == dataset_id, Item.excluded.is_(False)).order_by(Item.id)
        if mode == "uncaptioned":
            q = q.where(Item.caption == "")
        todo = list(s.scalars(q))
    done = failed = 0
    for start in range(0, len(todo), batch_size):
        if should_stop and should_stop():
            return CaptionResult(done, len(todo), failed, stopped=True)
        batch = todo[start:start + batch_size]
        images, ok = [], []
        for item in batch:
            try:
                images.append(to_rgb(oriented(decode(image_path(item, settings).read_bytes()))))
                ok.append(item)
            except (OSError, ValueError):
                failed += 1
        captions = caption_fn(images) if images else []
        with session_scope(settings) as s:
            for item, text in zip(ok, captions):
                row = s.get(Item, item.id)
                _with_caption(row, with_prefix(text, prefix) if prefix else text, "blip")
            audit(s, who.username, "dataset.caption_batch", "dataset", dataset_id,
                  after={"items": [i.id for i in ok], "mode": mode})
        done += len(captions)
        if progress:
            progress(start + len(batch), len(todo), f"captioned {done} of {len(todo)}")
    return CaptionResult(done, len(todo), failed)


def caption_job(ctx) -> dict[str, Any]:
    """Job handler for kind ``caption``. Config: dataset_id, mode, prefix, model, batch_size, max_new_tokens."""
    cfg = ctx.config
    dataset_id = int(cfg["dataset_id"])
    ref = cfg.get("model") or ctx.settings.models.blip_captioner
    device = ctx.settings.resolved_device()
    ctx.log(f"loading captioner {ref} on {device}")
    caption_fn = load_captioner(ref, device, int(cfg.get("max_new_tokens", 30)), ctx.settings)
    # the job acts for the user who queued it (checked when it was queued)
    result = caption_items(on_behalf_of(ctx.created_by, "datasets"), dataset_id, caption_fn,
                           cfg.get("mode", "uncaptioned"), cfg.get("prefix", ""),
                           int(cfg.get("batch_size", 16 if device == "cuda" else 4)),
                           progress=lambda d, t, m: ctx.progress(d, t, m), should_stop=ctx.should_stop,
                           settings=ctx.settings)
    ctx.log(f"captioned {result.captioned} of {result.total} ({result.failed} unreadable)")
    return {**asdict(result), "model": ref}


def enqueue_caption(actor: Actor, dataset_id: int, mode: str = "uncaptioned", prefix: str = "",
                    model: str | None = None,
                    batch_size: int | None = None) -> int:
    """Queue a caption job (queueing starts a consumer when none is alive)."""
    from workbench import jobs
    import workbench.data  # noqa: F401 - registers the kind

    who = require(actor, "datasets")
    config: dict[str, Any] = {"dataset_id": dataset_id, "mode": mode, "prefix": prefix}
    if model:
        config["model"] = model
    if batch_size:
        config["batch_size"] = batch_size
    return jobs.enqueue("caption", config, title=f"caption dataset {dataset_id} ({mode})", created_by=who.username)


def stop_caption(actor: Actor, job_id: int):
    """Ask a caption job to stop (it keeps the captions it finished). Returns the job."""
    from workbench import jobs

    require(actor, "datasets")
    if jobs.get_job(job_id).kind != "caption":
        raise DatasetError(f"job {job_id} is not a caption job")
    return jobs.request_stop(job_id)
