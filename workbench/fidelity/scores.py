"""Product fidelity: does the garment in a generated image look like the product's reference photos?

    models = load_fidelity_models()                           # what this machine has; missing ones stay "unavailable"
    ref = prepare_references(product_photos, models=models)   # once per SKU: masks, colour, embeddings
    r = fidelity_scores(generated, ref, models=models)        # FidelityResult (a list of PIL photos works too)
    r.delta_e, r.delta_e_reading                              # 7.9, "a different colour (ΔE > 5)"
    r.unavailable                                             # {"dino": "unavailable: facebook/dinov2-base — ..."}

Every score is restricted to the garment: each image gets a mask (``workbench.fidelity.masks``: matting on plain
backgrounds by default, a segmentation model when ``models["segmenter"]`` holds one), and the embeddings see the
masked crop (the garment composited over white, cropped square around its box).

- ``dino``: cosine of DINOv2 CLS embeddings of the crops, averaged over the reference photos (DreamBooth's DINO
  score: the mean pairwise similarity between generated and real images of the subject).
- ``clip_i``: the same with open_clip image embeddings (the scorer in settings; DreamBooth's CLIP-I).
- ``delta_e``: CIEDE2000 (scikit-image ``deltaE_ciede2000``, kL = kC = kH = 1) between the garment's dominant Lab
  colour in the references and in the image. Dominant colour = the per-channel median of the largest of 3 k-means
  clusters (scipy ``kmeans2``, k-means++ with a fixed seed) of the garment's interior pixels in CIELAB (alpha >= 0.9,
  so edge pixels blended with the background do not count; at most 20,000 pixels, sampled with a fixed seed). On a
  shirt with a print, the largest cluster is the cloth, not the print; the median is robust to shading highlights.
- ``shape_iou``: mask IoU between the image's garment silhouette and the best-matching reference silhouette, after
  aligning their boxes (``masks.shape_iou``): low means the object changed shape.

A metric whose model is missing is ``None`` with ``unavailable[metric] = "unavailable: <model> — run ..."``, never a
number; numbers from tiny demo models carry ``demo = True``. CLIP embeddings are computed here with open_clip's
``encode_image``; once ``workbench/models/clip.py`` (one shared CLIP cosine) lands, ``clip_image_embeddings`` should
call it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from workbench.fidelity.masks import GarmentMask, garment_mask, masked_crop, shape_iou

METRICS = ("dino", "clip_i", "delta_e", "shape_iou")  # per-image fidelity metrics (their cards: evaluate.product_cards)
DELTA_E_NOTICEABLE = 2.0  # below: not noticeable to most observers
DELTA_E_DIFFERENT = 5.0  # above: reads as a different colour
KMEANS_K = 3
INTERIOR_ALPHA = 0.9
MAX_COLOUR_PIXELS = 20_000
MODEL_KEYS = ("dinov2", "clip_scorer", "segmenter")  # Settings.models fields fidelity uses


def delta_e_reading(de: float) -> str:
    """The usual reading of a CIEDE2000 difference."""
    if de < DELTA_E_NOTICEABLE:
        return "not noticeable (ΔE < 2)"
    if de <= DELTA_E_DIFFERENT:
        return "noticeable (ΔE 2-5)"
    return "a different colour (ΔE > 5)"


def ciede2000(lab1: Sequence[float] | np.ndarray, lab2: Sequence[float] | np.ndarray) -> np.ndarray | float:
    """CIEDE2000 between Lab colours (..., 3), via scikit-image; a float for two single colours."""
    from skimage.color import deltaE_ciede2000

    out = deltaE_ciede2000(np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def garment_lab_pixels(image: Image.Image, mask: GarmentMask) -> np.ndarray:
    """(n, 3) CIELAB values of the garment's interior pixels (alpha >= 0.9; all mask pixels if none are that opaque)."""
    from skimage.color import rgb2lab

    inside = mask.alpha >= INTERIOR_ALPHA
    inside = inside if inside.any() else mask.mask
    rgb = np.asarray(image.convert("RGB"))[inside]
    return rgb2lab(rgb[None].astype(np.float64) / 255.0)[0]


