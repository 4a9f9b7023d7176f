"""The feedback loop: "request changes" turns a reviewer's comment into a new prompt version and, on request, a
regeneration job whose images come back to the queue linked to the image they replace.

Order matters: the decision is recorded first (so an approver who loses a race creates nothing), then the prompt is
refined with ``workbench.prompts.refine`` (its reason names the review and quotes the comment), then the job is
queued with ``generate.batch.enqueue_batch`` (the same model, VAE, LoRAs and scales, quantization and size as the
image, a new seed). The regenerated images land in batch ``<batch>-r<review id>``; the job records each of them as
replacing the image (``generations.replaces_id``, from the config's ``replaces``).

    fb = request_changes("ana", 12, "logo too small, make it bigger", expected_seq=0,
                         new_prompt="nwo_style navy tee, large chest logo, studio", regenerate=True)
    fb.prompt.version, fb.job_id, fb.regen_batch     # 2, 7, "ss26-r3"
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workbench.db import audit, session_scope
from workbench.auth import Actor, on_behalf_of, require
from workbench.review.decisions import Decision, check_decision, decide
from workbench.review.queue import ReviewError, _generation_table, _trashed
from workbench.review.tables import ReviewRow
from workbench.settings import get_settings

REGEN_KIND = "generate"  # the generation capability's batch job


@dataclass(frozen=True)
class FeedbackResult:
    decision: Decision
    prompt: Any | None  # workbench.prompts.StoredPrompt: the new version, when new_prompt was given
    job_id: int | None  # the regeneration job, when asked for
    regen_batch: str


def regeneration_config(gen, text: str, negative: str, prompt_id: int | None, batch: str, num_images: int = 1,
                        device: str = "cpu"):
    """The ``BatchConfig`` that remakes ``gen`` with new text: same model, LoRAs, quantization, size and gate; a new
    seed; its images replace ``gen``."""
    from workbench.generate.batch import BatchConfig, BatchPrompt
    from workbench.generate.pipeline import LoraSpec, PipelineSpec

    params = gen.params or {}
    spec = PipelineSpec(model=gen.model, vae=gen.vae or None, scheduler=gen.scheduler, dtype=gen.dtype,
                        quantization=gen.quantization, device=device,
                        loras=tuple(LoraSpec.from_dict({k: l[k] for k in ("path", "scale", "name") if k in l})
                                    for l in gen.loras or []))
    gate = None
    if params.get("gate_threshold") is not None:  # it went through the CLIP gate: so does its replacement
        gate = {"threshold": params["gate_threshold"]}
        if params.get("clip_scorer"):
            gate["scorer"] = params["clip_scorer"]
    return BatchConfig(spec=spec, prompts=(BatchPrompt(text, negative, prompt_id, gen.brand),),
                       params={"width": gen.width, "height": gen.height, "steps": gen.steps, "guidance": gen.guidance,
                               "seed": (int(params.get("base_seed", gen.seed)) + 1) % 2**32,
                               "num_images": num_images},
                       batch=batch, gate=gate, replaces=gen.id)


def regen_batch_name(batch: str, review_id: int) -> str:
    suffix = f"-r{review_id}"
    return batch[:100 - len(suffix)] + suffix


def request_changes(actor: Actor, generation_id: int, comment: str, *, expected_seq: int = 0,
                    tags: Iterable[str] = (), new_prompt: str | None = None, regenerate: bool = False,
                    num_images: int = 1, device: str | None = None) -> FeedbackResult:
    """Request changes on an image; with ``new_prompt`` the prompt gets a new version linked to this review, with
    ``regenerate`` a job remakes the image (with the new prompt when there is one) on ``device`` (default: the
    settings' device)."""
    check_decision("request_changes", comment, tags, expected_seq)
    new_text = " ".join((new_prompt or "").split())
    Generation = _generation_table()
    with session_scope() as s:
        require(actor, "decide", s)
        gen = s.get(Generation, generation_id)
        if gen is None or _trashed(s, gen):
            raise ReviewError(f"generation {generation_id} does not exist")
        if new_prompt is not None and (not new_text or new_text == gen.prompt):
            raise ReviewError("new_prompt: give the changed prompt text (it is empty or the same as the image's)")
    if regenerate:
        from workbench import jobs

        if REGEN_KIND not in jobs.KINDS:
            raise ReviewError(f"regenerate: the {REGEN_KIND!r} job kind is not available in this installation")
        if not 1 <= num_images <= 16:
            raise ReviewError(f"num_images {num_images} must be between 1 and 16")

    decision = decide(actor, generation_id, "request_changes", comment=comment, tags=tags, expected_seq=expected_seq)
    who = decision.reviewer

    stored = None
    if new_text:
        from workbench.prompts import refine, save_prompt

        # The new version is part of the change request ``decide`` allowed; approvers do not edit prompts otherwise.
        author = on_behalf_of(who, "prompts")
        parent_id = gen.prompt_id
        if parent_id is None:  # a prompt typed ad hoc: keep it as version 1 so the new one has a parent
            parent_id = save_prompt(author, gen.prompt, negative=gen.negative_prompt, brand=gen.brand,
                                    reason=f"prompt of image {generation_id}, kept for review feedback").id
        stored = refine(author, parent_id, new_text,
                        reason=f"review {decision.id} of image {generation_id}: {decision.comment}")

    job_id = None
    batch = ""
    if regenerate:
        from workbench.generate.batch import enqueue_batch

        batch = regen_batch_name(gen.batch, decision.id)
        config = regeneration_config(gen, stored.text if stored else gen.prompt,
                                     stored.negative if stored else gen.negative_prompt,
                                     stored.id if stored else gen.prompt_id, batch, num_images,
                                     device or get_settings().resolved_device())
        # The job acts for the image's author, so the new images show up in their submissions; queueing it is part
        # of the change request ``decide`` allowed.
        job_id = enqueue_batch(on_behalf_of(gen.created_by or who, "generate"), config,
                               title=f"regenerate image {generation_id} (review {decision.id})")

    with session_scope() as s:
        row = s.get(ReviewRow, decision.id)
        row.prompt_version_id = stored.id if stored else None
        row.regen_job_id = job_id
        row.regen_batch = batch
        audit(s, who, "review.feedback", "generation", generation_id,
              after={"review_id": decision.id, "prompt_version_id": row.prompt_version_id, "job_id": job_id,
                     "regen_batch": batch})
        s.flush()
        decision = Decision.from_row(row, list(decision.tags))
    return FeedbackResult(decision, stored, job_id, batch)
