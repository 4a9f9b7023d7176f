"""Placing a cut-out on a canvas and putting the product's own pixels back over a generated scene (pure numpy/PIL).

    placed = place(photo, cutout, 1024, 1024, Placement(scale=0.6, x=0.5, y=0.55))
    init, repaint = placed.init_image(background=(128, 128, 128)), placed.repaint_mask()   # for the inpainting call
    out = composite(generated, placed, shadow=0.45)     # product pixels exact inside placed.mask

- **Placement.** The whole photo is resized by one factor (Lanczos; the alpha bilinear) and pasted so that the
  product's box lands where asked: ``scale`` = the product's long side as a share of the canvas's short side, ``x``,
  ``y`` = its centre as shares of the canvas. Unset: the photo fitted to the canvas, centred (its own framing). The
  product must stay inside the canvas.
- **Composite.** Inside the placed hard mask the output *is* the placed photo (the same resize): max difference 0.
  Outside, a soft edge: ``photo * a + scene * (1 - a)`` where ``a`` is the cut-out's soft alpha there (the guided
  filter's sub-pixel edge, at most the threshold), so edges are anti-aliased without a halo. The contact shadow darkens
  only the generated pixels outside the mask.
- **Contact shadow.** A soft ellipse under the product's bottom edge (as wide as the product's base, 6% of its height
  tall, Gaussian blur 4% of its height) plus a wider, fainter ambient one, multiplied into the scene at ``shadow``
  opacity (0 = none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from workbench.generate.pipeline import GenerationError


@dataclass(frozen=True)
class Placement:
    scale: float | None = None  # product long side / canvas short side; None: the photo's own framing
    x: float = 0.5  # product centre, share of the canvas width
    y: float = 0.5  # ... and height

    def check(self) -> None:
        if self.scale is not None and not 0.05 <= self.scale <= 1.0:
            raise GenerationError(f"placement scale {self.scale} must be between 0.05 and 1 (the product's long side "
                                  "as a share of the canvas's short side)")
        for name in ("x", "y"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GenerationError(f"placement {name} {getattr(self, name)} must be between 0 and 1")

    def as_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "x": self.x, "y": self.y}


@dataclass
class Placed:
    """The photo placed on the canvas: its pixels, its soft alpha and hard mask (canvas size), where it went."""

    source: np.ndarray  # uint8 (H, W, 3): the resized photo on the canvas (0 where the photo does not reach)
    alpha: np.ndarray  # float32 (H, W): the resized cut-out alpha (0 outside the photo)
    mask: np.ndarray  # bool (H, W): the product (alpha >= threshold)
    factor: float  # resize factor of the photo
    offset: tuple[int, int]  # where the resized photo's top-left corner went
    box: tuple[int, int, int, int]  # the product's box on the canvas
    photo_size: tuple[int, int] = (0, 0)  # the resized photo's size: photo (x, y) lands at offset + (x, y) * factor

    @property
    def size(self) -> tuple[int, int]:
        return self.mask.shape[1], self.mask.shape[0]

    def init_image(self, background: tuple[int, int, int] = (128, 128, 128)) -> Image.Image:
        """The product on a plain background: the inpainting pipeline's ``image``."""
        out = np.empty_like(self.source)
        out[:] = np.asarray(background, dtype=np.uint8)
        out[self.mask] = self.source[self.mask]
        return Image.fromarray(out)

    def repaint_mask(self) -> Image.Image:
        """White (repaint) everywhere but the product, black (keep) on it: diffusers' inpainting convention."""
        return Image.fromarray(np.where(self.mask, 0, 255).astype(np.uint8), mode="L")

    def mask_image(self) -> Image.Image:
        """The hard mask as a black-and-white PNG (white = product), saved beside each scene."""
        return Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L")


