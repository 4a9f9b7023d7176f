"""Generate for a product (SKU): its prompt, its LoRA, the SKU in every image's provenance and DB row, and the
product-fidelity check of each image against the product's reference photos.

    pp = product_prompt("AUR-1001", brand="aurelo")   # ProductPrompt: prompt, negative, template, token, lora
    out = generate_for_product("mia", assembled, "AUR-1001", GenerationParams(prompt=pp.prompt, ...),
                               batch="aur-1001", brand="aurelo")       # images + one FidelityCheck per image
    check_fidelity(actor, generation_id, "AUR-1001", image, brand="aurelo")   # one image made elsewhere
    workbench generate run --product AUR-1001 --brand aurelo

The prompt: "a photo of <token> <noun>" when a finished LoRA knows the product (``products.loras_for``: the newest
one, preselected at scale 1.0; the token is the one it was trained with), else "a photo of <colour> <noun>, <name>";
then the product template (the brand profile's ``product_template``, else the template named after the category:
"Jackets" -> ``jacket``), its slots filled from the product (``color`` from its colour, ``item``/``style`` from its
category noun, any slot named like one of its attributes from that attribute; the others keep their defaults), the
brand's trigger token and the template's default scene. Negative: the template's, the scene's and the brand's.

Fidelity: ``check_fidelity`` scores an image against the product's photos (``workbench.fidelity``; missing
DINOv2/CLIP weights leave those metrics "unavailable", ΔE and shape still count), applies the brand's limits
(``fidelity:`` in the profile; ΔE 5 by default) and stores scores and verdict on the image's product link
(``products.record_fidelity``): the review queue holds an image that failed, with the reason.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from workbench.auth import Actor
from workbench.generate.pipeline import AssembledPipeline, GenerationError, LoraSpec
from workbench.generate.sample import GeneratedImage, GenerationParams, generate
from workbench.products import ProductError, get_product, loras_for, record_fidelity
from workbench.products.fields import slug
from workbench.products.training import noun
from workbench.prompts.syntax import Alternatives, SlotRef, tidy
from workbench.settings import Settings

# category noun -> shipped template, where the names differ
TEMPLATE_ALIASES = {"tshirt": "t-shirt", "tee": "t-shirt", "shirt": "t-shirt", "top": "t-shirt",
                    "sweatshirt": "hoodie", "coat": "jacket", "blazer": "jacket", "trousers": "bottoms",
                    "jeans": "bottoms", "pants": "bottoms", "shorts": "bottoms", "skirt": "bottoms", "shoe": "sneakers",
                    "sneaker": "sneakers", "cap": "accessories", "hat": "accessories", "bag": "accessories",
                    "scarf": "accessories", "belt": "accessories"}
NOUN_SLOTS = ("item", "style", "garment", "product")  # slots that name the kind of garment: the product's noun


@dataclass(frozen=True)
class ProductPrompt:
    sku: str
    prompt: str
    negative: str
    template: str  # "" when no template fits the product
    brand: str  # the brand profile used ("" for none)
    token: str | None  # the instance token, when a finished LoRA knows the product
    lora: LoraSpec | None  # that LoRA at scale 1.0
    recommended: dict[str, Any] = field(default_factory=dict)  # width/height/steps/guidance the template suggests


@dataclass(frozen=True)
class FidelityCheck:
    generation_id: int
    sku: str
    result: Any  # workbench.fidelity.FidelityResult, None when the product has no photos
    passed: bool | None
    reason: str


@dataclass
class ProductGeneration:
    images: list[GeneratedImage]
    checks: list[FidelityCheck]


def product_lora(sku: str, settings: Settings | None = None) -> tuple[LoraSpec, str] | None:
    """(the newest finished LoRA that knows ``sku`` at scale 1.0, its token), or None."""
    for link in loras_for(sku, settings=settings):
        if link.lora_path and link.status == "done":
            return LoraSpec(link.lora_path, 1.0, f"product-{slug(sku)}-run{link.run_id}"), link.token
    return None


def category_template(library: Any, category: str) -> str:
    """The product template named after ``category`` ("Jackets" -> "jacket", "Tshirts" -> "t-shirt"), or ""."""
    n = slug(noun(category))
    for name in (n, TEMPLATE_ALIASES.get(n.replace("-", ""), ""), slug(category)):
        if name and name in library.templates:
            return name
    return ""


def brand_for(product: Any, library: Any) -> str:
    """The brand profile whose name is the product's brand ("AURELO" -> "aurelo"), or ""."""
    name = slug(product.brand or "")
    return name if name in library.brands else ""


