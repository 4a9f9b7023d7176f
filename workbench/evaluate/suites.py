"""Prompt suites: one ``generate`` job per model / LoRA / checkpoint with the same prompts and seeds (batches
``suite-<name>-<label>``), so the image sets an evaluation then compares were made from identical inputs.

    sets = enqueue_prompt_suite("ari", "s26", ["a red tee"], [SuiteVariant("base"),
                                SuiteVariant("step 1000", loras=[{"path": "runs/3/checkpoint-1000"}], step=1000)])
    start_evaluation("ari", EvalConfig(image_sets=sets, ...))     # once the jobs are done
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.evaluate.config import EvaluationError, ImageSet
from workbench.auth import Actor, require
from workbench.settings import get_settings


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


def enqueue_prompt_suite(actor: Actor, suite: str, prompts: Sequence[str], variants: Sequence[SuiteVariant],
                         seed: int = 0,
                         images_per_prompt: int = 1, width: int = 1024, height: int = 1024, steps: int = 30,
                         device: str | None = None) -> list[ImageSet]:
    """Queue one generate job per variant with the same prompts and seeds; returns the image sets to evaluate.
    Needs ``evaluate``: the suite is an analyst's measuring tool, so its jobs generate for them (as checked here)."""
    from workbench.generate.batch import BatchConfig, BatchPrompt, enqueue_batch
    from workbench.generate.pipeline import LoraSpec, PipelineSpec
    from workbench.auth import on_behalf_of

    actor = require(actor, "evaluate").username
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
        enqueue_batch(on_behalf_of(actor, "generate"), config, title=f"suite {suite}: {v.label}")
        out.append(ImageSet(label=v.label, batch=batch, step=v.step, params=dict(v.params)))
    return out
