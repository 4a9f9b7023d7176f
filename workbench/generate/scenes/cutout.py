"""Product cut-outs: which pixels of a product photo are the product, stored with the photo and correctable by hand.

    c = cutout(photo)                                     # matting (white/plain backgrounds), no weights
    c = cutout(photo, segmenter=load_segmenter(ref))      # a segmentation model (SegFormer, BiRefNet/RMBG: see below)
    c.mask                                                # bool: alpha >= c.threshold
    saved = product_cutout("mia", "AUR-1001")             # the SKU's first photo: stored mask, else made and stored
    save_cutout("mia", item_id, c.alpha, c.source, threshold=0.35)   # the page's threshold slider

The mask is ``workbench.fidelity.masks``' (background-distance matting with guided-filter edges, or a segmenter's
alpha); a segmenter's alpha gets the same edge refinement here (a guided filter with the photo's lightness as guide,
so the edge follows the garment's real outline). Models: ``settings.models.segmenter`` (SegFormer clothes parsing,
a class transformers ships) or ``settings.models.cutout`` (``ZhengPeng7/BiRefNet``: dichotomous segmentation, whose
architecture is Python code in its repo, run only with ``trust_remote_code=True``; ``briaai/RMBG-2.0`` is the same
architecture, gated and non-commercial). ``workbench models pull cutout`` fetches it.

Stored: ``item_masks`` (one row per item, ``tables.py``) and the alpha as an 8-bit PNG under
``workspace/masks/items/``. The hard mask is ``alpha >= threshold``: raising the threshold trims a halo, lowering
it brings back a pale edge the model was unsure about.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.auth import Actor, require
from workbench.db import session_scope, utcnow, write_lock
from workbench.generate.pipeline import GenerationError
from workbench.settings import Settings, get_settings

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Cutout:
    alpha: np.ndarray  # float32 (H, W) in 0..1, soft edges
    source: str  # "matting" or "segmenter:<ref>"
    threshold: float = DEFAULT_THRESHOLD
    item_id: int | None = None
    path: str = ""  # the stored alpha PNG ("" when not stored)
    sha256: str = ""
    edited: bool = False  # the threshold was set by hand

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= self.threshold

    def with_threshold(self, threshold: float) -> Cutout:
        from dataclasses import replace

        return replace(self, threshold=check_threshold(threshold), edited=True)

    def describe(self) -> dict[str, Any]:
        """For provenance: where the mask came from and how it was cut."""
        return {"item_id": self.item_id, "path": self.path, "sha256": self.sha256, "source": self.source,
                "threshold": self.threshold, "area": round(float(self.mask.mean()), 4)}


def check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0.01 <= t <= 0.99:
        raise GenerationError(f"mask threshold {t} must be between 0.01 and 0.99")
    return t


def refine_edges(image: Image.Image, mask: np.ndarray) -> np.ndarray:
    """A model's (cleaned, hard) mask refined into a soft alpha with a guided filter, the photo's lightness as guide,
    as matting does: the edge moves to the photo's real outline (a model's alpha is upsampled from its coarser
    output, a few pixels off). Radius: 3 px, or 1/64 of the short side on larger photos."""
    from skimage.color import rgb2lab

    from workbench.fidelity.masks import guided_filter

    lightness = rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)[..., 0] / 100.0
    radius = max(3, round(min(mask.shape) / 64))
    return np.clip(guided_filter(lightness, mask.astype(np.float64), radius=radius), 0.0, 1.0).astype(np.float32)


def cutout(image: Image.Image, segmenter: Any = None, threshold: float = DEFAULT_THRESHOLD) -> Cutout:
    """The product's cut-out of ``image``: matting, or ``segmenter``'s alpha with refined edges. Raises
    GenerationError when nothing stands out (the reason, and what to use instead)."""
    from workbench.fidelity.masks import garment_mask

    try:
        m = garment_mask(image, segmenter=segmenter)
    except ValueError as exc:
        raise GenerationError(str(exc)) from None
    alpha = m.alpha if segmenter is None else refine_edges(image, m.mask)
    if segmenter is None:  # matting's alpha is already guided; keep its hard mask's pixels inside
        alpha = np.where(m.mask, np.maximum(alpha, threshold), np.minimum(alpha, threshold - 1e-3))
    return Cutout(alpha=alpha.astype(np.float32), source=m.source, threshold=check_threshold(threshold))


def load_cutout_model(ref: str | None = None, device: str = "cpu", trust_remote_code: bool = False):
    """The segmentation model for cut-outs (``settings.models.cutout`` by default): a BiRefNet/RMBG-style model
    through transformers' AutoModelForImageSegmentation (its repo code runs only with ``trust_remote_code``), or any
    model ``models.segmenter.load_segmenter`` reads. Raises ModelUnavailable with the remedy."""
    from workbench.models.segmenter import load_segmenter
    from workbench.models.sources import local_path

    ref = ref or get_settings().models.cutout
    setting = next((k for k, v in get_settings().models.model_dump().items() if v == ref), None)
    local_path(ref, setting)  # a missing model names its own `models pull` entry
    return load_segmenter(ref, device=device, trust_remote_code=trust_remote_code)


# -- storage ----------------------------------------------------------------------------------------------------------

def _png(alpha: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def mask_file(item_id: int, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("masks", "items", f"{int(item_id)}.png")


def save_cutout(actor: Actor, item_id: int, alpha: np.ndarray, source: str, threshold: float = DEFAULT_THRESHOLD,
                settings: Settings | None = None) -> Cutout:
    """Store ``alpha`` as the cut-out of item ``item_id`` (replacing any earlier one), with its threshold."""
    from workbench.data.tables import Item
    from workbench.files import write_bytes_atomic
    from workbench.generate.scenes.tables import ItemMask

    who = require(actor, "generate", settings=settings)
    settings = settings or get_settings()
    threshold = check_threshold(threshold)
    data = _png(np.asarray(alpha, dtype=np.float32))
    path = mask_file(item_id, settings)
    with session_scope(settings) as s:
        # One writer at a time: two pages (or a page and a job) storing the first cut-out of one photo both found no
        # row and both inserted it (UNIQUE constraint failed: item_masks.item_id, seen in the browser journey).
        write_lock(s, "item_masks")
        if s.get(Item, int(item_id)) is None:
            raise GenerationError(f"item {item_id} does not exist")
        write_bytes_atomic(path, data)
        row = s.get(ItemMask, int(item_id)) or ItemMask(item_id=int(item_id))
        row.path = str(path.relative_to(settings.workspace_dir))
        row.source, row.threshold = source, threshold
        row.sha256 = hashlib.sha256(data).hexdigest()
        row.updated_by, row.updated_at = who.username, utcnow()
        s.add(row)
    return stored_cutout(item_id, settings=settings)


def set_threshold(actor: Actor, item_id: int, threshold: float, settings: Settings | None = None) -> Cutout:
    """Hand correction: the stored cut-out's hard mask becomes ``alpha >= threshold``."""
    from workbench.generate.scenes.tables import ItemMask

    who = require(actor, "generate", settings=settings)
    with session_scope(settings) as s:
        row = s.get(ItemMask, int(item_id))
        if row is None:
            raise GenerationError(f"item {item_id} has no stored cut-out yet: make one first")
        row.threshold = check_threshold(threshold)
        row.source = row.source if row.source.endswith(" (threshold set by hand)") else \
            f"{row.source} (threshold set by hand)"
        row.updated_by, row.updated_at = who.username, utcnow()
    return stored_cutout(item_id, settings=settings)


