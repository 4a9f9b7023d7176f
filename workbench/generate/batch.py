"""Batch generation as a job (kind ``generate``): a saved prompt batch (or a list of prompts) -> images, resumable.

Config:
    spec:   PipelineSpec fields (model, vae, loras [{path, scale, name}], scheduler, dtype, quantization, device)
    prompt_batch_id: a batch saved on the Prompts page   — or —   prompts: [{"text", "negative", "prompt_id"}]
    params: GenerationParams fields shared by every prompt (width, height, steps, guidance, seed, num_images)
    batch:  the output batch name (folder under workspace/generations, and the generations.batch column)
    gate:   optional {"threshold", "max_attempts"}: run each image through the CLIP gate (workbench.generate.guard)

Image ``i`` of a prompt is asked with seed ``params.seed + i``. A stopped or crashed batch resumes by running the same
config again: every (prompt, asked seed) that already has a kept image in the batch is skipped, so nothing finished is
generated twice.

Queueing or stopping a batch needs the ``generate`` permission (``enqueue_batch``, ``stop_batch``); the job then
generates as the user who queued it, without checking again (``workbench.auth``).

    job_id = enqueue_batch("mia", {"spec": {...}, "prompt_batch_id": 3, "batch": "prompts-3", "params": {...}})
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from workbench.db import session_scope
from workbench.generate.pipeline import GenerationError, LoraSpec, PipelineSpec, build_pipeline
from workbench.generate.sample import GenerationParams, generate, params_from_dict
from workbench.auth import Actor, on_behalf_of, require


@dataclass(frozen=True)
class BatchPrompt:
    text: str
    negative: str = ""
    prompt_id: int | None = None
    brand: str = ""


def spec_from_dict(d: dict[str, Any]) -> PipelineSpec:
    d = dict(d)
    d["loras"] = tuple(LoraSpec(**l) for l in d.get("loras", []))
    unknown = set(d) - set(PipelineSpec.__dataclass_fields__)
    if unknown:
        raise GenerationError(f"unknown pipeline setting(s): {', '.join(sorted(unknown))}")
    return PipelineSpec(**d)


def batch_prompts(config: dict[str, Any]) -> list[BatchPrompt]:
    if config.get("prompt_batch_id") is not None:
        from workbench.prompts.store import batch_prompts as stored

        return [BatchPrompt(p.text, p.negative, p.id, p.brand) for p in stored(int(config["prompt_batch_id"]))]
    prompts = config.get("prompts") or []
    if not prompts:
        raise GenerationError("the batch has no prompts: give prompt_batch_id or a prompts list")
    return [BatchPrompt(p["text"], p.get("negative", ""), p.get("prompt_id"), p.get("brand", "")) for p in prompts]


def finished_keys(batch: str) -> set[tuple[str, int]]:
    """(prompt text, asked seed) of every kept image already in the batch."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = s.execute(select(Generation.prompt, Generation.params).where(Generation.batch == batch,
                                                                           Generation.kept.is_(True)))
        return {(prompt, int(params.get("base_seed", params.get("seed")))) for prompt, params in rows}


def plan(cfg: dict[str, Any]) -> tuple[str, GenerationParams, list[tuple[BatchPrompt, int]], set]:
    """(batch name, shared params, every (prompt, asked seed) in a fixed order, the ones already done)."""
    name = cfg.get("batch") or "batch"
    base = params_from_dict({"prompt": "-", **cfg.get("params", {})})
    todo = [(p, base.seed + i) for p in batch_prompts(cfg) for i in range(base.num_images)]
    return name, base, todo, finished_keys(name)


def load_for_batch(cfg: dict[str, Any], device: str | None = None):
    """The pipeline and, with a gate, the CLIP scorer and policy."""
    spec = spec_from_dict(cfg["spec"])
    if device:
        spec = replace(spec, device=device)
    assembled = build_pipeline(spec)
    scorer = policy = None
    if cfg.get("gate"):
        from workbench.generate.guard import ClipScorer, GatePolicy
        from workbench.settings import get_settings

        scorer = ClipScorer.from_ref(cfg["gate"].get("scorer") or get_settings().models.clip_scorer, spec.device)
        policy = GatePolicy(threshold=float(cfg["gate"].get("threshold", 0.25)),
                            max_attempts=int(cfg["gate"].get("max_attempts", 3)))
    return assembled, scorer, policy


