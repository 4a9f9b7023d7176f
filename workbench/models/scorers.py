"""CLIP scorers: the configured one (``settings.models.clip_scorer``) or one tuned on a brand's catalog
(``workbench.train.clip_tune``), loaded through one function so every score can say which scorer made it.

A scorer reference is

- ``""``: the configured scorer (``settings.models.clip_scorer``);
- ``tuned:<name>`` or ``tuned:<id>``: a tuned scorer from the ``scorers`` table (its open_clip folder);
- anything else: an open_clip model reference as ``sources.load_open_clip`` takes it (hub id, local folder).

A brand profile's ``scorer:`` holds such a reference; the CLIP gate, the Evaluate page's CLIP metrics and shop-the-look
retrieval use it for that brand. ``label`` is what gets recorded with each score (``clip_scorer`` in a generation's
provenance, the backbone of an evaluation, the ``model_ref`` of retrieval embeddings): ``tuned:<name>`` for a tuned
scorer, else the reference itself.

    s = load_scorer("tuned:aurelo-clip")       # Scorer(label, path, model, preprocess, tokenizer, info)
    s.model, s.preprocess, s.tokenizer          # what models.clip's functions take
    list_scorers()                              # [ScorerInfo(...)] newest first
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.db import session_scope
from workbench.settings import Settings, get_settings

TUNED = "tuned:"
CARD_FILE = "scorer_card.json"


class ScorerError(ValueError):
    """A scorer reference that names no scorer (the message lists the known ones)."""


@dataclass(frozen=True)
class ScorerInfo:
    id: int
    name: str
    path: str
    base_ref: str
    dataset_id: int | None
    job_id: int | None
    card: dict[str, Any]
    created_by: str

    @property
    def label(self) -> str:
        return f"{TUNED}{self.name}"


@dataclass
class Scorer:
    label: str  # recorded with every score this scorer makes
    path: str  # what was loaded (a folder or hub id)
    model: Any = None
    preprocess: Any = None
    tokenizer: Any = None
    info: ScorerInfo | None = None  # the tuned scorer's row; None for the configured model
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def triple(self) -> tuple[Any, Any, Any]:
        return self.model, self.preprocess, self.tokenizer


def _info(row) -> ScorerInfo:
    return ScorerInfo(row.id, row.name, row.path, row.base_ref, row.dataset_id, row.job_id, dict(row.card or {}),
                      row.created_by)


def list_scorers(settings: Settings | None = None) -> list[ScorerInfo]:
    from workbench.models.tables import Scorer as Row

    with session_scope(settings) as s:
        return [_info(r) for r in s.scalars(select(Row).order_by(Row.id.desc()))]


def get_scorer(name_or_id: str | int, settings: Settings | None = None) -> ScorerInfo:
    """A tuned scorer by name or id (``tuned:`` prefix allowed); ScorerError naming the known ones otherwise."""
    from workbench.models.tables import Scorer as Row

    key = str(name_or_id).strip()
    key = key[len(TUNED):] if key.startswith(TUNED) else key
    with session_scope(settings) as s:
        row = s.get(Row, int(key)) if key.isdigit() else None
        row = row or s.scalar(select(Row).where(Row.name == key))
        if row is not None:
            return _info(row)
        known = ", ".join(s.scalars(select(Row.name).order_by(Row.id))) or "none yet"
    raise ScorerError(f"no tuned scorer {key!r} (tuned scorers: {known}; train one with `workbench train clip`)")


def resolve(ref: str | None, settings: Settings | None = None) -> tuple[str, str, ScorerInfo | None]:
    """(label, loadable reference, tuned scorer row or None) of a scorer reference."""
    ref = (ref or "").strip()
    if not ref:
        ref = (settings or get_settings()).models.clip_scorer
    if ref.startswith(TUNED):
        info = get_scorer(ref, settings)
        return info.label, info.path, info
    return ref, ref, None


def register_scorer(name: str, path: Path | str, base_ref: str, card: dict[str, Any], created_by: str, *,
                    dataset_id: int | None = None, job_id: int | None = None,
                    settings: Settings | None = None) -> ScorerInfo:
    """Record a tuned scorer's folder (written by the fine-tuning job, which checked the user's permission)."""
    from workbench.models.tables import Scorer as Row

    with session_scope(settings) as s:
        if s.scalar(select(Row.id).where(Row.name == name)) is not None:
            raise ScorerError(f"a tuned scorer called {name!r} exists already: choose another name")
        row = Row(name=name, path=str(path), base_ref=base_ref, card=card, created_by=created_by,
                  dataset_id=dataset_id, job_id=job_id)
        s.add(row)
        s.flush()
        return _info(row)


def load_scorer(ref: str | None = None, device: str = "cpu", settings: Settings | None = None) -> Scorer:
    """Load a scorer (see the module docstring for references). Raises ModelUnavailable when the weights are missing
    and ScorerError for an unknown tuned scorer; never downloads."""
    from workbench.models.sources import load_open_clip

    label, path, info = resolve(ref, settings)
    model, preprocess, tokenizer = load_open_clip(path, device=device)
    return Scorer(label, path, model, preprocess, tokenizer, info)
