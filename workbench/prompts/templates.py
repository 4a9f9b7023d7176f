"""Prompt templates and scene presets: the YAML format, its validation, and the compiled objects.

A product template (``prompt_templates/products/t-shirt.yaml``)::

    kind: product                      # or "scene" for a scene preset
    title: T-shirt
    text: "{trigger} {fit} {color} t-shirt, {fabric}, {scene}"
    default_scene: studio-white
    slots:
      color:
        values: [white, black, "{sand|stone}"]   # an entry may hold inline alternatives
        default: white
        palette: true                  # the brand's palette colours are allowed too
      fit: {values: [regular fit, oversized], default: regular fit}
    negative: "wrinkled fabric, stains"
    recommended: {width: 1024, height: 1024, steps: 30, guidance: 6.5}

``{trigger}`` (the brand's trigger token) and ``{scene}`` (the chosen scene preset's text) are filled in for every
template. A scene preset has ``text`` (alternatives allowed, no slots), ``negative`` and ``recommended``; its
recommended settings override the product's (an on-model shot wants a portrait size). Every problem is reported as
``file:line: field: message``; unknown keys are an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from workbench.prompts.syntax import Segment, SlotRef, SyntaxProblem, alternatives, parse
from workbench.prompts.yamlio import Problem, PromptError, YamlDoc, read_yaml

NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
RESERVED_SLOTS = ("trigger", "scene")
KINDS = ("product", "scene")

TEMPLATE_KEYS = {"kind", "name", "title", "description", "text", "slots", "negative", "recommended", "default_scene"}
SCENE_KEYS = {"kind", "name", "title", "description", "text", "negative", "recommended"}
SLOT_KEYS = {"values", "default", "allow_custom", "palette", "help"}


@dataclass(frozen=True)
class Recommended:
    """Generation settings a template or scene suggests; None where it has no opinion."""

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None

    def merged(self, override: Recommended | None) -> Recommended:
        """These settings with every value ``override`` sets replacing ours."""
        if override is None:
            return self
        return Recommended(**{f.name: (getattr(override, f.name) if getattr(override, f.name) is not None
                                       else getattr(self, f.name)) for f in fields(self)})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


_RECOMMENDED_RULES: dict[str, tuple[type, float, float]] = {
    "width": (int, 256, 2048), "height": (int, 256, 2048), "steps": (int, 1, 150), "guidance": (float, 0.0, 30.0),
}


@dataclass(frozen=True)
class Slot:
    name: str
    values: tuple[str, ...]  # allowed entries as written (may hold inline alternatives)
    default: str
    allow_custom: bool = False  # any text is accepted (product names, custom details)
    palette: bool = False  # the brand profile's palette colour names are allowed too
    help: str = ""
    line: int | None = None  # where the slot is declared, for error messages

    def allowed(self, palette: tuple[str, ...] = ()) -> list[str]:
        """The choices to offer: the entries as written, then the brand's palette colours when this slot takes them."""
        extra = [c for c in palette if self.palette and c not in self.values]
        return list(self.values) + extra

    def accepts(self, value: str, palette: tuple[str, ...] = ()) -> bool:
        if self.allow_custom:
            return True
        allowed = self.allowed(palette)
        return value in allowed or any(value in alternatives(entry) for entry in allowed if "{" in entry)


@dataclass(frozen=True)
class Template:
    """A product template or a scene preset, compiled: ``segments`` is ``text`` parsed once."""

    name: str
    kind: str
    title: str
    text: str
    path: str
    description: str = ""
    slots: dict[str, Slot] = field(default_factory=dict)
    negative: str = ""
    recommended: Recommended = field(default_factory=Recommended)
    default_scene: str | None = None
    segments: tuple[Segment, ...] = ()
    line: int | None = None  # line of ``text``

    @property
    def uses_scene(self) -> bool:
        return any(isinstance(s, SlotRef) and s.name == "scene" for s in self.segments)


# -- validation ----------------------------------------------------------------------------------------------------