def make_one(assembled, scorer, policy, base: GenerationParams, prompt: BatchPrompt, seed: int, name: str,
             user: Actor) -> None:
    params = replace(base, prompt=prompt.text, negative_prompt=prompt.negative, seed=seed, num_images=1,
                     batch_size=1, prompt_id=prompt.prompt_id, brand=prompt.brand)
    if scorer is not None:
        from workbench.generate.guard import generate_guarded

        generate_guarded(assembled, params, scorer, policy, batch=name, user=user)
    else:
        generate(assembled, params, batch=name, user=user)


def enqueue_batch(actor: Actor, config: dict[str, Any], *, title: str = "", queue: bool = True) -> int:
    """Queue a ``generate`` job (config: see the module docstring) for ``actor``; returns the job id. The caller
    starts a worker (``jobs.ensure_worker()``); ``queue=False``: see ``jobs.enqueue``."""
    from workbench.jobs import enqueue

    who = require(actor, "generate")
    return enqueue("generate", config, title=title or f"generate {config.get('batch') or 'batch'}",
                   created_by=who.username, queue=queue)


def stop_batch(actor: Actor, job_id: int):
    """Ask a ``generate`` job to stop between images (what it made stays; a rerun resumes). Returns the job."""
    from workbench.jobs import get_job, request_stop

    require(actor, "generate")
    if get_job(job_id).kind != "generate":
        raise GenerationError(f"job {job_id} is not a generation batch")
    return request_stop(job_id)


def generate_job(ctx) -> dict[str, Any]:
    cfg = dict(ctx.config)
    cfg.setdefault("batch", f"job-{ctx.job_id}")
    processes = int(cfg.get("num_processes") or 1)
    if processes > 1:
        return _launch_processes(ctx, cfg, processes)
    name, base, todo, done = plan(cfg)
    total = len(todo)
    skipped = sum((p.text, seed) in done for p, seed in todo)
    ctx.log(f"batch {name!r}: {total} images ({base.num_images} per prompt); {skipped} already done")
    ctx.progress(skipped, total, message=f"{skipped} of {total} already done" if skipped else "loading the model",
                 force=True)
    assembled, scorer, policy = load_for_batch(cfg)
    if assembled.demo_model:
        ctx.log("note: offline demo model: images are for trying the workbench only")
    author = on_behalf_of(ctx.created_by, "generate")  # checked when the job was queued
    made = 0
    step = skipped
    for prompt, seed in todo:
        if (prompt.text, seed) in done:
            continue
        ctx.check_stop()  # between images: everything saved so far stays, a rerun resumes here
        make_one(assembled, scorer, policy, base, prompt, seed, name, author)
        made += 1
        step += 1
        ctx.progress(step, total, message=f"{step}/{total} images")
    return {"batch": name, "generated": made, "skipped": skipped, "total": total}


def _launch_processes(ctx, cfg: dict[str, Any], processes: int) -> dict[str, Any]:
    """The same batch under ``accelerate launch``: each process takes its share of the unfinished images
    (workbench.generate.distributed) and writes into the same batch, so the result is one set."""
    from workbench.jobs import JobStopped

    from workbench.jobs.runner import accelerate_command

    cmd = accelerate_command(["workbench.generate.distributed", str(ctx.job_id)], processes, cpu=False)
    code = ctx.run_child(cmd, forward_stop=False)  # the processes poll the stop flag between images
    name, _, todo, done = plan(cfg)
    finished = sum((p.text, seed) in done for p, seed in todo)
    if ctx.should_stop():
        raise JobStopped()
    if code != 0:
        raise GenerationError(f"{processes} generation processes exited with code {code} after {finished}/"
                              f"{len(todo)} images; run the job again to finish (finished images are kept)")
    return {"batch": name, "total": len(todo), "finished": finished, "processes": processes}
