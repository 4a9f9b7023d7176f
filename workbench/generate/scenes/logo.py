"""Logos from SVG, placed on a garment: safe rendering, a perspective warp to four corners, the garment's shading.

    svg = check_svg(text)                                   # LogoError for a hostile or broken SVG, with the reason
    placed = place_logo(photo, svg, [(40, 30), (90, 34), (88, 52), (38, 48)], colour="#1E2A5E")
    placed.image                                            # the garment with the logo; OCR it next
                                                            # (workbench.evaluate.placement.place_and_check)

**Untrusted SVG.** A brand's logo file is user input, and an SVG can point outside itself: external entities and
DTDs (file reads, "billion laughs" entity bombs), ``href``/``xlink:href`` to files or URLs (images, fonts, ``<use>``),
``url(...)`` and ``@import`` in styles, ``<?xml-stylesheet?>``. ``check_svg`` parses it with defusedxml (any DTD is
refused, so no entities at all), and refuses every reference that is not a fragment inside the file (``#id``) or an
inline ``data:image/...`` payload, ``<script>`` and ``<foreignObject>``, files over ``MAX_SVG_BYTES``, more than
``MAX_ELEMENTS`` elements, and declared sizes over ``MAX_SIDE`` user units. Only then is it rendered, by resvg
(``resvg-py``: a Rust renderer with no network code) with an empty resources folder; text in the SVG uses the
system's fonts (a logo converted to paths needs none).

**Placement.** The logo is rendered at the size its quadrilateral needs (twice that, for clean edges, at most
``MAX_RENDER_PX``), optionally in one colour (its alpha kept, the colour replaced), then warped with a projective
transform (scikit-image ``ProjectiveTransform``, premultiplied alpha, bilinear) so its corners land on the four
points (top-left, top-right, bottom-right, bottom-left). **Shading**: the garment's lightness under the logo,
relative to its median there (blurred a little, clipped to 0.35-1.6), multiplies the logo's colour, so folds and
shadows run across the print as they would across ink on cloth.

**A product's logo region.** Where the logo goes can be recorded once per product photo
(``workbench.products.logo_region``: normalised corners). ``ProductFrame`` says where a product photo's pixels sit in
an image (the photo itself; a product scene, from its provenance's ``photo_on_canvas``: the same resize and offset as
the product's pixels; or any image taken to have the photo's framing), so ``region_corners(frame)`` gives the
region in that image's pixels and ``save_region(actor, frame, corners)`` records corners picked on it:

    frame = image_frame(Image.open(p), provenance=read_png_metadata(p).provenance)   # a scene: its photo's frame
    corners = region_corners(frame)            # None when the photo has no region: give the corners
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from workbench.generate.pipeline import GenerationError

MAX_SVG_BYTES = 512_000
MAX_ELEMENTS = 5_000
MAX_SIDE = 10_000.0  # user units a root width/height/viewBox may declare
MAX_RENDER_PX = 4096
SAFE_HREF = re.compile(r"#[\w.:-]*\Z|data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z")
URL_REF = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.I)
SVG_NS = "http://www.w3.org/2000/svg"


class LogoError(GenerationError):
    """A logo that cannot be used: hostile or broken SVG, bad corners. The message says which and why."""


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(px|pt|mm|cm|in|)?\s*", value)
    if not m:
        return None
    try:
        return float(m.group(1))
    except ValueError:
        return None


def check_svg(svg: str | bytes) -> str:
    """The SVG text when it is safe to render; else LogoError naming what was refused (see the module docstring)."""
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    data = svg.encode("utf-8") if isinstance(svg, str) else bytes(svg)
    if len(data) > MAX_SVG_BYTES:
        raise LogoError(f"logo SVG refused: {len(data):,} bytes is over the {MAX_SVG_BYTES:,}-byte limit for a logo")
    if data[:2] == b"\x1f\x8b":
        raise LogoError("logo SVG refused: it is gzip-compressed (.svgz); give the plain SVG text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LogoError("logo SVG refused: it is not UTF-8 text") from None
    if re.search(r"<\?xml-stylesheet", text, re.I):
        raise LogoError("logo SVG refused: it loads an external stylesheet (<?xml-stylesheet?>)")
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise LogoError(f"logo SVG refused: it declares a DTD or entities ({type(exc).__name__}); entities can "
                        "read files or expand into gigabytes, so none are accepted") from None
    except Exception as exc:  # noqa: BLE001 - ParseError and friends: a broken file
        raise LogoError(f"logo SVG refused: not well-formed XML ({str(exc)[:160]})") from None
    if _local(root.tag) != "svg":
        raise LogoError(f"logo SVG refused: the root element is <{_local(root.tag)}>, not <svg>")
    count = 0
    for el in root.iter():
        count += 1
        if count > MAX_ELEMENTS:
            raise LogoError(f"logo SVG refused: more than {MAX_ELEMENTS:,} elements")
        tag = _local(el.tag) if isinstance(el.tag, str) else ""
        if tag in ("script", "foreignObject"):
            raise LogoError(f"logo SVG refused: it contains <{tag}>")
        for key, value in el.attrib.items():
            name = _local(key)
            if name in ("href", "src") and not SAFE_HREF.match(value.strip()):
                raise LogoError(f"logo SVG refused: <{tag} {name}=\"{value[:80]}\"> points outside the file (only "
                                "#fragments and inline data: images are allowed)")
            _check_css(value, f"<{tag} {name}>")
        if tag == "style" and el.text:
            _check_css(el.text, "<style>")
    for name in ("width", "height"):
        v = _number(root.get(name))
        if v is not None and not 0 < v <= MAX_SIDE:
            raise LogoError(f"logo SVG refused: {name}={root.get(name)!r} is outside 0-{MAX_SIDE:g}")
    box = (root.get("viewBox") or "").replace(",", " ").split()
    if box:
        try:
            vals = [float(v) for v in box]
        except ValueError:
            raise LogoError(f"logo SVG refused: viewBox {root.get('viewBox')!r} is not four numbers") from None
        if len(vals) != 4 or not (0 < vals[2] <= MAX_SIDE and 0 < vals[3] <= MAX_SIDE) or \
                max(abs(vals[0]), abs(vals[1])) > MAX_SIDE:
            raise LogoError(f"logo SVG refused: viewBox {root.get('viewBox')!r} is outside 0-{MAX_SIDE:g}")
    return text


def _check_css(text: str, where: str) -> None:
    if "@import" in text.lower():
        raise LogoError(f"logo SVG refused: {where} imports an external stylesheet (@import)")
    for target in URL_REF.findall(text):
        if not SAFE_HREF.match(target):
            raise LogoError(f"logo SVG refused: {where} has url({target[:80]}), which points outside the file")


def _rgb(colour: str) -> tuple[int, int, int]:
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", colour or ""):
        raise LogoError(f"logo colour {colour!r} must be #RRGGBB")
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def render_svg(svg: str, width: int, colour: str | None = None) -> Image.Image:
    """The checked SVG rendered ``width`` pixels wide (aspect kept) as RGBA; ``colour``: one colour, alpha kept."""
    import tempfile

    import resvg_py

    text = check_svg(svg)
    if not 1 <= width <= MAX_RENDER_PX:
        raise LogoError(f"logo render width {width} must be between 1 and {MAX_RENDER_PX}")
    with tempfile.TemporaryDirectory() as empty:  # nothing for a relative reference to find
        try:
            png = resvg_py.svg_to_bytes(svg_string=text, width=int(width), resources_dir=empty)
        except (ValueError, RuntimeError) as exc:
            raise LogoError(f"logo SVG could not be rendered: {str(exc)[:200]}") from None
    im = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    if im.width * im.height > MAX_RENDER_PX ** 2:
        raise LogoError(f"logo SVG refused: it renders to {im.width}x{im.height} pixels")
    if im.getbbox() is None:
        raise LogoError("logo SVG renders to nothing visible (empty, or text in a font this machine lacks: convert "
                        "the text to paths)")
    if colour:
        arr = np.asarray(im).copy()
        arr[..., :3] = _rgb(colour)
        im = Image.fromarray(arr, mode="RGBA")
    return im


def parse_corners(text: str) -> list[tuple[float, float]]:
    """``"x1,y1,x2,y2,x3,y3,x4,y4"`` (top-left, top-right, bottom-right, bottom-left) -> four points."""
    try:
        vals = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise LogoError(f"corners {text!r}: eight numbers x1,y1,...,x4,y4 expected") from None
    if len(vals) != 8:
        raise LogoError(f"corners {text!r}: eight numbers expected (four x,y points), got {len(vals)}")
    return [(vals[i], vals[i + 1]) for i in range(0, 8, 2)]


def _check_quad(corners, size: tuple[int, int]) -> np.ndarray:
    q = np.asarray(corners, dtype=np.float64)
    if q.shape != (4, 2):
        raise LogoError("four corners (x, y) are needed: top-left, top-right, bottom-right, bottom-left")
    w, h = size
    if (q[:, 0] < 0).any() or (q[:, 0] > w).any() or (q[:, 1] < 0).any() or (q[:, 1] > h).any():
        raise LogoError(f"corners {q.tolist()} reach outside the {w}x{h} image")
    cross = [np.cross(q[(i + 1) % 4] - q[i], q[(i + 2) % 4] - q[(i + 1) % 4]) for i in range(4)]
    if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)):
        raise LogoError("the four corners must form a convex quadrilateral in order: top-left, top-right, "
                        "bottom-right, bottom-left")
    return q


def warp_logo(logo: Image.Image, corners, size: tuple[int, int]) -> np.ndarray:
    """The RGBA logo warped onto a ``size`` canvas so its corners land on ``corners``: float32 (H, W, 4), RGB
    premultiplied by alpha, all in 0..1."""
    from skimage.transform import ProjectiveTransform, warp

    q = _check_quad(corners, size)
    arr = np.asarray(logo.convert("RGBA"), dtype=np.float32) / 255.0
    arr[..., :3] *= arr[..., 3:4]  # premultiplied: no dark fringes where alpha is partial
    lw, lh = logo.size
    t = ProjectiveTransform.from_estimate(np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]], dtype=np.float64), q) \
        if hasattr(ProjectiveTransform, "from_estimate") else None
    if t is None:
        t = ProjectiveTransform()
        t.estimate(np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]], dtype=np.float64), q)
    return warp(arr, t.inverse, output_shape=(size[1], size[0]), order=1, mode="constant", cval=0.0,
                preserve_range=True).astype(np.float32)


def shading(base: Image.Image, region: np.ndarray) -> np.ndarray:
    """The garment's lightness relative to its median inside ``region`` (blurred 1 px, clipped to 0.35-1.6)."""
    from scipy.ndimage import gaussian_filter

    lum = np.asarray(base.convert("L"), dtype=np.float32)
    ref = float(np.median(lum[region])) if region.any() else 1.0
    return np.clip(gaussian_filter(lum, 1.0) / max(ref, 1.0), 0.35, 1.6)