def parse_template(text: str, file: str, default_name: str = "") -> Template:
    """Validate a template or scene preset written as YAML; raise PromptError listing every problem with its line."""
    doc = read_yaml(text, file)
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict):
        raise PromptError(Problem(file, doc.line(), "", "a template must be a mapping (kind, text, slots, …)"))

    kind = data.get("kind", "product")
    if kind not in KINDS:
        problems.append(doc.problem(("kind",), f"must be one of {', '.join(KINDS)}, not {kind!r}"))
        kind = "product"
    allowed_keys = TEMPLATE_KEYS if kind == "product" else SCENE_KEYS
    for key in data:
        if key not in allowed_keys:
            allowed = ", ".join(sorted(allowed_keys))
            problems.append(doc.problem((key,), f"unknown key for a {kind} (allowed: {allowed})"))

    name = _string(doc, ("name",), problems, default=default_name)
    if not NAME.match(name or ""):
        why = f"{name!r} is not a valid name" if name else "required: a name"
        problems.append(doc.problem(("name",), f"{why}: lowercase letters, digits, '-' or '_'"))
    title = _string(doc, ("title",), problems, default=name)
    description = _string(doc, ("description",), problems, default="")
    negative = _string(doc, ("negative",), problems, default="")
    body = _string(doc, ("text",), problems, default=None)
    if not body or not body.strip():
        problems.append(doc.problem(("text",), "required: the prompt text"))
        body = ""

    slots = _slots(doc, problems) if kind == "product" else {}
    segments: list[Segment] = []
    try:
        segments = parse(body)
    except SyntaxProblem as exc:
        problems.append(Problem(file, doc.line_in_text(("text",), exc.offset), "text", str(exc)))
    used = set(slots) if not segments else set()  # text that does not parse: don't also call every slot unused
    for seg in segments:
        if not isinstance(seg, SlotRef):
            continue
        line = doc.line_in_text(("text",), seg.offset)
        if kind == "scene":
            problems.append(Problem(file, line, "text", f"'{{{seg.name}}}': scene presets cannot use slots, "
                                                        "only alternatives like {a|b}"))
        elif seg.name not in slots and seg.name not in RESERVED_SLOTS:
            known = ", ".join(list(slots) + list(RESERVED_SLOTS))
            problems.append(Problem(file, line, "text", f"unknown slot '{seg.name}' (declared: {known})"))
        used.add(seg.name)
    for slot in slots.values():
        if slot.name not in used:
            problems.append(Problem(file, slot.line, f"slots.{slot.name}", "declared but not used in text"))

    default_scene = _string(doc, ("default_scene",), problems, default=None) if kind == "product" else None
    recommended = _recommended(doc, problems)
    if problems:
        raise PromptError(problems)
    return Template(name=name, kind=kind, title=title, text=body, path=file, description=description, slots=slots,
                    negative=negative, recommended=recommended, default_scene=default_scene,
                    segments=tuple(segments), line=doc.line("text"))


def _string(doc: YamlDoc, path: tuple, problems: list[Problem], default: str | None) -> str | None:
    value = _get(doc.data, path, default)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # `default: 2` for a "2 pockets" style value reads naturally
    problems.append(doc.problem(path, f"must be text, not {type(value).__name__}"))
    return default


def _get(data: Any, path: tuple, default: Any) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _slots(doc: YamlDoc, problems: list[Problem]) -> dict[str, Slot]:
    raw = doc.data.get("slots") or {}
    if not isinstance(raw, dict):
        problems.append(doc.problem(("slots",), "must be a mapping of slot name to {values, default}"))
        return {}
    slots: dict[str, Slot] = {}
    for name, spec in raw.items():
        path = ("slots", name)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(doc.problem(path, f"slot name {name!r} must be letters, digits and '_'"))
            continue
        if name in RESERVED_SLOTS:
            problems.append(doc.problem(path, f"'{name}' is filled in by the workbench; pick another slot name"))
            continue
        if not isinstance(spec, dict):
            problems.append(doc.problem(path, "must be a mapping with 'values' and 'default'"))
            continue
        for key in spec:
            if key not in SLOT_KEYS:
                problems.append(doc.problem(path + (key,), f"unknown key (allowed: {', '.join(sorted(SLOT_KEYS))})"))
        allow_custom = spec.get("allow_custom", False)
        palette = spec.get("palette", False)
        for flag, value in (("allow_custom", allow_custom), ("palette", palette)):
            if not isinstance(value, bool):
                problems.append(doc.problem(path + (flag,), f"must be true or false, not {value!r}"))
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            problems.append(doc.problem(path + ("values",), "required: a non-empty list of allowed values"))
            continue
        entries: list[str] = []
        for i, value in enumerate(values):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                problems.append(doc.problem(path + ("values", i), f"must be non-empty text, not {value!r}"))
                continue
            try:
                alternatives(value)
            except SyntaxProblem as exc:
                problems.append(doc.problem(path + ("values", i), str(exc)))
                continue
            entries.append(value.strip())
        default = spec.get("default", entries[0] if entries else "")
        default = str(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else default
        default = default.strip() if isinstance(default, str) else default
        slot = Slot(name=name, values=tuple(entries), default=default if isinstance(default, str) else "",
                    allow_custom=allow_custom is True, palette=palette is True, help=str(spec.get("help", "")),
                    line=doc.line(*path))
        if not isinstance(default, str):
            problems.append(doc.problem(path + ("default",), f"must be text, not {default!r}"))
        elif entries and not slot.accepts(default):
            problems.append(doc.problem(path + ("default",),
                                        f"value not allowed: {default!r} is not one of {', '.join(entries)}"))
        slots[name] = slot
    return slots


def _recommended(doc: YamlDoc, problems: list[Problem]) -> Recommended:
    raw = doc.data.get("recommended") or {}
    if not isinstance(raw, dict):
        problems.append(doc.problem(("recommended",), "must be a mapping: width, height, steps, guidance"))
        return Recommended()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        path = ("recommended", key)
        if key not in _RECOMMENDED_RULES:
            problems.append(doc.problem(path, f"unknown key (allowed: {', '.join(_RECOMMENDED_RULES)})"))
            continue
        kind, low, high = _RECOMMENDED_RULES[key]
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int and ok_type and value != int(value):
            ok_type = False
        if not ok_type or not low <= value <= high:
            problems.append(doc.problem(path, f"must be a {kind.__name__} between {low:g} and {high:g}, not {value!r}"))
            continue
        if key in ("width", "height") and int(value) % 8:
            problems.append(doc.problem(path, f"must be a multiple of 8 (SDXL works in 8-pixel blocks), not {value}"))
            continue
        values[key] = kind(value)
    return Recommended(**values)

