"""What the Generate page reads: registered LoRAs, a batch's images, saved prompts. Results are dataclasses, so the
page never queries a table itself.

    [l.name for l in registered_loras()]; batch_images("page"); saved_prompts()
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

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


def registered_loras(limit: int = 200) -> list[LoraChoice]:
    """LoRAs trained here, newest first."""
    from workbench.train.tables import Lora

    with session_scope() as s:
        rows = s.scalars(select(Lora).order_by(Lora.id.desc()).limit(limit))
        return [LoraChoice(r.id, r.name, r.path, r.rank, r.step, r.trigger or "", bool(r.is_demo)) for r in rows]


def batch_images(batch: str, limit: int = 24) -> list[ImageInfo]:
    """The newest images of a batch (every attempt of the CLIP gate included), newest first."""
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = s.scalars(select(Generation).where(Generation.batch == batch).order_by(Generation.id.desc())
                         .limit(limit))
        return [ImageInfo(r.id, r.image_path, r.seed, r.attempt, r.clip_score, bool(r.kept), bool(r.demo_model),
                          r.prompt, r.prompt_id, (r.params or {}).get("template", "")) for r in rows]


def saved_prompts(limit: int = 200):
    """The prompt library's current versions (not superseded by a refinement), newest first, as
    ``workbench.prompts.store.StoredPrompt``; ``prompt_history(id)`` lists a prompt's versions."""
    from workbench.prompts.store import StoredPrompt
    from workbench.prompts.tables import PromptRow

    with session_scope() as s:
        rows = s.scalars(select(PromptRow).where(PromptRow.status == "active").order_by(PromptRow.id.desc())
                         .limit(limit))
        return [StoredPrompt.from_row(r) for r in rows]
