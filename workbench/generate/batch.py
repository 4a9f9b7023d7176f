"""Batch generation as a job (kind ``generate``): a saved prompt batch (or a list of prompts) -> images, resumable.

The job's config is a ``BatchConfig`` (stored as its ``to_dict``; the job reads it back with ``from_dict``, which
refuses unknown keys):
    spec:   PipelineSpec fields (model, vae, loras [{path, scale, name}], scheduler, dtype, quantization, device)
    prompt_batch_id: a batch saved on the Prompts page   — or —   prompts: [{"text", "negative", "prompt_id", "brand"}]
    params: GenerationParams fields shared by every prompt (width, height, steps, guidance, seed, num_images)
    batch:  the output batch name (folder under workspace/generations, and the generations.batch column)
    gate:   optional {"threshold", "max_attempts", "scorer"}: run each image through the CLIP gate
            (workbench.generate.guard); each prompt gets its brand profile's threshold and attempts and its trigger
            token, a threshold or max_attempts given here overrides every brand's ({} = the brands' gates)
    replaces: optional generation id: every image made is recorded as replacing it (review's "request changes")
    num_processes: more than 1 splits the batch across processes (workbench.generate.distributed)

Image ``i`` of a prompt is asked with seed ``params.seed + i``. A stopped or crashed batch resumes by running the same
config again: every (prompt, asked seed) that already has a kept image in the batch is skipped, so nothing finished is
generated twice.

Queueing or stopping a batch needs the ``generate`` permission (``enqueue_batch``, the one way to queue a batch, and
``stop_batch``); the job then generates as the user who queued it, without checking again (``workbench.auth``).

    config = BatchConfig(spec=PipelineSpec(model="..."), prompt_batch_id=3, batch="prompts-3", params={"steps": 30})
    job_id = enqueue_batch("mia", config)
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from workbench import trash
from workbench.db import session_scope
from workbench.generate.pipeline import GenerationError, PipelineSpec, build_pipeline
from workbench.generate.sample import GenerationParams, generate, params_from_dict
from workbench.auth import Actor, on_behalf_of, require

GATE_KEYS = ("threshold", "max_attempts", "scorer")


@dataclass(frozen=True)
class BatchPrompt:
    text: str
    negative: str = ""
    prompt_id: int | None = None
    brand: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "negative": self.negative, "prompt_id": self.prompt_id, "brand": self.brand}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BatchPrompt:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GenerationError(f"prompt {d.get('text')!r}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(d["text"], d.get("negative", ""), d.get("prompt_id"), d.get("brand", ""))


@dataclass(frozen=True)
class BatchConfig:
    """The config of a ``generate`` job (see the module docstring); ``to_dict`` is what the job row stores."""

    spec: PipelineSpec
    prompts: tuple[BatchPrompt, ...] = ()
    prompt_batch_id: int | None = None  # wins over ``prompts`` when both are given
    params: dict[str, Any] = field(default_factory=dict)  # GenerationParams fields without the prompt
    batch: str | None = None  # None: ``job-<id>``
    gate: dict[str, Any] | None = None  # {"threshold", "max_attempts", "scorer"}, each optional; {}: the brands' gates
    replaces: int | None = None  # a generation id
    num_processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"spec": self.spec.to_dict(), "params": dict(self.params)}
        if self.prompts:
            d["prompts"] = [p.to_dict() for p in self.prompts]
        if self.prompt_batch_id is not None:
            d["prompt_batch_id"] = self.prompt_batch_id
        if self.batch is not None:
            d["batch"] = self.batch
        if self.gate is not None:
            d["gate"] = dict(self.gate)
        if self.replaces is not None:
            d["replaces"] = self.replaces
        if self.num_processes != 1:
            d["num_processes"] = self.num_processes
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BatchConfig:
        """Read a stored config (every key older versions wrote is accepted); an unknown key is an error naming it."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GenerationError(f"unknown batch setting(s): {', '.join(sorted(unknown))}")
        if "spec" not in d:
            raise GenerationError("the batch has no spec: give the pipeline settings (at least the model)")
        params = dict(d.get("params") or {})
        bad = set(params) - set(GenerationParams.__dataclass_fields__)
        if bad:
            raise GenerationError(f"unknown generation setting(s): {', '.join(sorted(bad))}")
        gate = d.get("gate")
        if gate:
            extra = set(gate) - set(GATE_KEYS)
            if extra:
                raise GenerationError(f"gate: unknown key(s) {', '.join(sorted(extra))}")
        batch_id = d.get("prompt_batch_id")
        replaces = d.get("replaces")
        return cls(spec=PipelineSpec.from_dict(d["spec"]),
                   prompts=tuple(BatchPrompt.from_dict(p) for p in d.get("prompts") or []),
                   prompt_batch_id=int(batch_id) if batch_id is not None else None, params=params,
                   batch=d.get("batch"), gate=dict(gate) if gate is not None else None,
                   replaces=int(replaces) if replaces is not None else None,
                   num_processes=int(d.get("num_processes") or 1))


