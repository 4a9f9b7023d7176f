"""Garment masks for product-fidelity metrics: which pixels of a product shot (or a generated image) are the garment.

Two paths, one result (``GarmentMask``: a boolean mask, a soft alpha in 0..1, and where it came from):

    m = garment_mask(image)                          # default: background-distance matting (offline, no weights)
    m = garment_mask(image, segmenter=seg)           # a segmentation model (workbench.models.segmenter.load_segmenter)
    crop = masked_crop(image, m)                     # garment on white, cropped to its box, padded square
    shape_iou(ref_mask.mask, gen_mask.mask)          # "did the object change shape?" after aligning the boxes

Matting, for product shots on white or plain backgrounds:
1. the background colour is the median Lab colour of a border strip (2% of the short side, at least 2 px);
2. each pixel's distance to it is the Euclidean distance in CIELAB (CIE76 ΔE, cheap per pixel); the threshold is
   ``MIN_DISTANCE`` ΔE, raised to 4 x the border's own spread (MAD) when the background is noisy or shaded;
3. clean-up: an opening removes specks, enclosed holes smaller than ``HOLE_FRACTION`` of the object are filled (a
   white chest print is part of the shirt, up to a quarter of its area; a larger enclosed opening, such as a bag's
   handle, stays open), and
   only components of at least ``COMPONENT_FRACTION`` of the largest are kept (a pair of shoes is two components);
4. the soft alpha is the boolean mask refined by a guided filter (He et al., 2010) with the image's lightness as the
   guide, so edges follow the garment's real outline at sub-pixel softness.

Known limits: a garment of the background's own colour (a white shirt on white) has no distance to threshold; use
the segmentation path for those. Shadows darker than the threshold count as garment (product shots usually keep
them faint).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

WORK_PX = 512  # matting runs at most at this long side; the mask is resized back to the image
MIN_DISTANCE = 8.0  # ΔE (CIE76) from the background colour that counts as foreground
NOISE_FACTOR = 4.0  # ... or this many MADs of the border's own distances, whichever is larger
HOLE_FRACTION = 0.25  # enclosed background-coloured holes smaller than this share of the object are filled
COMPONENT_FRACTION = 0.10  # components smaller than this share of the largest one are dropped
GUIDED_RADIUS = 3  # px at working resolution
GUIDED_EPS = 1e-3


class Segmenter(Protocol):
    """What ``garment_mask`` needs from a segmentation model: an alpha (H, W) in 0..1 for one image."""

    ref: str

    def __call__(self, image: Image.Image) -> np.ndarray: ...


@dataclass(frozen=True)
class GarmentMask:
    mask: np.ndarray  # bool (H, W), the image's size
    alpha: np.ndarray  # float32 (H, W) in 0..1, soft edges
    source: str  # "matting" or "segmenter:<model ref>"
    background_lab: tuple[float, float, float] | None = None  # matting only: the estimated background colour

    @property
    def area(self) -> float:
        return float(self.mask.mean())

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom), right/bottom exclusive; None for an empty mask."""
        return mask_bbox(self.mask)


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb.astype(np.float64) / 255.0)


def _working_rgb(image: Image.Image) -> np.ndarray:
    im = image.convert("RGB")
    scale = WORK_PX / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)
    return np.asarray(im)


def _border(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    b = max(2, round(0.02 * min(h, w)))
    return np.concatenate([arr[:b].reshape(-1, arr.shape[-1]), arr[-b:].reshape(-1, arr.shape[-1]),
                           arr[:, :b].reshape(-1, arr.shape[-1]), arr[:, -b:].reshape(-1, arr.shape[-1])])


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = GUIDED_RADIUS,
                  eps: float = GUIDED_EPS) -> np.ndarray:
    """He, Sun and Tang's guided filter (grey guide), box windows of (2r+1)²: edge-aware smoothing of ``src``."""
    from scipy.ndimage import uniform_filter

    size = 2 * radius + 1
    def mean(x: np.ndarray) -> np.ndarray:
        return uniform_filter(x, size=size, mode="reflect")

    mi, mp = mean(guide), mean(src)
    var = mean(guide * guide) - mi * mi
    cov = mean(guide * src) - mi * mp
    a = cov / (var + eps)
    b = mp - a * mi
    return mean(a) * guide + mean(b)


def _clean(fg: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.morphology import disk, remove_small_holes

    fg = ndi.binary_opening(fg, structure=disk(1))
    labels, n = ndi.label(fg)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= COMPONENT_FRACTION * sizes.max()) + 1
    fg = np.isin(labels, keep)
    return remove_small_holes(fg, max_size=max(1, int(HOLE_FRACTION * fg.sum())))


