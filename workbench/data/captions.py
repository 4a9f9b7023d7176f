"""Caption rules: attribute templates (Kaggle ``styles.csv``), KREAM text parsing, trigger-token prefixes, find/replace.

The attribute rule, exactly (``render_template``):

1. The template is split on whitespace into tokens; ``{field}`` placeholders name CSV columns.
2. A value that is missing, empty, or one of ``None``/``NA``/``N/A``/``nan``/``null`` (any case) is *missing*: every
   token holding a missing placeholder is dropped whole (so ``{gender}'s`` disappears with the gender), never printed.
3. Fields in ``SINGULAR_FIELDS`` (``articleType``) are made singular: the table ``SINGULAR`` first ("Tshirts" ->
   "T-shirt"), words that are plural by nature ("Jeans", "Trousers", "Track Pants") stay, otherwise the last word
   loses its plural ending ("Sweatshirts" -> "Sweatshirt", "Dresses" -> "Dress", "Accessories" -> "Accessory").
4. A year written as a float ("2011.0", pandas' habit) is printed as an integer; whitespace is collapsed. Values are
   otherwise printed as they are (no case changes; "a"/"an" in the template are left alone).

Default: ``an image of a {year} {season} {baseColour} {gender}'s {articleType}``, e.g. "an image of a 2011 Fall
Navy Blue Men's Shirt".

KREAM (hahminlew/kream-product-blip-captions) ``text`` is "category, product name, BLIP caption": the part before
the first comma is the category, after the last comma the caption, and the middle (which may hold commas) the
product name.
"""
from __future__ import annotations

import re
import string

import regex as _regex  # re's syntax, plus a timeout: user patterns must not hang the server
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TEMPLATE = "an image of a {year} {season} {baseColour} {gender}'s {articleType}"
MISSING_VALUES = frozenset({"", "none", "na", "n/a", "nan", "null"})
SINGULAR_FIELDS = frozenset({"articleType"})
SINGULAR = {
    "tshirts": "T-shirt", "t-shirts": "T-shirt", "tees": "Tee", "innerwear vests": "Innerwear Vest",
    "lounge tshirts": "Lounge T-shirt", "sweatshirts": "Sweatshirt", "jeggings": "Jeggings", "shoe accessories":
    "Shoe Accessory", "accessory gift set": "Accessory Gift Set", "watches": "Watch", "dresses": "Dress",
    "heels": "Heels", "flip flops": "Flip Flops", "sunglasses": "Sunglasses", "hoodies": "Hoodie",
    "sneakers": "Sneakers", "caps": "Cap",
}
PLURAL_ONLY = frozenset({
    "jeans", "trousers", "shorts", "pants", "track pants", "leggings", "tights", "capris", "briefs", "boxers",
    "trunk", "stockings", "jeggings", "sunglasses", "lounge pants", "lounge shorts", "swimwear", "innerwear",
    "patiala", "salwar", "churidar", "tracksuits", "rain trousers", "shapewear", "nightdress", "clothing set",
    "glasses", "goggles", "scissors", "headphones", "earphones", "clothes",
})
MAX_CAPTION_CHARS = 2000  # CLIP reads 77 tokens; longer source captions are cut, longer edits refused
REGEX_TIMEOUT = 1.0  # seconds for one find/replace over all the captions it touches
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class TemplateError(ValueError):
    """The caption template is malformed or names a field the source does not have."""


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return str(value).strip().lower() in MISSING_VALUES


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order; TemplateError for a malformed template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"caption template {template!r} is malformed: {exc}") from None
    fields = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier() or spec or conv:
            raise TemplateError(f"caption template {template!r}: placeholder {{{name}}} must be a plain column name")
        fields.append(name)
    if not fields:
        raise TemplateError(f"caption template {template!r} has no {{field}} placeholder")
    return fields


def check_template(template: str, columns: list[str]) -> None:
    """TemplateError naming every placeholder that is not one of ``columns``."""
    unknown = [f for f in template_fields(template) if f not in columns]
    if unknown:
        raise TemplateError(f"caption template uses {', '.join('{' + f + '}' for f in unknown)}, which "
                            f"{'is' if len(unknown) == 1 else 'are'} not among the columns: {', '.join(columns)}")


