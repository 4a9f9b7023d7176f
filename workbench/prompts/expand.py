"""Turn a template, slot choices, scenes and a brand into a batch of checked prompts.

The choices span a mixed-radix space: one axis per slot (its chosen values, inline alternatives expanded), one for
the scene presets (each scene's own alternatives expanded), one per inline alternative group in the template text.
Combination ``i`` is decoded digit by digit (last axis fastest, like ``itertools.product``), so a *cartesian* batch is
indices ``0..N-1`` and a *sample* is ``random.Random(seed).sample(range(N), k)`` in index order: exact, reproducible,
and never materialising a product larger than the cap. Duplicate texts (case-insensitive) are dropped, keeping the
first; every prompt gets a token count (positive and negative) and the brand's rule checks.

    batch = expand_batch(load_library(), BatchSpec("t-shirt", slots={"color": ["navy", "olive"]}, brand="northwind"))
    batch.prompts[0].text, batch.prompts[0].tokens.count, batch.prompts[0].violations
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.prompts.brands import BrandProfile
from workbench.prompts.library import Library
from workbench.prompts.rules import BrandRules, RuleViolation
from workbench.prompts.syntax import Alternatives, SyntaxProblem, alternatives, tidy
from workbench.prompts.templates import Template
from workbench.prompts.tokens import TokenCount, count_tokens_batch
from workbench.prompts.yamlio import Problem, PromptError

MODES = ("cartesian", "sample")
DEFAULT_CAP = 10_000
ALL = "*"  # as a slot choice: every allowed value


@dataclass
class BatchSpec:
    """What to expand. Slots left out use their default; ``["*"]`` takes every allowed value."""

    template: str
    slots: dict[str, list[str]] = field(default_factory=dict)
    scenes: list[str] = field(default_factory=list)  # empty: the template's default scene
    brand: str | None = None
    mode: str = "cartesian"  # or "sample"
    sample_size: int | None = None  # sample mode: how many prompts (at most the cap)
    seed: int = 0
    cap: int = DEFAULT_CAP  # most prompts a batch may hold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PromptCheck:
    """Token counts and rule violations of one prompt."""

    tokens: TokenCount
    negative_tokens: TokenCount
    violations: list[RuleViolation]

    @property
    def issues(self) -> list[str]:
        out = [str(v) for v in self.violations]
        if self.tokens.truncated:
            out.append(self.tokens.warning)
        if self.negative_tokens.truncated:
            out.append("negative prompt: " + self.negative_tokens.warning)
        return out


@dataclass
class PromptCandidate:
    """One expanded prompt, not yet saved."""

    text: str
    negative: str
    template: str
    scene: str | None
    slot_values: dict[str, str]
    params: dict[str, Any]  # recommended width, height, steps, guidance
    check: PromptCheck

    @property
    def tokens(self) -> TokenCount:
        return self.check.tokens

    @property
    def violations(self) -> list[RuleViolation]:
        return self.check.violations

    @property
    def ok(self) -> bool:
        return not self.check.issues


@dataclass
class Batch:
    spec: BatchSpec
    prompts: list[PromptCandidate]
    combinations: int  # size of the whole space the prompts were drawn from
    duplicates_removed: int

    @property
    def with_violations(self) -> int:
        return sum(1 for p in self.prompts if p.violations)

    @property
    def truncated(self) -> int:
        return sum(1 for p in self.prompts if p.tokens.truncated or p.check.negative_tokens.truncated)

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per prompt, for tables and CSV."""
        return [{"#": i + 1, "prompt": p.text, "tokens": p.tokens.total, "scene": p.scene or "",
                 **{f"slot:{k}": v for k, v in p.slot_values.items()}, "issues": "; ".join(p.check.issues),
                 "negative": p.negative} for i, p in enumerate(self.prompts)]


def merge_negatives(*parts: str) -> str:
    """Comma-separated negative prompts joined, each term once (first spelling kept)."""
    terms: dict[str, str] = {}
    for part in parts:
        for term in (part or "").split(","):
            term = " ".join(term.split())
            if term:
                terms.setdefault(term.casefold(), term)
    return ", ".join(terms.values())


def check_prompt(text: str, negative: str = "", brand: BrandProfile | None = None) -> PromptCheck:
    """Token counts and brand rule violations of one prompt written by hand (or refined)."""
    tokens, negative_tokens = count_tokens_batch([text, negative])
    rules = BrandRules(brand).check(text, tokens.kept if tokens.truncated else None)
    return PromptCheck(tokens, negative_tokens, rules)


def render(library: Library, template: str, values: dict[str, str] | None = None, scene: str | None = None,
           brand: str | None = None) -> Batch:
    """One prompt per inline-alternative variant, for one value per slot (the live preview and ``prompts render``)."""
    spec = BatchSpec(template, slots={k: [v] for k, v in (values or {}).items()}, scenes=[scene] if scene else [],
                     brand=brand)
    return expand_batch(library, spec)