def stored_cutout(item_id: int, settings: Settings | None = None) -> Cutout | None:
    """The stored cut-out of an item, or None (none stored, or its file went missing)."""
    from workbench.generate.scenes.tables import ItemMask

    settings = settings or get_settings()
    with session_scope(settings) as s:
        row = s.get(ItemMask, int(item_id))
        if row is None:
            return None
        rel, source, threshold, sha = row.path, row.source, row.threshold, row.sha256
    path = settings.workspace_dir / rel
    if not path.is_file():
        return None
    with Image.open(path) as im:
        alpha = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    return Cutout(alpha=alpha, source=source, threshold=threshold, item_id=int(item_id), path=str(path), sha256=sha,
                  edited=source.endswith("(threshold set by hand)"))


@dataclass(frozen=True)
class ProductPhoto:
    sku: str
    item_id: int
    path: Path
    image: Image.Image
    cutout: Cutout


def product_cutout(actor: Actor, sku: str, item_id: int | None = None, segmenter: Any = None,
                   remake: bool = False, settings: Settings | None = None) -> ProductPhoto:
    """A product photo (``item_id``, default its first) with its cut-out: the stored one, else made (matting or
    ``segmenter``) and stored."""
    from workbench.products import ProductError, get_product

    require(actor, "generate", settings=settings)
    try:
        product = get_product(sku, settings=settings)
    except ProductError as exc:
        raise GenerationError(str(exc)) from None
    pairs = [(i, p) for i, p in zip(product.item_ids, product.images) if p.is_file()]
    if item_id is not None:
        pairs = [(i, p) for i, p in pairs if i == int(item_id)]
        if not pairs:
            raise GenerationError(f"item {item_id} is not a photo of {sku} (its photos: {product.item_ids})")
    if not pairs:
        raise GenerationError(f"{sku} has no photos to cut out: link 1-5 photos of it on the Datasets page")
    iid, path = pairs[0]
    with Image.open(path) as im:
        image = im.convert("RGB")
    c = None if remake else stored_cutout(iid, settings=settings)
    if c is None or c.alpha.shape != (image.height, image.width):
        made = cutout(image, segmenter=segmenter)
        c = save_cutout(actor, iid, made.alpha, made.source, made.threshold, settings=settings)
    return ProductPhoto(sku=product.sku, item_id=iid, path=path, image=image, cutout=c)