def dominant_lab(pixels: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """The per-channel median of the largest of ``KMEANS_K`` k-means clusters of Lab pixels (see the module doc)."""
    from scipy.cluster.vq import kmeans2

    if len(pixels) == 0:
        raise ValueError("no garment pixels to take a colour from")
    rng = np.random.default_rng(seed)
    if len(pixels) > MAX_COLOUR_PIXELS:
        pixels = pixels[rng.choice(len(pixels), MAX_COLOUR_PIXELS, replace=False)]
    k = min(KMEANS_K, len(np.unique(np.round(pixels, 1), axis=0)))
    if k <= 1:
        return tuple(float(v) for v in np.median(pixels, axis=0))  # type: ignore[return-value]
    _, labels = kmeans2(pixels, k, minit="++", seed=seed)
    biggest = np.bincount(labels, minlength=k).argmax()
    return tuple(float(v) for v in np.median(pixels[labels == biggest], axis=0))  # type: ignore[return-value]


def measure_lab(photos: Sequence[Image.Image], segmenter: Any = None) -> tuple[float, float, float]:
    """The garment's dominant CIE Lab colour pooled over a product's photos (each masked, interior pixels pooled,
    then ``dominant_lab``): what ``products.measure_colour`` stores. A photo with no garment found is skipped;
    none left is a ValueError naming how many were tried."""
    pixels = []
    for im in photos:
        try:
            pixels.append(garment_lab_pixels(im, garment_mask(im, segmenter=segmenter)))
        except ValueError:
            continue
    if not pixels:
        raise ValueError(f"no garment found in any of the {len(photos)} photo(s)")
    return dominant_lab(np.concatenate(pixels))


@dataclass
class ClipImages:
    """An open_clip model's image side, with where it came from (``demo``: a tiny-kit model)."""

    model: Any
    preprocess: Any
    ref: str = ""
    demo: bool = False


def clip_image_embeddings(clip: Any, images: Sequence[Image.Image]):
    """(n, d) float64 L2-normalised open_clip image embeddings. ``clip`` is a ClipImages, load_open_clip's (model,
    preprocess, tokenizer) or anything with ``image_embeddings`` (metrics.ClipScore). To be replaced by
    workbench/models/clip.py (one shared CLIP cosine) after the merge."""
    import torch

    if hasattr(clip, "image_embeddings"):
        return clip.image_embeddings(images).double()
    model, preprocess = (clip.model, clip.preprocess) if isinstance(clip, ClipImages) else (clip[0], clip[1])
    device = next(model.parameters()).device
    with torch.no_grad():
        pixels = torch.stack([preprocess(im.convert("RGB")) for im in images]).to(device)
        emb = model.encode_image(pixels).double().cpu()
    return emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# -- models -------------------------------------------------------------------------------------------------------

def unavailable_text(exc: Exception) -> str:
    ref, reason, remedy = (getattr(exc, a, "") for a in ("ref", "reason", "remedy"))
    return f"unavailable: {ref} — {reason}. {remedy}".strip() if ref else f"unavailable: {exc}"


def load_fidelity_models(settings: Any = None, device: str = "cpu", segmenter: bool = False,
                         overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The models fidelity uses, keyed by their Settings.models field: a loaded model, or the ModelUnavailable that
    says why not (``fidelity_scores`` turns it into "unavailable: ..."). ``overrides`` (field -> object) injects
    models (tests pass the tiny kit's); the segmenter is loaded only when asked (matting is the default)."""
    from workbench.models.dinov2 import load_dinov2
    from workbench.models.segmenter import load_segmenter
    from workbench.models.sources import ModelUnavailable, is_demo_model, load_open_clip
    from workbench.settings import get_settings

    refs = (settings or get_settings()).models
    loaders = {"dinov2": lambda: load_dinov2(refs.dinov2, device),
               "clip_scorer": lambda: ClipImages(*load_open_clip(refs.clip_scorer, device)[:2], ref=refs.clip_scorer,
                                                 demo=is_demo_model(refs.clip_scorer))}
    if segmenter:
        loaders["segmenter"] = lambda: load_segmenter(refs.segmenter, device)
    out: dict[str, Any] = dict(overrides or {})
    for key, load in loaders.items():
        if key not in out:
            try:
                out[key] = load()
            except ModelUnavailable as exc:
                out[key] = exc
    return out


def _usable(models: Mapping[str, Any], key: str) -> tuple[Any, str | None]:
    """(model, None) or (None, "unavailable: ...")."""
    m = models.get(key)
    if m is None:
        return None, f"unavailable: no {key} model was given (settings.models.{key}; `workbench models pull {key}`)"
    if isinstance(m, Exception):
        return None, unavailable_text(m)
    return m, None


def _is_demo(m: Any) -> bool:
    return bool(getattr(m, "demo", False))


# -- references and scores ----------------------------------------------------------------------------------------

@dataclass
class ProductReference:
    """A product's reference photos, prepared once: masks, dominant colour, crop embeddings."""

    masks: list[GarmentMask]
    lab: tuple[float, float, float]
    dino: Any = None  # (n, d) unit embeddings or None
    clip: Any = None
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.masks)


def _embed(models: Mapping[str, Any], crops: Sequence[Image.Image]) -> tuple[Any, Any, dict[str, str]]:
    unavailable: dict[str, str] = {}
    dino, why = _usable(models, "dinov2")
    dino_emb = dino.embeddings(crops) if dino is not None else None
    if why:
        unavailable["dino"] = why
    clip, why = _usable(models, "clip_scorer")
    clip_emb = clip_image_embeddings(clip, crops) if clip is not None else None
    if why:
        unavailable["clip_i"] = why
    return dino_emb, clip_emb, unavailable


def _segmenter(models: Mapping[str, Any]) -> Any:
    seg = models.get("segmenter")
    return None if seg is None or isinstance(seg, Exception) else seg


def prepare_references(references: Sequence[Image.Image], *, models: Mapping[str, Any]) -> ProductReference:
    """Masks, the pooled dominant colour and the crop embeddings of a product's reference photos."""
    if not references:
        raise ValueError("the product has no reference photos: add 1-5 photos of it to its dataset items")
    seg = _segmenter(models)
    masks = [garment_mask(im, segmenter=seg) for im in references]
    pixels = np.concatenate([garment_lab_pixels(im, m) for im, m in zip(references, masks)])
    crops = [masked_crop(im, m) for im, m in zip(references, masks)]
    dino, clip, unavailable = _embed(models, crops)
    return ProductReference(masks=masks, lab=dominant_lab(pixels), dino=dino, clip=clip, unavailable=unavailable)


@dataclass(frozen=True)
class FidelityResult:
    dino: float | None
    clip_i: float | None
    delta_e: float | None
    delta_e_reading: str | None
    shape_iou: float | None
    mask_source: str
    generated_lab: tuple[float, float, float] | None = None
    reference_lab: tuple[float, float, float] | None = None
    n_references: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> "unavailable: <reason>"
    demo: bool = False  # a tiny demo model made one of the numbers

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def fidelity_scores(generated: Image.Image, references: Sequence[Image.Image] | ProductReference, *,
                    models: Mapping[str, Any], align: str = "bbox") -> FidelityResult:
    """DINO, CLIP-I, colour ΔE and shape IoU of the garment in ``generated`` against the product's references
    (photos, or a ProductReference prepared once per SKU). See the module docstring for each definition."""
    ref = references if isinstance(references, ProductReference) else prepare_references(references, models=models)
    seg = _segmenter(models)
    source = "matting" if seg is None else f"segmenter:{seg.ref}"
    try:
        mask = garment_mask(generated, segmenter=seg)
    except ValueError as exc:
        why = f"unavailable: {exc}"
        return FidelityResult(None, None, None, None, None, source, reference_lab=ref.lab, n_references=ref.n,
                              unavailable={k: why for k in METRICS})
    lab = dominant_lab(garment_lab_pixels(generated, mask))
    de = ciede2000(lab, ref.lab)
    iou = max(shape_iou(m.mask, mask.mask, align=align) for m in ref.masks)
    crop = masked_crop(generated, mask)
    unavailable = dict(ref.unavailable)
    scores: dict[str, float | None] = {}
    for metric, key, ref_emb in (("dino", "dinov2", ref.dino), ("clip_i", "clip_scorer", ref.clip)):
        model, why = _usable(models, key)
        if model is not None and ref_emb is not None:
            emb = model.embeddings([crop]) if key == "dinov2" else clip_image_embeddings(model, [crop])
            scores[metric] = float((ref_emb @ emb[0]).mean())  # mean over the references (DreamBooth)
        else:
            scores[metric] = None
            unavailable.setdefault(metric, why or f"unavailable: the references were prepared without {key}")
    demo = any(_is_demo(models[k]) for k in MODEL_KEYS if k in models and not isinstance(models[k], Exception))
    return FidelityResult(dino=scores["dino"], clip_i=scores["clip_i"], delta_e=de, delta_e_reading=delta_e_reading(de),
                          shape_iou=iou, mask_source=mask.source, generated_lab=lab, reference_lab=ref.lab,
                          n_references=ref.n, unavailable=unavailable, demo=demo)