@dataclass
class PlacedLogo:
    image: Image.Image
    alpha: np.ndarray  # float32 (H, W): where the logo covers the image
    corners: list[tuple[float, float]]
    render_px: tuple[int, int]


def place_logo(base: Image.Image, svg: str, corners, colour: str | None = None, opacity: float = 1.0) -> PlacedLogo:
    """Render ``svg`` for the quadrilateral ``corners`` of ``base``, warp it there and blend it with the garment's
    shading (see the module docstring)."""
    if not 0 < opacity <= 1:
        raise LogoError(f"logo opacity {opacity} must be in (0, 1]")
    base = base.convert("RGB")
    q = _check_quad(corners, base.size)
    side = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    logo = render_svg(svg, int(min(MAX_RENDER_PX, max(16, round(2 * side)))), colour)
    warped = warp_logo(logo, q, base.size)
    a = np.clip(warped[..., 3], 0, 1) * opacity
    shade = shading(base, a > 0.5)[..., None]
    ink = np.where(warped[..., 3:4] > 1e-6, warped[..., :3] / np.maximum(warped[..., 3:4], 1e-6), 0) * 255.0
    rgb = np.asarray(base, dtype=np.float32)
    out = rgb * (1 - a[..., None]) + np.clip(ink * shade, 0, 255) * a[..., None]
    return PlacedLogo(image=Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)), alpha=a,
                      corners=[tuple(map(float, p)) for p in q], render_px=logo.size)