def place(photo: Image.Image, alpha: np.ndarray, threshold: float, width: int, height: int,
          placement: Placement = Placement()) -> Placed:
    """Put the product of ``photo`` (cut out by ``alpha >= threshold``) on a ``width`` x ``height`` canvas."""
    from workbench.fidelity.masks import mask_bbox

    placement.check()
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.shape != (photo.height, photo.width):
        raise GenerationError(f"the mask is {alpha.shape[1]}x{alpha.shape[0]} but the photo {photo.width}x"
                              f"{photo.height}: remake the cut-out")
    box = mask_bbox(alpha >= threshold)
    if box is None:
        raise GenerationError("the cut-out is empty at this threshold: lower the threshold or remake the mask")
    l, t, r, b = box
    if placement.scale is None:
        factor = min(width / photo.width, height / photo.height)
        ox = round((width - photo.width * factor) / 2)
        oy = round((height - photo.height * factor) / 2)
    else:
        factor = placement.scale * min(width, height) / max(r - l, b - t)
        ox = round(placement.x * width - (l + r) / 2 * factor)
        oy = round(placement.y * height - (t + b) / 2 * factor)
    pw, ph = max(1, round(photo.width * factor)), max(1, round(photo.height * factor))
    if (pw, ph) == photo.size:
        src, a = np.asarray(photo.convert("RGB")), alpha
    else:
        src = np.asarray(photo.convert("RGB").resize((pw, ph), Image.Resampling.LANCZOS))
        a = np.asarray(Image.fromarray(alpha, mode="F").resize((pw, ph), Image.Resampling.BILINEAR))
    source = np.zeros((height, width, 3), np.uint8)
    canvas_alpha = np.zeros((height, width), np.float32)
    # the part of the resized photo that falls on the canvas
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + pw, width), min(oy + ph, height)
    if x0 >= x1 or y0 >= y1:
        raise GenerationError("the product lands outside the canvas: move it (x, y) or make it smaller")
    source[y0:y1, x0:x1] = src[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    canvas_alpha[y0:y1, x0:x1] = np.clip(a[y0 - oy:y1 - oy, x0 - ox:x1 - ox], 0, 1)
    mask = canvas_alpha >= threshold
    placed_box = mask_bbox(mask)
    whole = mask_bbox(np.clip(a, 0, 1) >= threshold)
    if placed_box is None or whole is None or mask.sum() < (np.clip(a, 0, 1) >= threshold).sum():
        raise GenerationError("part of the product falls outside the canvas: move it (x, y) or make it smaller")
    return Placed(source=source, alpha=canvas_alpha, mask=mask, factor=factor, offset=(ox, oy), box=placed_box,
                  photo_size=(pw, ph))


def contact_shadow(mask: np.ndarray) -> np.ndarray:
    """A soft shadow map in 0..1 (canvas size) under the product's bottom edge (see the module docstring)."""
    from scipy.ndimage import gaussian_filter

    from workbench.fidelity.masks import mask_bbox

    box = mask_bbox(mask)
    h, w = mask.shape
    out = np.zeros((h, w), np.float32)
    if box is None:
        return out
    l, t, r, b = box
    ph = b - t
    base = np.flatnonzero(mask[max(t, b - max(1, ph // 10)):b].any(0))  # the product's base: its lowest tenth
    cx = (base[0] + base[-1] + 1) / 2 if base.size else (l + r) / 2
    half_w = max((base[-1] + 1 - base[0]) / 2 if base.size else (r - l) / 2, 1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for width_k, height_k, blur_k, weight in ((1.0, 0.06, 0.04, 1.0), (1.5, 0.12, 0.10, 0.5)):
        ry = max(height_k * ph / 2, 1.0)
        ell = ((xx - cx) / (half_w * width_k)) ** 2 + ((yy - (b - ry * 0.3)) / ry) ** 2 <= 1.0
        out = np.maximum(out, weight * gaussian_filter(ell.astype(np.float32), sigma=max(blur_k * ph, 0.8)))
    return np.clip(out / max(out.max(), 1e-6), 0, 1)


def composite(generated: Image.Image, placed: Placed, shadow: float = 0.45) -> Image.Image:
    """The scene with the product's own pixels: exact inside ``placed.mask``, soft edge and shadow outside only."""
    if not 0.0 <= shadow <= 1.0:
        raise GenerationError(f"shadow {shadow} must be between 0 (none) and 1")
    w, h = placed.size
    gen = np.asarray(generated.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
                     if generated.size != (w, h) else generated.convert("RGB"), dtype=np.float32)
    if shadow > 0:
        gen = gen * (1.0 - shadow * contact_shadow(placed.mask))[..., None]
    a = np.where(placed.mask, 0.0, placed.alpha)[..., None]  # the soft edge: outside the mask only
    blend = placed.source.astype(np.float32) * a + gen * (1.0 - a)
    out = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    out[placed.mask] = placed.source[placed.mask]
    return Image.fromarray(out)