def _fill(template: Any, values: Mapping[str, str], trigger: str, scene_text: str) -> str:
    out = []
    for seg in template.segments:
        if isinstance(seg, SlotRef):
            if seg.name == "trigger":
                out.append(trigger)
            elif seg.name == "scene":
                out.append(scene_text)
            else:
                out.append(values.get(seg.name) or template.slots[seg.name].default)
        elif isinstance(seg, Alternatives):
            out.append(seg.options[0])
        else:
            out.append(seg)
    text = tidy("".join(out))
    return tidy(text.replace("{", "").replace("}", ""))  # a default with inline alternatives: first spelled out


def product_prompt(sku: str, *, brand: str | None = None, template: str | None = None, scene: str | None = None,
                   library: Any = None, settings: Settings | None = None) -> ProductPrompt:
    """The prompt for ``sku`` (see the module docstring). ``brand``: a profile name (default: the one named like
    the product's brand); ``template``/``scene``: override the profile's / category's template and its scene."""
    from workbench.prompts.expand import merge_negatives
    from workbench.prompts.library import load_library
    from workbench.prompts.syntax import alternatives

    product = get_product(sku, settings=settings)
    library = library or load_library(settings=settings)
    brand = brand if brand is not None else brand_for(product, library)
    profile = library.brand(brand) if brand else None  # an unknown name: PromptError naming it
    lora = product_lora(sku, settings=settings)
    kind = noun(product.category)
    colour = " ".join(product.colour.lower().split())
    if lora:
        subject = f"a photo of {lora[1]} {kind}"
    else:
        subject = tidy(f"a photo of {colour} {kind}" + (f", {product.name}" if product.name else ""))
    name = template or (profile.product_template if profile else "") or category_template(library, product.category)
    negatives = [profile.negative if profile else ""]
    recommended: dict[str, Any] = {}
    body = ""
    if name:
        tpl = library.template(name)
        scene_name = scene or tpl.default_scene
        scene_tpl = library.scene(scene_name) if scene_name and tpl.uses_scene else None
        scene_text = alternatives(scene_tpl.text)[0] if scene_tpl else ""
        values = {k: str(v) for k, v in product.attributes.items() if k in tpl.slots and str(v).strip()}
        values.update({k: kind for k in NOUN_SLOTS if k in tpl.slots})
        if colour:
            values.update({k: colour for k in ("color", "colour") if k in tpl.slots})
        body = _fill(tpl, values, profile.trigger if profile else "", scene_text)
        negatives = [tpl.negative, scene_tpl.negative if scene_tpl else "", *negatives]
        recommended = tpl.recommended.merged(scene_tpl.recommended if scene_tpl else None).as_dict()
    elif profile and profile.trigger:
        body = profile.trigger
    return ProductPrompt(sku=product.sku, prompt=tidy(f"{subject}, {body}"), negative=merge_negatives(*negatives),
                         template=name, brand=brand or "", token=lora[1] if lora else None,
                         lora=lora[0] if lora else None, recommended=recommended)


# -- fidelity -------------------------------------------------------------------------------------------------------

def reference_photos(sku: str, settings: Settings | None = None) -> list[Image.Image]:
    """The product's reference photos as RGB images (files that went missing are skipped)."""
    out = []
    for path in get_product(sku, settings=settings).images:
        if path.is_file():
            with Image.open(path) as im:
                out.append(im.convert("RGB"))
    return out


