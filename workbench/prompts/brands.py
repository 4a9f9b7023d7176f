"""Brand profiles: who the prompts are for and the rules every prompt must keep.

A profile (``prompt_templates/brands/northwind.yaml``)::

    title: Northwind Outfitters
    trigger: nwo_style                 # the token the brand's LoRA was trained on
    loras: [{name: northwind-apparel-v1, scale: 0.8}]
    logo_text: NORTHWIND               # what OCR must read on generated images
    palette: {navy: "#1F2A44", sand: "#D8C3A5"}
    required_phrases: [photograph]
    forbidden_terms: [nike, knockoff]
    negative: "watermark, blurry, lowres"
    product_template: jacket           # the template a product's prompt starts from (else its category's)
    fidelity: {max_delta_e: 5, min_dino: 0.7}   # the product-fidelity gate (see BrandProfile)
    scorer: tuned:northwind-clip       # the CLIP scorer of its gate, evaluation, retrieval (models.scorers)

Problems are reported as ``file:line: field: message``; unknown keys are an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from workbench.prompts.templates import NAME
from workbench.prompts.yamlio import Problem, PromptError, read_yaml

BRAND_KEYS = {"name", "title", "trigger", "loras", "logo_text", "palette", "required_phrases", "forbidden_terms",
              "negative", "gate", "product_template", "fidelity", "scorer"}
GATE_KEYS = {"clip_threshold": (-1.0, 1.0), "max_attempts": (1, 10)}
# The product-fidelity gate's limits: (lowest, highest allowed value, default). null switches a limit off.
FIDELITY_KEYS = {"max_delta_e": (0.0, 100.0, 5.0), "min_dino": (-1.0, 1.0, None), "min_shape_iou": (0.0, 1.0, None)}
HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}\Z")


@dataclass(frozen=True)
class LoraRef:
    name: str  # a trained LoRA's name (or a path to its folder / .safetensors file)
    scale: float = 1.0


@dataclass(frozen=True)
class BrandProfile:
    name: str
    title: str
    path: str
    trigger: str = ""
    loras: tuple[LoraRef, ...] = ()
    logo_text: str = ""
    palette: dict[str, str] = field(default_factory=dict)  # colour name -> "#RRGGBB"
    required_phrases: tuple[str, ...] = ()
    forbidden_terms: tuple[str, ...] = ()
    negative: str = ""
    # The generation gate: an image whose CLIP cosine to its prompt is below clip_threshold is regenerated, up to
    # max_attempts in all (see workbench.generate.guard).
    clip_threshold: float = 0.25
    max_attempts: int = 3
    gate_defined: bool = False  # the profile has a ``gate:`` section: Generate turns the gate on by default
    # The product-fidelity gate: an image generated for a product whose garment differs from the product's reference
    # photos by more than max_delta_e (CIEDE2000), or whose DINO similarity / shape IoU is below min_dino /
    # min_shape_iou, is held in review with the reason (workbench.fidelity.gate). None: no limit.
    max_delta_e: float | None = 5.0
    min_dino: float | None = None
    min_shape_iou: float | None = None
    product_template: str = ""  # the product template a product's prompt starts from ("" : its category's)
    # The CLIP scorer of this brand's gate, CLIP metrics and retrieval: "tuned:<name>" (a scorer tuned on the catalog,
    # workbench.train.clip_tune), another open_clip reference, or "" for settings.models.clip_scorer.
    scorer: str = ""

    @property
    def fidelity_limits(self) -> dict[str, float | None]:
        """The keyword arguments of ``workbench.fidelity.fidelity_gate``."""
        return {"max_delta_e": self.max_delta_e, "min_dino": self.min_dino, "min_shape_iou": self.min_shape_iou}

    @property
    def palette_names(self) -> tuple[str, ...]:
        return tuple(self.palette)


def parse_brand(text: str, file: str, default_name: str = "") -> BrandProfile:
    """Validate a brand profile written as YAML; raise PromptError listing every problem with its line."""
    doc = read_yaml(text, file)
    data = doc.data
    if not isinstance(data, dict):
        raise PromptError(Problem(file, doc.line(), "", "a brand profile must be a mapping (title, trigger, …)"))
    problems: list[Problem] = []
    for key in data:
        if key not in BRAND_KEYS:
            problems.append(doc.problem((key,), f"unknown key (allowed: {', '.join(sorted(BRAND_KEYS))})"))

    def text_field(key: str, default: str = "") -> str:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            problems.append(doc.problem((key,), f"must be text, not {value!r}"))
            return default
        return value.strip()

    def text_list(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list):
            problems.append(doc.problem((key,), "must be a list of phrases"))
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                problems.append(doc.problem((key, i), f"must be non-empty text, not {item!r}"))
            else:
                out.append(item.strip())
        return tuple(out)

    name = text_field("name", default_name)
    if not NAME.match(name):
        why = f"{name!r} is not a valid name" if name else "required: a name"
        problems.append(doc.problem(("name",), f"{why}: lowercase letters, digits, '-' or '_'"))
    trigger = text_field("trigger")
    if re.search(r"\s|[{}]", trigger):
        problems.append(doc.problem(("trigger",), f"the trigger token {trigger!r} must be one word without braces"))

    palette: dict[str, str] = {}
    raw_palette = data.get("palette") or {}
    if not isinstance(raw_palette, dict):
        problems.append(doc.problem(("palette",), "must map colour names to hex codes, e.g. navy: \"#1F2A44\""))
    else:
        for colour, code in raw_palette.items():
            if not isinstance(code, str) or not HEX_COLOUR.match(code):
                problems.append(doc.problem(("palette", colour), f"{code!r} is not a hex colour like \"#1F2A44\""))
            else:
                palette[str(colour)] = code.upper()

    loras: list[LoraRef] = []
    raw_loras = data.get("loras") or []
    if not isinstance(raw_loras, list):
        problems.append(doc.problem(("loras",), "must be a list of {name, scale}"))
        raw_loras = []
    for i, item in enumerate(raw_loras):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            problems.append(doc.problem(("loras", i), "must have a name, e.g. {name: northwind-v1, scale: 0.8}"))
            continue
        extra = set(item) - {"name", "scale"}
        if extra:
            problems.append(doc.problem(("loras", i, sorted(extra)[0]), "unknown key (allowed: name, scale)"))
        scale = item.get("scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 0 <= scale <= 2:
            problems.append(doc.problem(("loras", i, "scale"), f"must be a number between 0 and 2, not {scale!r}"))
            continue
        loras.append(LoraRef(item["name"].strip(), float(scale)))

    gate = {"clip_threshold": 0.25, "max_attempts": 3}
    raw_gate = data.get("gate") or {}
    if not isinstance(raw_gate, dict):
        problems.append(doc.problem(("gate",), "must be a mapping, e.g. {clip_threshold: 0.25, max_attempts: 3}"))
        raw_gate = {}
    for key, value in raw_gate.items():
        if key not in GATE_KEYS:
            problems.append(doc.problem(("gate", key), f"unknown key (allowed: {', '.join(GATE_KEYS)})"))
            continue
        lo, hi = GATE_KEYS[key]
        ok_type = isinstance(value, int) if key == "max_attempts" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not lo <= value <= hi:
            problems.append(doc.problem(("gate", key), f"must be a number from {lo} to {hi}, not {value!r}"))
        else:
            gate[key] = value

    fidelity: dict[str, float | None] = {k: d for k, (_, _, d) in FIDELITY_KEYS.items()}
    raw_fidelity = data.get("fidelity") or {}
    if not isinstance(raw_fidelity, dict):
        problems.append(doc.problem(("fidelity",), "must be a mapping, e.g. {max_delta_e: 5, min_dino: 0.7}"))
        raw_fidelity = {}
    for key, value in raw_fidelity.items():
        if key not in FIDELITY_KEYS:
            problems.append(doc.problem(("fidelity", key), f"unknown key (allowed: {', '.join(FIDELITY_KEYS)})"))
            continue
        lo, hi, _ = FIDELITY_KEYS[key]
        if value is None:
            fidelity[key] = None  # the limit switched off
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            problems.append(doc.problem(("fidelity", key), f"must be a number from {lo:g} to {hi:g} (or null for no "
                                                           f"limit), not {value!r}"))
        else:
            fidelity[key] = float(value)
    product_template = text_field("product_template")
    if product_template and not NAME.match(product_template):
        problems.append(doc.problem(("product_template",), f"{product_template!r} is not a template name: lowercase "
                                                            "letters, digits, '-' or '_'"))

    scorer = text_field("scorer")
    if re.search(r"\s", scorer):
        problems.append(doc.problem(("scorer",), f"{scorer!r}: a scorer reference has no spaces "
                                                  "(e.g. tuned:aurelo-clip)"))

    required = text_list("required_phrases")
    forbidden = text_list("forbidden_terms")
    for phrase in required:
        if phrase.casefold() in {f.casefold() for f in forbidden}:
            problems.append(doc.problem(("required_phrases",), f"{phrase!r} is both required and forbidden"))
    profile = BrandProfile(
        name=name, title=text_field("title", name) or name, path=file, trigger=trigger, loras=tuple(loras),
        logo_text=text_field("logo_text"), palette=palette, required_phrases=required, forbidden_terms=forbidden,
        negative=text_field("negative"), clip_threshold=float(gate["clip_threshold"]),
        max_attempts=int(gate["max_attempts"]), gate_defined=bool(raw_gate), max_delta_e=fidelity["max_delta_e"],
        min_dino=fidelity["min_dino"], min_shape_iou=fidelity["min_shape_iou"], product_template=product_template,
        scorer=scorer,
    )
    if problems:
        raise PromptError(problems)
    return profile


def brand_to_yaml(profile: BrandProfile) -> str:
    """``profile`` written in the profile format (what ``parse_brand`` reads back to an equal profile): for the
    Prompts page's form, which saves through ``save_brand_text`` like the YAML editor. Empty fields are left out;
    ``gate:`` only when the profile defines one (``gate_defined``), ``fidelity:`` only where it differs from the
    defaults. Comments of a file it replaces are not kept."""
    import yaml

    data: dict = {"name": profile.name}
    if profile.title and profile.title != profile.name:
        data["title"] = profile.title
    for key in ("trigger", "logo_text"):
        if getattr(profile, key):
            data[key] = getattr(profile, key)
    if profile.loras:
        data["loras"] = [{"name": lora.name, "scale": lora.scale} for lora in profile.loras]
    if profile.palette:
        data["palette"] = dict(profile.palette)
    for key in ("required_phrases", "forbidden_terms"):
        if getattr(profile, key):
            data[key] = list(getattr(profile, key))
    if profile.negative:
        data["negative"] = profile.negative
    if profile.gate_defined:
        data["gate"] = {"clip_threshold": float(profile.clip_threshold), "max_attempts": int(profile.max_attempts)}
    fidelity = {k: v for k, v in profile.fidelity_limits.items() if v != FIDELITY_KEYS[k][2]}
    if fidelity:
        data["fidelity"] = fidelity
    if profile.product_template:
        data["product_template"] = profile.product_template
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