# -- a product's logo region in an image -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ProductFrame:
    """Where product ``sku``'s photo ``item_id`` sits in an image: its top-left at ``offset``, ``size`` pixels big
    (the photo itself: offset 0, the image's size). ``item_id`` None: an image taken to have the framing of the
    product's photos (an upload), whose region is the first one recorded. ``how`` says which, for the page."""

    sku: str
    item_id: int | None
    offset: tuple[float, float]
    size: tuple[float, float]
    how: str = "photo"  # photo | scene | same framing

    def to_image(self, normalised) -> list[tuple[float, float]]:
        (ox, oy), (w, h) = self.offset, self.size
        return [(ox + x * w, oy + y * h) for x, y in normalised]

    def to_photo(self, pixels) -> list[tuple[float, float]]:
        (ox, oy), (w, h) = self.offset, self.size
        return [((x - ox) / w, (y - oy) / h) for x, y in pixels]


def scene_frame(provenance: dict | None) -> ProductFrame | None:
    """The frame of a product scene's source photo, from its PNG provenance (``scene.photo_on_canvas``: the offset
    and size ``compose.place`` gave the photo); None for any other image, or a scene made before it was recorded."""
    scene = (provenance or {}).get("scene") or {}
    box = scene.get("photo_on_canvas")
    item = (scene.get("source_image") or {}).get("item_id")
    if not scene.get("product") or not box or item is None:
        return None
    ox, oy, w, h = (float(v) for v in box)
    return ProductFrame(str(scene["product"]), int(item), (ox, oy), (w, h), "scene")