def matting_mask(image: Image.Image) -> GarmentMask:
    """Background-distance matting (see the module docstring) for a product shot on a plain background."""
    rgb = _working_rgb(image)
    lab = _lab(rgb)
    bg = np.median(_border(lab), axis=0)
    dist = np.linalg.norm(lab - bg, axis=-1)
    border_d = _border(dist[..., None]).ravel()
    spread = float(np.median(np.abs(border_d - np.median(border_d)))) * 1.4826
    fg = _clean(dist > max(MIN_DISTANCE, float(np.median(border_d)) + NOISE_FACTOR * spread))
    alpha = np.clip(guided_filter(lab[..., 0] / 100.0, fg.astype(np.float64)), 0.0, 1.0)
    if rgb.shape[:2] != (image.height, image.width):
        alpha = np.asarray(Image.fromarray(alpha.astype(np.float32), mode="F")
                           .resize(image.size, Image.Resampling.BILINEAR))
        fg = np.asarray(Image.fromarray(fg.astype(np.uint8) * 255).resize(image.size, Image.Resampling.NEAREST)) > 127
    return GarmentMask(mask=fg, alpha=alpha.astype(np.float32), source="matting",
                       background_lab=tuple(float(v) for v in bg))


def segmenter_mask(image: Image.Image, segmenter: Segmenter, threshold: float = 0.5) -> GarmentMask:
    """A mask from a segmentation model's alpha (largest components kept, small holes filled, like matting)."""
    alpha = np.asarray(segmenter(image.convert("RGB")), dtype=np.float32)
    if alpha.shape != (image.height, image.width):
        raise ValueError(f"segmenter {segmenter.ref!r} returned an alpha of shape {alpha.shape} for a "
                         f"{image.width}x{image.height} image; it must return (height, width)")
    return GarmentMask(mask=_clean(alpha > threshold), alpha=np.clip(alpha, 0, 1), source=f"segmenter:{segmenter.ref}")


def garment_mask(image: Image.Image, segmenter: Segmenter | None = None) -> GarmentMask:
    """The garment's mask: the segmentation model when one is given, else matting. Raises ValueError when nothing
    stands out from the background (an empty mask), naming the likely cause."""
    m = segmenter_mask(image, segmenter) if segmenter is not None else matting_mask(image)
    if not m.mask.any():
        raise ValueError(f"no garment found in a {image.width}x{image.height} image ({m.source}): the image is "
                         "plain or the garment has the background's colour; use a segmentation model "
                         "(settings.models.segmenter) for such shots")
    return m


# -- using a mask ---------------------------------------------------------------------------------------------------

def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _square_box(box: tuple[int, int, int, int], pad: float) -> tuple[int, int, int, int]:
    """The box grown by ``pad`` of its long side and made square around its centre (may leave the image)."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * (1 + 2 * pad)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = max(side / 2, 0.5)
    return (int(np.floor(cx - half)), int(np.floor(cy - half)), int(np.ceil(cx + half)), int(np.ceil(cy + half)))


def masked_crop(image: Image.Image, mask: GarmentMask, fill: tuple[int, int, int] = (255, 255, 255),
                pad: float = 0.05) -> Image.Image:
    """The garment alone: composited over ``fill`` with its soft alpha, cropped to a square around its box (``pad``
    of the long side as margin), so embeddings see the product, not the scene or the framing."""
    box = mask.bbox
    if box is None:
        raise ValueError("the mask is empty: there is no garment to crop")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    a = mask.alpha[..., None]
    comp = rgb * a + np.asarray(fill, dtype=np.float32) * (1 - a)
    out = Image.fromarray(np.clip(np.rint(comp), 0, 255).astype(np.uint8))
    sq = _square_box(box, pad)
    canvas = Image.new("RGB", (sq[2] - sq[0], sq[3] - sq[1]), fill)
    canvas.paste(out.crop((max(sq[0], 0), max(sq[1], 0), min(sq[2], image.width), min(sq[3], image.height))),
                 (max(-sq[0], 0), max(-sq[1], 0)))
    return canvas


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 for two empty masks)."""
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}; align them first (shape_iou does)")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


SHAPE_PX = 128  # the common frame shape_iou compares silhouettes in


def _frame(mask: np.ndarray, align: str) -> np.ndarray:
    if align == "canvas":
        box = (0, 0, mask.shape[1], mask.shape[0])
    else:
        box = _square_box(mask_bbox(mask) or (0, 0, mask.shape[1], mask.shape[0]), pad=0.0)
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(im.crop(box).resize((SHAPE_PX, SHAPE_PX), Image.Resampling.BILINEAR)) >= 128


def shape_iou(reference: np.ndarray, generated: np.ndarray, align: str = "bbox") -> float:
    """Mask IoU of two silhouettes after alignment: ``"bbox"`` puts each mask's box, made square around its centre,
    on a common 128² frame (position and scale no longer count; a changed outline or aspect ratio does);
    ``"canvas"`` only resizes both images to the frame (the product is meant to stay where it was, as in a
    composited scene). 1 = same shape; an added pocket or a longer sleeve lowers it."""
    if align not in ("bbox", "canvas"):
        raise ValueError(f"align={align!r}: use 'bbox' or 'canvas'")
    return mask_iou(_frame(np.asarray(reference, bool), align), _frame(np.asarray(generated, bool), align))


def describe(mask: GarmentMask) -> dict[str, Any]:
    """A JSON-ready summary for provenance: where the mask came from, its area and box."""
    return {"source": mask.source, "area": round(mask.area, 4), "bbox": mask.bbox,
            "background_lab": [round(v, 2) for v in mask.background_lab] if mask.background_lab else None}