def expand_batch(library: Library, spec: BatchSpec) -> Batch:
    """Expand ``spec`` into checked prompts; raise PromptError naming the file and line of a bad slot or value."""
    template = library.template(spec.template)
    brand = library.brand(spec.brand) if spec.brand else None
    axes, slot_axis, scene_axis, scene_names = _axes(library, template, spec, brand)
    sizes = [len(a) for a in axes]
    total = math.prod(sizes)
    indices = _indices(spec, total)

    # Each segment is either literal text or the index of the axis that supplies it.
    plan: list[str | int] = []
    alt_count = 0
    trigger = brand.trigger if brand else ""
    alt_axes = [i for i in range(len(axes)) if i not in slot_axis.values() and i != scene_axis]
    for seg in template.segments:
        if isinstance(seg, str):
            plan.append(seg)
        elif isinstance(seg, Alternatives):
            plan.append(alt_axes[alt_count])
            alt_count += 1
        elif seg.name == "trigger":
            plan.append(trigger)
        elif seg.name == "scene":
            plan.append(scene_axis)
        else:
            plan.append(slot_axis[seg.name])

    drafts: list[tuple[str, str, str | None, dict[str, str], dict[str, Any]]] = []
    seen: set[str] = set()
    duplicates = 0
    scene_info: dict[str | None, tuple[str, dict[str, Any]]] = {}
    for index in indices:
        digits = [0] * len(sizes)
        rest = index
        for a in range(len(sizes) - 1, -1, -1):
            rest, digits[a] = divmod(rest, sizes[a])
        text = tidy("".join(part if isinstance(part, str) else axes[part][digits[part]] for part in plan))
        key = text.casefold()
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        scene = scene_names[digits[scene_axis]] if scene_axis is not None else None
        if scene not in scene_info:
            preset = library.scenes[scene] if scene else None
            negative = merge_negatives(template.negative, preset.negative if preset else "",
                                       brand.negative if brand else "")
            params = template.recommended.merged(preset.recommended if preset else None).as_dict()
            scene_info[scene] = (negative, params)
        negative, params = scene_info[scene]
        slot_values = {name: axes[a][digits[a]] for name, a in slot_axis.items()}
        drafts.append((text, negative, scene, slot_values, params))

    counts = count_tokens_batch([d[0] for d in drafts])
    negative_counts = count_tokens_batch([d[1] for d in drafts])
    rules = BrandRules(brand)
    prompts = [
        PromptCandidate(text, negative, template.name, scene, slot_values, params,
                        PromptCheck(tc, ntc, rules.check(text, tc.kept if tc.truncated else None)))
        for (text, negative, scene, slot_values, params), tc, ntc in zip(drafts, counts, negative_counts)
    ]
    return Batch(spec, prompts, total, duplicates)


def _indices(spec: BatchSpec, total: int) -> range | list[int]:
    if spec.mode not in MODES:
        raise PromptError(f"mode: must be one of {', '.join(MODES)}, not {spec.mode!r}")
    if spec.cap < 1:
        raise PromptError(f"cap: must be at least 1, not {spec.cap}")
    if spec.mode == "cartesian":
        if total > spec.cap:
            raise PromptError(f"{total:,} combinations exceed the cap of {spec.cap:,}: choose fewer values, "
                              "or draw a random sample")
        return range(total)
    size = spec.sample_size if spec.sample_size is not None else spec.cap
    if size < 1 or size > spec.cap:
        raise PromptError(f"sample_size: must be between 1 and the cap of {spec.cap:,}, not {size}")
    return sorted(random.Random(spec.seed).sample(range(total), min(size, total)))


def _axes(library: Library, template: Template, spec: BatchSpec, brand: BrandProfile | None):
    """The value lists to combine, which axis each slot uses, and the scene axis with its scene names."""
    problems: list[Problem] = []
    palette = brand.palette_names if brand else ()
    axes: list[list[str]] = []
    slot_axis: dict[str, int] = {}
    for name in spec.slots:
        if name not in template.slots:
            problems.append(Problem(template.path, template.line, f"slots.{name}",
                                    f"unknown slot '{name}' for template '{template.name}' "
                                    f"(its slots: {', '.join(template.slots) or 'none'})"))
    for name, slot in template.slots.items():
        chosen = spec.slots.get(name) or [slot.default]
        if ALL in chosen:
            chosen = slot.allowed(palette)
        values: dict[str, None] = {}
        for value in chosen:
            value = str(value).strip()
            if not slot.accepts(value, palette):
                problems.append(Problem(template.path, slot.line, f"slots.{name}",
                                        f"value not allowed: {value!r} (allowed: {', '.join(slot.allowed(palette))})"))
                continue
            try:
                values.update(dict.fromkeys(alternatives(value) if "{" in value else [value]))
            except SyntaxProblem as exc:
                problems.append(Problem(template.path, slot.line, f"slots.{name}", f"{value!r}: {exc}"))
        slot_axis[name] = len(axes)
        axes.append(list(values))

    scene_axis: int | None = None
    scene_names: list[str] = []
    if template.uses_scene:
        chosen_scenes = spec.scenes or ([template.default_scene] if template.default_scene else [])
        if not chosen_scenes:
            problems.append(Problem(template.path, template.line, "scene",
                                    "choose a scene preset (the template has no default_scene)"))
        variants: list[str] = []
        for scene in dict.fromkeys(chosen_scenes):
            if scene not in library.scenes:
                problems.append(Problem(template.path, template.line, "scene",
                                        f"unknown scene preset {scene!r} (known: {', '.join(sorted(library.scenes))})"))
                continue
            for variant in alternatives(library.scenes[scene].text):
                variants.append(variant)
                scene_names.append(scene)
        scene_axis = len(axes)
        axes.append(variants)
    elif spec.scenes:
        problems.append(Problem(template.path, template.line, "text",
                                f"template '{template.name}' has no {{scene}}: it cannot take scene presets"))
    for seg in template.segments:
        if isinstance(seg, Alternatives):
            axes.append(list(seg.options))
    if problems:
        raise PromptError(problems)
    return axes, slot_axis, scene_axis, scene_names
