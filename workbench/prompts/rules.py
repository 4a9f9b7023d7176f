"""A brand's rules applied to a prompt: forbidden terms absent, required phrases and the trigger token present.

Matching ignores case and respects word edges, so forbidding "nike" does not flag "nikeisha", and requiring
"photograph" is not met by "photographic". A required phrase or the trigger that sits past the 77-token limit is
reported too: the text has it, the text encoder never sees it.

    rules = BrandRules(brand)
    rules.check("nwo_style navy tee, photograph")  -> [RuleViolation(...), ...]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.prompts.brands import BrandProfile


@dataclass(frozen=True)
class RuleViolation:
    rule: str  # "forbidden" | "required" | "trigger" | "cut"
    term: str
    message: str

    def __str__(self) -> str:
        return self.message


def _phrase(term: str) -> str:
    return r"(?<!\w)" + re.escape(term) + r"(?!\w)"


class BrandRules:
    """The compiled rules of one brand profile (none at all when ``brand`` is None)."""

    def __init__(self, brand: BrandProfile | None):
        self.brand = brand
        forbidden = sorted(brand.forbidden_terms, key=len, reverse=True) if brand else []  # longest match wins
        self._forbidden = re.compile("|".join(_phrase(t) for t in forbidden), re.IGNORECASE) if forbidden else None
        self._forbidden_by_key = {t.casefold(): t for t in forbidden}
        self._required = [(p, re.compile(_phrase(p), re.IGNORECASE)) for p in (brand.required_phrases if brand else ())]
        self._trigger = re.compile(_phrase(brand.trigger), re.IGNORECASE) if brand and brand.trigger else None

    def check(self, text: str, kept: str | None = None) -> list[RuleViolation]:
        """Violations of ``text``; ``kept`` is the part within the token limit, when the text is longer."""
        out: list[RuleViolation] = []
        if self._forbidden is not None:
            found = dict.fromkeys(self._forbidden_by_key.get(m.group(0).casefold(), m.group(0))
                                  for m in self._forbidden.finditer(text))
            out.extend(RuleViolation("forbidden", t, f"forbidden term '{t}'") for t in found)
        if self._trigger is not None:
            out.extend(self._presence("trigger", "trigger token", self.brand.trigger, self._trigger, text, kept))
        for phrase, pattern in self._required:
            out.extend(self._presence("required", "required phrase", phrase, pattern, text, kept))
        return out

    @staticmethod
    def _presence(rule: str, label: str, term: str, pattern: re.Pattern, text: str, kept: str | None):
        if not pattern.search(text):
            return [RuleViolation(rule, term, f"missing {label} '{term}'")]
        if kept is not None and kept != text and not pattern.search(kept):
            return [RuleViolation("cut", term, f"{label} '{term}' is past the 77-token limit and gets cut")]
        return []