def image_frame(image: Image.Image, *, provenance: dict | None = None, sku: str | None = None,
                item_id: int | None = None) -> ProductFrame | None:
    """The product frame of ``image``: a product scene's (from ``provenance``), else product ``sku``'s photo
    ``item_id`` as the whole image (``item_id`` None: the image has the framing of the product's photos), else None.
    A scene of another product than ``sku`` is a LogoError."""
    frame = scene_frame(provenance)
    if frame is not None:
        if sku and sku != frame.sku:
            raise LogoError(f"this image is a scene of {frame.sku}, not {sku}")
        return frame
    if not sku:
        return None
    return ProductFrame(sku, item_id, (0.0, 0.0), (float(image.width), float(image.height)),
                        "photo" if item_id is not None else "same framing")


def region_corners(frame: ProductFrame | None, settings=None) -> list[tuple[float, float]] | None:
    """The product's recorded logo region in the frame's image pixels, or None (no frame, no region)."""
    from workbench.products import ProductError
    from workbench.products.logo_region import logo_region

    if frame is None:
        return None
    try:
        r = logo_region(frame.sku, frame.item_id, settings=settings)
    except ProductError as exc:
        raise LogoError(str(exc)) from None
    return None if r is None else frame.to_image(r.corners)


def save_region(actor, frame: ProductFrame, corners, settings=None):
    """Record ``corners`` (pixels of the frame's image) as the logo region of the frame's photo (``datasets``);
    returns the ``LogoRegion``. An image without a known photo (an upload) saves to the product's first photo."""
    from workbench.products import ProductError
    from workbench.products.logo_region import set_logo_region

    try:
        return set_logo_region(actor, frame.sku, frame.to_photo(corners), item_id=frame.item_id, settings=settings)
    except ProductError as exc:
        raise LogoError(str(exc)) from None


# -- the brand's logo file --------------------------------------------------------------------------------------------

def brand_logo_path(brand: str, settings=None):
    """Where brand ``brand``'s logo SVG lives: ``<workspace>/prompt_templates/brands/<brand>.logo.svg``, else the
    shipped ``prompt_templates/brands/<brand>.logo.svg`` (the path of the first that exists; the workspace's when
    neither does)."""
    from workbench.prompts.library import SHIPPED_DIR, workspace_templates_dir

    rel = f"brands/{brand}.logo.svg"
    ours = workspace_templates_dir(settings) / rel
    return next((p for p in (ours, SHIPPED_DIR / rel) if p.is_file()), ours)


def save_brand_logo(actor, brand: str, svg: str | bytes, settings=None):
    """Check ``svg`` (``check_svg``) and save it as the logo of brand profile ``brand`` (``settings``: an admin's, like
    the profile itself). Returns the path."""
    import hashlib

    from workbench.auth import require
    from workbench.db import audit, session_scope
    from workbench.files import write_text_atomic
    from workbench.prompts.library import load_library, workspace_templates_dir

    who = require(actor, "settings", settings=settings)
    if brand not in load_library(settings=settings).brands:
        raise LogoError(f"no brand profile {brand!r}: save the profile first")
    text = check_svg(svg)
    path = workspace_templates_dir(settings) / "brands" / f"{brand}.logo.svg"

    def digest(t: str) -> dict:
        return {"sha256": hashlib.sha256(t.encode()).hexdigest(), "chars": len(t)}

    # Audited like the profile itself (a policy an admin sets): which logo was replaced by which, by whom.
    before = {"path": str(path), **digest(path.read_text(encoding="utf-8"))} if path.is_file() else None
    with session_scope(settings) as s:
        write_text_atomic(path, text)
        audit(s, who.username, "prompts.save_brand_logo", "brand", brand, before=before,
              after={"path": str(path), **digest(text)})
    return path
