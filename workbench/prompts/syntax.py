"""The prompt text language: ``{slot}`` references, inline alternatives ``{navy|olive|black}``, ``{{``/``}}`` for a
literal brace. Text is compiled once into segments; expansion then only picks and joins strings.

    parse("a {color} shirt in {cotton|linen}")
    -> ['a ', SlotRef('color', 2), ' shirt in ', Alternatives(('cotton', 'linen'), 19)]
    alternatives("{navy|olive} wool") -> ['navy wool', 'olive wool']

An alternative may be empty (``{hooded|} jacket``), which makes a phrase optional; options are stripped and the
spaces left behind are tidied. Alternatives hold plain text: braces do not nest.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

SLOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class SlotRef:
    name: str
    offset: int  # where the reference starts in the source text (for error lines)


@dataclass(frozen=True)
class Alternatives:
    options: tuple[str, ...]
    offset: int


Segment = str | SlotRef | Alternatives


class SyntaxProblem(ValueError):
    """Malformed braces; ``offset`` is the character position in the text."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


def parse(text: str) -> list[Segment]:
    """Split ``text`` into literal strings, slot references and alternatives; raise SyntaxProblem on bad braces."""
    segments: list[Segment] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "}":
            raise SyntaxProblem("'}' without a matching '{' (write '}}' for a literal brace)", i)
        elif ch == "{":
            end = text.find("}", i + 1)
            nested = text.find("{", i + 1)
            if end < 0:
                raise SyntaxProblem("'{' is never closed (write '{{' for a literal brace)", i)
            if 0 <= nested < end:
                raise SyntaxProblem("braces cannot nest: alternatives hold plain text", nested)
            body = text[i + 1:end]
            if literal:
                segments.append("".join(literal))
                literal = []
            if "|" in body:
                segments.append(Alternatives(tuple(opt.strip() for opt in body.split("|")), i))
            elif SLOT_NAME.match(body.strip()):
                segments.append(SlotRef(body.strip(), i))
            else:
                raise SyntaxProblem(f"'{{{body}}}' is neither a slot name nor alternatives like {{a|b}}", i)
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        segments.append("".join(literal))
    return segments


def alternatives(text: str) -> list[str]:
    """Every variant of a text with inline alternatives (no slot references allowed), in order, tidied."""
    segments = parse(text)
    choices: list[tuple[str, ...]] = []
    for seg in segments:
        if isinstance(seg, SlotRef):
            raise SyntaxProblem(f"'{{{seg.name}}}': only alternatives are allowed here, not slots", seg.offset)
        choices.append(seg.options if isinstance(seg, Alternatives) else (seg,))
    out: dict[str, None] = {}
    for combo in itertools.product(*choices):
        out.setdefault(tidy("".join(combo)), None)
    return list(out)


_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_REPEATED_COMMAS = re.compile(r",(\s*,)+")


def tidy(text: str) -> str:
    """Collapse what empty slots and empty alternatives leave behind: double spaces, ' ,', ', ,', edge commas."""
    text = _REPEATED_COMMAS.sub(",", _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text)))
    return text.strip(" ,")