def brand_limits(brand: str | None, settings: Settings | None = None) -> dict[str, float | None]:
    """The brand profile's fidelity limits (``fidelity_gate`` keywords); the defaults without a profile."""
    from workbench.fidelity import DEFAULT_MAX_DELTA_E

    if brand:
        from workbench.prompts.library import load_library

        return load_library(settings=settings).brand(brand).fidelity_limits
    return {"max_delta_e": DEFAULT_MAX_DELTA_E, "min_dino": None, "min_shape_iou": None}


def _not_checked(actor: Actor, generation_ids: Sequence[int], sku: str, reason: str,
                 settings: Settings | None) -> list[FidelityCheck]:
    for g in generation_ids:
        record_fidelity(actor, g, sku, None, None, reason, settings=settings)
    return [FidelityCheck(g, sku, None, None, reason) for g in generation_ids]


def check_fidelity(actor: Actor, generation_ids: int | Sequence[int], sku: str,
                   images: Image.Image | Sequence[Image.Image], *, brand: str | None = None,
                   models: Mapping[str, Any] | None = None,
                   settings: Settings | None = None) -> list[FidelityCheck]:
    """Score each image against ``sku``'s reference photos (prepared once), apply the brand's limits and store
    scores and verdict on the image's "generated_for" link (needs ``generate``). ``models``:
    ``fidelity.load_fidelity_models()``, loaded here when None. A product without usable photos: each image is
    recorded as not checked, with the reason."""
    from workbench.fidelity import fidelity_gate, fidelity_scores, load_fidelity_models, prepare_references

    ids = [generation_ids] if isinstance(generation_ids, int) else list(generation_ids)
    ims = [images] if isinstance(images, Image.Image) else list(images)
    if len(ids) != len(ims):
        raise GenerationError(f"{len(ids)} generation id(s) for {len(ims)} image(s)")
    limits = brand_limits(brand, settings)
    photos = reference_photos(sku, settings=settings)
    if not photos:
        return _not_checked(actor, ids, sku, f"not checked: {sku} has no reference photos (link 1-5 photos of it "
                                             "to compare with)", settings)
    models = models if models is not None else load_fidelity_models(settings)
    try:
        reference = prepare_references(photos, models=models)
    except ValueError as exc:
        return _not_checked(actor, ids, sku, f"not checked: {sku}'s reference photos: {exc}", settings)
    out = []
    for gid, image in zip(ids, ims):
        result = fidelity_scores(image, reference, models=models)
        verdict = fidelity_gate(result, sku, **limits)
        record_fidelity(actor, gid, sku, result, verdict.passed, verdict.reason, settings=settings)
        out.append(FidelityCheck(gid, sku, result, verdict.passed, verdict.reason))
    return out


def generate_for_product(actor: Actor, assembled: AssembledPipeline, sku: str, params: GenerationParams,
                         batch: str = "products",
                         *, brand: str | None = None, models: Mapping[str, Any] | None = None,
                         check: bool = True, settings: Settings | None = None) -> ProductGeneration:
    """Generate ``params`` for ``sku`` (its PNG provenance and DB link carry the SKU), then check each image's
    fidelity (``check``). The prompt is the caller's: ``product_prompt`` builds the usual one."""
    try:
        get_product(sku, settings=settings)
    except ProductError as exc:
        raise GenerationError(str(exc)) from None
    params = replace(params, products=tuple(dict.fromkeys((*params.products, sku))))
    images = generate(actor, assembled, params, batch, settings=settings)
    recorded = [img for img in images if img.generation_id is not None]
    checks = check_fidelity(actor, [img.generation_id for img in recorded], sku, [img.image for img in recorded],
                            brand=brand, models=models, settings=settings) if check and recorded else []
    return ProductGeneration(images, checks)
