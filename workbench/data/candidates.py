"""What a reader of a source yields (``Candidate``), what it could not use (``Skip``), what it returns (``Source``),
and the small column helpers the readers share (``workbench.data.sources``, ``workbench.data.hf_sources``)."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.data.captions import is_missing, parse_kream

CAPTION_COLUMNS = ("text", "caption", "prompt", "captions", "description")
CATEGORY_KEYS = ("category", "articleType", "subCategory", "masterCategory")
COLOUR_KEYS = ("baseColour", "colour", "color", "baseColor")


class SourceError(ValueError):
    """The source as a whole cannot be read (missing, unknown layout, hub unreachable); the message says what to do."""


@dataclass
class Skip:
    where: str  # the file, or "metadata.jsonl line 7"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Candidate:
    key: str
    path: Path | None = None
    data: bytes | None = None
    caption: str = ""
    caption_source: str = ""  # source | template | ""
    attributes: dict[str, Any] = field(default_factory=dict)
    missing_fields: list[str] = field(default_factory=list)


@dataclass
class Source:
    """An opened source: what it is, how many candidates (when known up front), and what was skipped so far."""

    kind: str
    location: str
    candidates: Iterator[Candidate]
    total: int | None = None
    skips: list[Skip] = field(default_factory=list)
    cleanup: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)



def _unusable_file(path: Path, label: str, root: Path) -> str | None:
    """Why a listed file cannot be imported, or None when it can. Symlinks are never followed, and the whole path
    (not only its last part) must resolve inside ``root``: a symlinked folder cannot lead out of the source."""
    if path.is_symlink():
        return f"{label} is a symlink (not followed)"
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        return f"{label} is outside the source folder (through a symlinked folder); not imported"
    if not path.is_file():
        return f"{label} not found"
    return None

def derive_columns(attributes: dict[str, Any]) -> tuple[str, str, str]:
    """(category, brand, colour) from attributes, for filters and stratified splits."""
    def first(keys):
        for k in keys:
            if k in attributes and not is_missing(attributes[k]):
                return " ".join(str(attributes[k]).split())[:200]
        return ""
    return first(CATEGORY_KEYS), first(("brand", "Brand")), first(COLOUR_KEYS)


def _caption_column(columns: list[str], wanted: str | None, where: str) -> str | None:
    if wanted:
        if wanted not in columns:
            raise SourceError(f"{where}: caption column {wanted!r} not found (columns: {', '.join(columns)})")
        return wanted
    return next((c for c in CAPTION_COLUMNS if c in columns), None)


def _kream_fields(caption: str, attrs: dict[str, Any]) -> str:
    parsed = parse_kream(caption)
    if parsed is None:
        return caption
    attrs.update(category=parsed.category, product_name=parsed.product_name, text=caption)
    return parsed.caption