def singular(value: str) -> str:
    """Singular form of a product type ("Tshirts" -> "T-shirt", "Jeans" stays)."""
    text = " ".join(value.split())
    low = text.lower()
    if low in SINGULAR:
        return SINGULAR[low]
    if low in PLURAL_ONLY or low.split(" ")[-1] in PLURAL_ONLY:
        return text
    head, _, last = text.rpartition(" ")
    lw = last.lower()
    if lw.endswith("ies") and len(lw) > 4:
        last = last[:-3] + "y"
    elif lw.endswith(("ches", "shes", "sses", "xes", "zes")):
        last = last[:-2]
    elif lw.endswith("s") and not lw.endswith(("ss", "us", "is")) and len(lw) > 3:
        last = last[:-1]
    return f"{head} {last}" if head else last


def _format_value(field: str, value: Any) -> str:
    text = " ".join(str(value).split())
    if re.fullmatch(r"\d{4}\.0+", text):
        text = text.split(".")[0]
    if field in SINGULAR_FIELDS:
        text = singular(text)
    return text


@dataclass
class RenderedCaption:
    text: str
    missing: list[str]  # fields dropped because their value was missing


def render_template(template: str, values: Mapping[str, Any]) -> RenderedCaption:
    """Apply the rule in the module docstring. Missing fields are reported, never printed."""
    fields = template_fields(template)
    missing = [f for f in dict.fromkeys(fields) if is_missing(values.get(f))]
    kept = []
    for token in template.split():
        names = _PLACEHOLDER.findall(token)
        if any(n in missing for n in names):
            continue
        kept.append(_PLACEHOLDER.sub(lambda m: _format_value(m.group(1), values[m.group(1)]), token))
    return RenderedCaption(" ".join(" ".join(kept).split()), missing)


# -- KREAM --------------------------------------------------------------------------------------------------------

@dataclass
class KreamText:
    category: str
    product_name: str
    caption: str


def parse_kream(text: str) -> KreamText | None:
    """Split "category, product name, BLIP caption"; None when the text has fewer than three comma-separated parts."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) < 3 or not parts[0] or not parts[-1]:
        return None
    return KreamText(parts[0], ", ".join(parts[1:-1]).strip(), parts[-1])


# -- caption edits ------------------------------------------------------------------------------------------------

def caption_flags(caption: str, missing_fields: list[str] | None = None) -> list[str]:
    """``no_caption`` for an empty caption; ``caption_fields_missing`` when template fields were dropped or the text
    holds a literal None/nan/NA word (a caption written from an attribute table with holes)."""
    if not caption.strip():
        return ["no_caption"]
    if missing_fields or re.search(r"(?<![\w/])(None|nan|NaN|NA|null)(?![\w/])", caption):
        return ["caption_fields_missing"]
    return []


def with_prefix(caption: str, prefix: str) -> str:
    """Put the instance/trigger phrase ("a photo of TOK woman") in front, once: applying it twice changes nothing."""
    prefix = " ".join(prefix.split())
    caption = caption.strip()
    if not prefix or caption.startswith(prefix):
        return caption
    if not caption:
        return prefix
    return f"{prefix}, {caption}"


def cut_caption(caption: str, limit: int = MAX_CAPTION_CHARS) -> str:
    """``caption`` cut to ``limit`` characters, at a word boundary when there is one in the last fifth."""
    if len(caption) <= limit:
        return caption
    head = caption[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit * 4 // 5 else head).rstrip()


def find_replace(caption: str, find: str, replace: str, regex: bool = False, ignore_case: bool = False,
                 timeout: float = REGEX_TIMEOUT) -> str:
    """Replace ``find`` in ``caption``. A regular expression runs in the ``regex`` module with a ``timeout`` (in
    seconds): a pattern that backtracks catastrophically (``(a+)+$``) raises ValueError instead of hanging."""
    if not find:
        raise ValueError("find/replace: the text to find is empty")
    pattern = find if regex else _regex.escape(find)
    try:
        return _regex.sub(pattern, replace if regex else replace.replace("\\", "\\\\"), caption,
                          flags=_regex.V0 | (_regex.IGNORECASE if ignore_case else 0), timeout=max(timeout, 1e-3))
    except _regex.error as exc:
        raise ValueError(f"find/replace: {find!r} is not a valid regular expression: {exc}") from None
    except TimeoutError:
        raise ValueError(f"find/replace: the pattern {find!r} took too long (over {REGEX_TIMEOUT:g} s for the "
                         "captions); simplify it (avoid nested repeats such as (a+)+). Nothing was changed") from None