def batch_prompts(config: BatchConfig) -> list[BatchPrompt]:
    if config.prompt_batch_id is not None:
        from workbench.prompts.store import batch_prompts as stored

        return [BatchPrompt(p.text, p.negative, p.id, p.brand) for p in stored(config.prompt_batch_id)]
    if not config.prompts:
        raise GenerationError("the batch has no prompts: give prompt_batch_id or a prompts list")
    return list(config.prompts)


def batch_names() -> list[str]:
    """Names of the generation batches that hold images, the most recently added to first."""
    from sqlalchemy import func

    from workbench.generate.tables import Generation

    with session_scope() as s:
        live = Generation.batch.not_in(trash.hidden_keys("batch"))
        return [b for b, in s.execute(select(Generation.batch).where(live).group_by(Generation.batch)
                                     .order_by(func.max(Generation.id).desc()))]


def finished_keys(batch: str) -> set[tuple[str, int]]:
    """(prompt text, asked seed) of every kept image already in the batch."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = s.execute(select(Generation.prompt, Generation.params).where(Generation.batch == batch,
                                                                           Generation.kept.is_(True)))
        return {(prompt, int(params.get("base_seed", params.get("seed")))) for prompt, params in rows}


def plan(cfg: BatchConfig) -> tuple[str, GenerationParams, list[tuple[BatchPrompt, int]], set]:
    """(batch name, shared params, every (prompt, asked seed) in a fixed order, the ones already done)."""
    name = cfg.batch or "batch"
    base = params_from_dict({"prompt": "-", **cfg.params})
    todo = [(p, base.seed + i) for p in batch_prompts(cfg) for i in range(base.num_images)]
    return name, base, todo, finished_keys(name)


def load_for_batch(cfg: BatchConfig, device: str | None = None):
    """The pipeline and, with a gate, the CLIP scorer and the per-brand gates (``guard.BrandGates``)."""
    spec = cfg.spec
    if device:
        spec = replace(spec, device=device)
    assembled = build_pipeline(spec)
    scorer = policy = None
    if cfg.gate is not None:
        from workbench.generate.guard import BrandGates, ClipScorer
        from workbench.settings import get_settings

        scorer = ClipScorer.from_ref(cfg.gate.get("scorer") or get_settings().models.clip_scorer, spec.device)
        threshold, attempts = cfg.gate.get("threshold"), cfg.gate.get("max_attempts")
        policy = BrandGates(float(threshold) if threshold is not None else None,
                            int(attempts) if attempts is not None else None, spec.device,
                            scorer_fixed=bool(cfg.gate.get("scorer")))  # a batch's scorer wins over the brands' own
    return assembled, scorer, policy


def make_one(actor: Actor, assembled, scorer, gates, base: GenerationParams, prompt: BatchPrompt, seed: int, name: str,
             replaces: int | None = None) -> None:
    """One (prompt, asked seed) of a batch; with a scorer, through the gate of the prompt's brand (``gates``)."""
    params = replace(base, prompt=prompt.text, negative_prompt=prompt.negative, seed=seed, num_images=1,
                     batch_size=1, prompt_id=prompt.prompt_id, brand=prompt.brand)
    if scorer is not None:
        from workbench.generate.guard import generate_guarded

        gate = gates(prompt.brand)
        scorer = gates.scorer(prompt.brand, scorer)
        generate_guarded(actor, assembled, params, scorer, gate.policy, batch=name, trigger=gate.trigger,
                         replaces_id=replaces)
    else:
        generate(actor, assembled, params, batch=name, replaces_id=replaces)


def enqueue_batch(actor: Actor, config: BatchConfig | Mapping[str, Any], *, title: str = "", queue: bool = True
                  ) -> int:
    """Queue a ``generate`` job for ``actor``, who needs ``generate`` (the one way in: the Generate page, the CLI,
    review's "request changes", evaluation prompt suites and the demo all call it; a step another checked action
    entails passes ``on_behalf_of(user, "generate")``); returns the job id. A mapping is read with
    ``BatchConfig.from_dict``. Queueing starts a consumer when none is alive; ``queue=False``: see
    ``jobs.enqueue``."""
    from workbench.jobs import enqueue

    who = require(actor, "generate")
    if not isinstance(config, BatchConfig):
        config = BatchConfig.from_dict(config)
    if config.batch:
        with session_scope() as s:
            gone = trash.in_trash(s, "batch", config.batch)
        if gone is not None:
            raise GenerationError(f"batch {config.batch!r} is in the trash (entry {gone.id}): restore it (`workbench "
                                  f"trash restore {gone.id}`) or give the batch another name")
    return enqueue("generate", config.to_dict(), title=title or f"generate {config.batch or 'batch'}",
                   created_by=who.username, queue=queue)


def stop_batch(actor: Actor, job_id: int):
    """Ask a ``generate`` job to stop between images (what it made stays; a rerun resumes). Returns the job."""
    from workbench.jobs import get_job, request_stop

    require(actor, "generate")
    if get_job(job_id).kind != "generate":
        raise GenerationError(f"job {job_id} is not a generation batch")
    return request_stop(job_id)


def generate_job(ctx) -> dict[str, Any]:
    cfg = BatchConfig.from_dict(ctx.config)
    if cfg.batch is None:
        cfg = replace(cfg, batch=f"job-{ctx.job_id}")
    processes = cfg.num_processes
    if processes > 1:
        return _launch_processes(ctx, cfg, processes)
    name, base, todo, done = plan(cfg)
    base = replace(base, request=base.request or f"job-{ctx.job_id}")  # the page groups the job's images by it
    total = len(todo)
    skipped = sum((p.text, seed) in done for p, seed in todo)
    ctx.log(f"batch {name!r}: {total} images ({base.num_images} per prompt); {skipped} already done")
    ctx.progress(skipped, total, message=f"{skipped} of {total} already done" if skipped else "loading the model",
                 force=True)
    assembled, scorer, policy = load_for_batch(cfg)
    if assembled.demo_model:
        ctx.log("note: offline demo model: images are for trying the workbench only")
    if scorer is not None:
        for brand in sorted({p.brand for p, _ in todo}):
            gate = policy(brand)
            ctx.log(f"CLIP gate for {brand or 'prompts without a brand'}: threshold {gate.policy.threshold}, "
                    f"{gate.policy.max_attempts} attempt(s), trigger {gate.trigger or '(none)'} ({gate.source})")
    author = on_behalf_of(ctx.created_by, "generate")  # checked when the job was queued
    made = 0
    step = skipped
    for prompt, seed in todo:
        if (prompt.text, seed) in done:
            continue
        ctx.check_stop()  # between images: everything saved so far stays, a rerun resumes here
        make_one(author, assembled, scorer, policy, base, prompt, seed, name, cfg.replaces)
        made += 1
        step += 1
        ctx.progress(step, total, message=f"{step}/{total} images")
    result = {"batch": name, "generated": made, "skipped": skipped, "total": total}
    if made:
        result.update(tag_products(ctx, name))
    return result


def tag_products(ctx, batch: str) -> dict[str, Any]:
    """Shop-the-look after a batch: when the catalog has an embedding index (`workbench products index`), record
    the products each kept image shows (``products.tagging.tag_if_indexed``; a step the batch entails, so it acts
    as ``on_behalf_of(created_by, "evaluate")``). The images are made either way: a tagging failure is logged and
    reported in the result, never fails the batch."""
    from workbench.fidelity import masks
    from workbench.products.tagging import tag_if_indexed

    try:
        model, results = tag_if_indexed(on_behalf_of(ctx.created_by, "evaluate"), batch, masks=masks)
    except Exception as exc:  # noqa: BLE001 - reported, the batch's images stay
        ctx.log(f"shop-the-look tagging failed: {exc.__class__.__name__}: {exc}")
        return {"tagged": 0, "tagging_error": str(exc)}
    if model is None:
        ctx.log("shop-the-look: no catalog index yet (`workbench products index`), images not tagged")
        return {"tagged": 0}
    if results and results[0].unavailable:
        ctx.log(f"shop-the-look: {results[0].unavailable}")
        return {"tagged": 0, "tagging_error": results[0].unavailable}
    linked = sum(len(r.linked) for r in results)
    ctx.log(f"shop-the-look ({model}): {len(results)} image(s) tagged, {linked} product link(s)"
            + (" (demo model: the matches mean nothing)" if results and results[0].demo else ""))
    return {"tagged": len(results), "tag_model": model}


def _launch_processes(ctx, cfg: BatchConfig, processes: int) -> dict[str, Any]:
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
    return {"batch": name, "total": len(todo), "finished": finished, "processes": processes,
            **tag_products(ctx, name)}
