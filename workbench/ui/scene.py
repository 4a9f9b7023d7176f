"""Generate page, "Product scene" and "Place logo" tabs (issue #21): pick a SKU -> its photo and cut-out (threshold
slider to correct it by hand) -> scene preset or prompt, placement, IP-Adapter on its photo -> N scenes; and a logo
from SVG on any image, four corners clicked on the image (``streamlit-image-coordinates``; or a product's recorded
logo region, or typed), previewed live, read back by OCR. Library calls only: ``generate.scenes``, ``products`` and
``evaluate.placement``."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from workbench.generate.pipeline import GenerationError, PipelineSpec
from workbench.ui.common import plain

K_SCENES = "generate_scene_last"  # [(path, verdict)] of the last request
K_LOGO = "generate_logo_last"  # {"png": bytes, "check": str, "passed": bool, "corners": [(x, y)] * 4}
K_PICKS = "generate_logo_picks"  # + "_<image>_<sku>": the CornerPicks of that image
MAX_UPLOAD_PX = 4096


@st.cache_resource(show_spinner="Loading the scene pipeline…", max_entries=2)
def scene_pipeline_for(spec: PipelineSpec, ip_adapter: str | None):
    """A pipeline of its own for scenes (an IP-Adapter changes its UNet), cached per spec and adapter."""
    from workbench.generate.pipeline import build_pipeline
    from workbench.generate.scenes.scene import scene_pipeline

    return scene_pipeline(build_pipeline(spec), ip_adapter=ip_adapter, reference_scale=0.6)


@st.cache_resource(show_spinner="Loading OCR…", max_entries=1)
def ocr_engine():
    from workbench.evaluate.ocr import load_ocr

    return load_ocr()


def _overlay(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """The photo with everything outside the mask tinted, so a missing sleeve or a halo shows."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    tint = np.array([255, 0, 140], dtype=np.float32)
    arr[~mask] = arr[~mask] * 0.45 + tint * 0.55
    return Image.fromarray(arr.astype(np.uint8))


def _cutout_panel(user: str, sku: str):
    """The product's photo and stored cut-out with the threshold slider; returns the ProductPhoto or None."""
    from workbench.generate.scenes.cutout import product_cutout, set_threshold
    from workbench.products import get_product

    product = get_product(sku)
    if not product.item_ids:
        st.info("This product has no photos yet: link 1-5 photos of it on the Datasets page.")
        return None
    item = st.selectbox("Photo", product.item_ids, key=f"generate_scene_item_{sku}", format_func=lambda i: f"item {i}")
    remake = st.button("Remake the cut-out", key="generate_scene_remake",
                       help="Compute the mask again (matting on white backgrounds) and store it.")
    try:
        photo = product_cutout(user, sku, item, remake=remake)
    except GenerationError as exc:
        st.error(plain(exc))
        return None
    c = photo.cutout
    threshold = st.slider("Mask threshold", 0.05, 0.95, float(c.threshold), 0.01,
                          key=f"generate_scene_threshold_{item}",
                          help="Higher trims a halo of background; lower brings back a pale edge. Saved with the "
                               "photo, used by every scene of it.")
    left, right = st.columns(2)
    left.image(photo.image, caption=f"item {photo.item_id}", width="stretch")
    right.image(_overlay(photo.image, c.alpha >= threshold), width="stretch",
                caption=plain(f"cut-out · {c.source} · tinted: generated"))
    if abs(threshold - c.threshold) > 1e-9 and st.button("Save the threshold", key="generate_scene_save_threshold"):
        try:
            set_threshold(user, item, threshold)
            photo = product_cutout(user, sku, item)
            st.success(f"Threshold {threshold:.2f} saved with item {item}.")
        except GenerationError as exc:
            st.error(plain(exc))
    return photo


def render_scene_tab(user, spec: PipelineSpec | None = None) -> None:
    """The "Product scene" tab: SKU -> photo and cut-out -> preset or prompt -> N scenes (see the module doc)."""
    from workbench.generate.scenes.compose import Placement
    from workbench.generate.scenes.scene import SceneRequest, generate_scene, scene_gate
    from workbench.models.sources import ModelUnavailable, availability, native_size
    from workbench.products import list_products
    from workbench.prompts import load_library
    from workbench.settings import get_settings

    username = getattr(user, "username", user)
    settings = get_settings()
    spec = spec or PipelineSpec(model=settings.models.sdxl_base, device=settings.resolved_device())
    products = {p.sku: p for p in list_products(limit=1000)}
    if not products:
        st.info("No products yet: import a catalog on the Datasets page; each SKU's photos become scene sources.")
        return
    sku = st.selectbox("Product (SKU)", list(products), key="generate_scene_product",
                       format_func=lambda k: f"{k} · {products[k].name or products[k].category}")
    photo = _cutout_panel(username, sku)
    if photo is None:
        return
    scenes = load_library().scenes
    c1, c2 = st.columns([1, 2])
    preset = c1.selectbox("Scene preset", ["", *sorted(scenes)], key="generate_scene_preset",
                          format_func=lambda k: "— none —" if not k else f"{scenes[k].title or k}")
    prompt = c2.text_input("Scene prompt", key="generate_scene_prompt",
                           placeholder="a model wearing this jacket in Paris",
                           help="What to generate around the product; empty: the product's own prompt.")
    p1, p2, p3, p4 = st.columns(4)
    keep = p1.checkbox("Keep the photo's framing", value=True, key="generate_scene_keep_framing")
    scale = p2.slider("Product size", 0.1, 1.0, 0.6, 0.05, key="generate_scene_scale", disabled=keep,
                      help="The product's long side as a share of the canvas's short side.")
    x = p3.slider("Across", 0.0, 1.0, 0.5, 0.05, key="generate_scene_x", disabled=keep)
    y = p4.slider("Down", 0.0, 1.0, 0.55, 0.05, key="generate_scene_y", disabled=keep)
    r1, r2, r3 = st.columns(3)
    shadow = r1.slider("Contact shadow", 0.0, 1.0, 0.45, 0.05, key="generate_scene_shadow")
    ip_ref = settings.models.ip_adapter
    ip_ok = availability(ip_ref, "ip_adapter").ok
    use_ref = r2.checkbox("Condition on the product photo (IP-Adapter)", key="generate_scene_use_ref",
                          disabled=not ip_ok,
                          help=None if ip_ok else f"{ip_ref} is not here: run `workbench models pull ip_adapter`.")
    ref_scale = r3.slider("Reference strength", 0.0, 1.5, 0.6, 0.05, key="generate_scene_ref_scale",
                          disabled=not use_ref)
    with st.form("generate_scene_form"):
        f1, f2, f3, f4 = st.columns(4)
        n = f1.number_input("Scenes", 1, 8, 1, key="generate_scene_n")
        seed = f2.number_input("Seed", 0, 2**32 - 1, 0, key="generate_scene_seed")
        steps = f3.number_input("Steps", 1, 100, 30, key="generate_scene_steps")
        native = native_size(spec.model)
        sizes = sorted({1024, 768, 512, 256, 64, native}, reverse=True)
        size = f4.selectbox("Size", sizes, index=sizes.index(native), key="generate_scene_size")
        go = st.form_submit_button("Generate scenes", type="primary")
    if go:
        request = SceneRequest(sku=sku, prompt=prompt, scene=preset, width=int(size), height=int(size),
                               steps=int(steps), seed=int(seed), num_images=int(n), shadow=float(shadow),
                               item_id=photo.item_id, placement=Placement(None if keep else scale, x, y),
                               reference_scale=float(ref_scale) if use_ref else None)
        try:
            sp = scene_pipeline_for(spec, ip_ref if use_ref else None)
            gate = scene_gate(sku)  # the brand profile's CLIP gate, when it has one
            scorer = None
            if gate is not None:
                from workbench.ui.generate import clip_scorer

                scorer = clip_scorer(settings.models.clip_scorer, spec.device)
            with st.spinner("Generating scenes…"):
                images = generate_scene(username, sp, request, "scenes", scorer=scorer, gate=gate)
            st.session_state[K_SCENES] = [(str(i.path), None if i.fidelity is None else
                                           (i.fidelity.passed, i.fidelity.reason)) for i in images if i.kept]
        except (GenerationError, ModelUnavailable) as exc:
            st.error(plain(exc))
    last = st.session_state.get(K_SCENES) or []
    cols = st.columns(4)
    for i, (path, verdict) in enumerate(last):
        with cols[i % 4]:
            st.image(path, width="stretch")
            if verdict is not None:
                ok, reason = verdict
                (st.caption if ok is not False else st.warning)(plain(("✅ " if ok else "held: " if ok is False
                                                                        else "") + reason))


# -- Place logo: corners clicked on the image ------------------------------------------------------------------------

@dataclass(frozen=True)
class CornerPicks:
    """The corners clicked on the image so far, in image pixels, in click order (at most four), and the
    component's time stamp of the last click taken (a rerun hands the same click back: it is not taken twice).

    Rules: each new click adds a corner; a fifth click starts a new quadrilateral (it becomes corner 1); Reset
    empties the list. The quadrilateral is the four clicks ordered clockwise on screen from the first one
    (``order_quad``), so clicking top-left, top-right, bottom-right, bottom-left gives exactly that, and a click order
    that crosses itself (top-left, top-right, bottom-left, bottom-right) still gives a proper, unmirrored one."""

    points: tuple[tuple[float, float], ...] = ()
    seen: int | None = None

    def click(self, value: dict | None, size: tuple[int, int]) -> CornerPicks:
        """``value``: the click component's ``{x, y, width, height, unix_time}`` (x, y in the shown image's pixels,
        which may be scaled: ``width``, ``height``); ``size``: the image's own size. None or a click already
        taken: unchanged."""
        if not value or value.get("unix_time") == self.seen:
            return self
        w, h = size
        x = float(value["x"]) * w / max(float(value.get("width") or w), 1.0)
        y = float(value["y"]) * h / max(float(value.get("height") or h), 1.0)
        point = (min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h)))
        kept = self.points if len(self.points) < 4 else ()
        return CornerPicks(kept + (point,), value.get("unix_time"))

    def reset(self) -> CornerPicks:
        return CornerPicks((), self.seen)  # the last click stays seen: the rerun that follows must not re-add it

    def set(self, corners) -> CornerPicks:
        return CornerPicks(tuple((float(x), float(y)) for x, y in corners), self.seen)

    @property
    def quad(self) -> list[tuple[float, float]] | None:
        return order_quad(self.points) if len(self.points) == 4 else None


def order_quad(points) -> list[tuple[float, float]]:
    """Four points ordered clockwise on screen (y points down) around their centre, starting from the first one."""
    import math

    pts = [(float(x), float(y)) for x, y in points]
    cx, cy = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    first = pts[0]
    a0 = math.atan2(first[1] - cy, first[0] - cx)
    return sorted(pts, key=lambda p: (math.atan2(p[1] - cy, p[0] - cx) - a0) % (2 * math.pi))


def marked(image: Image.Image, points, width: int) -> Image.Image:
    """``image`` shown ``width`` pixels wide with each corner's number at its point and the quadrilateral outlined
    (the corners as clicked; once four exist, in ``order_quad`` order)."""
    from PIL import ImageDraw

    k = width / image.width
    out = image.convert("RGB").resize((width, max(1, round(image.height * k))), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(out)
    pts = [(x * k, y * k) for x, y in (order_quad(points) if len(points) == 4 else points)]
    if len(pts) >= 2:
        draw.line(pts + ([pts[0]] if len(pts) == 4 else []), fill=(255, 0, 140), width=2)
    r = max(6, width // 60)
    for i, (x, y) in enumerate(pts, 1):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 140), outline=(255, 255, 255), width=1)
        draw.text((x, y), str(i), fill=(255, 255, 255), anchor="mm", font_size=int(r * 1.5))
    return out


@dataclass
class LogoSource:
    image: Image.Image
    ident: str  # which image: a new one starts a new set of corners
    label: str
    provenance: dict
    sku: str = ""  # a product photo's product
    item_id: int | None = None


def _image_source(key: str) -> LogoSource | None:
    import hashlib

    from workbench.generate.reads import batch_images
    from workbench.generate.sample import read_png_metadata
    from workbench.products import list_products

    recent = [r.image_path for r in batch_images("scenes", 12) + batch_images("page", 12) if r.kept]
    photos = {f"photo:{p.sku}:{i}": (p.sku, i, path) for p in list_products(limit=200)
              for i, path in zip(p.item_ids, p.images)}
    options = ["upload", *recent, *photos]
    pick = st.selectbox("Image", options, key=f"{key}_source",
                        format_func=lambda p: "— upload an image —" if p == "upload" else
                        f"product photo · {photos[p][0]} · item {photos[p][1]}" if p in photos else
                        p.rsplit("/", 1)[-1])
    if pick in photos:
        sku, item, path = photos[pick]
        with Image.open(path) as im:
            return LogoSource(im.convert("RGB"), pick, f"{sku} · item {item}", {}, sku, item)
    if pick != "upload":
        try:
            prov = read_png_metadata(pick).provenance if pick.lower().endswith(".png") else {}
        except (OSError, ValueError):
            prov = {}
        with Image.open(pick) as im:
            return LogoSource(im.convert("RGB"), pick, pick.rsplit("/", 1)[-1], prov)
    up = st.file_uploader("Image (PNG or JPEG)", type=["png", "jpg", "jpeg"], key=f"{key}_upload")
    if up is None:
        return None
    data = up.getvalue()
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > MAX_UPLOAD_PX:
                st.error(f"The image is {im.width}x{im.height}: at most {MAX_UPLOAD_PX} px a side.")
                return None
            return LogoSource(im.convert("RGB"), "upload:" + hashlib.sha256(data).hexdigest()[:16], up.name, {})
    except (OSError, Image.DecompressionBombError) as exc:
        st.error(plain(f"Not a readable image: {exc}"))
        return None


def _fmt(corners) -> str:
    return ",".join(f"{x:.0f},{y:.0f}" for x, y in corners)


def _frame_for(src: LogoSource):
    """The product frame of the picked image, with the page's product choice (the photo's or scene's by default)."""
    from workbench.generate.scenes.logo import image_frame, scene_frame
    from workbench.products import list_products

    own = src.sku or (scene_frame(src.provenance).sku if scene_frame(src.provenance) else "")
    skus = [p.sku for p in list_products(limit=1000)]
    if not skus:
        return None
    options = ["", *skus]
    sku = st.selectbox("Product (its logo region)", options, index=options.index(own) if own in options else 0,
                       key=f"generate_logo_product_{src.ident}", format_func=lambda k: k or "— none —",
                       help="A product's recorded logo region gives the corners when none are clicked. A scene "
                            "maps it through the scene's placement; any other image is taken to have the framing "
                            "of the product's photos.")
    if not sku:
        return None
    if src.sku and sku == src.sku:
        return image_frame(src.image, sku=sku, item_id=src.item_id)
    frame = scene_frame(src.provenance)
    if frame is not None and frame.sku == sku:
        return frame
    return image_frame(src.image, sku=sku)


def _picker(user: str, src: LogoSource, frame) -> list[tuple[float, float]] | None:
    """Click-to-pick corners on the image (see ``CornerPicks``), Reset, the product's region, typed corners as an
    advanced fallback; returns the quadrilateral once four corners exist."""
    from streamlit_image_coordinates import streamlit_image_coordinates

    from workbench.generate.scenes.logo import LogoError, parse_corners, region_corners, save_region

    w, h = src.image.size
    suffix = f"{src.ident}_{frame.sku if frame else ''}"
    state_key, text_key = f"{K_PICKS}_{suffix}", f"generate_logo_corners_{suffix}"
    picks: CornerPicks | None = st.session_state.get(state_key)
    region = None
    try:
        region = region_corners(frame)
    except LogoError as exc:
        st.warning(plain(exc))
    if picks is None:  # a new image: the product's region when it has one, else nothing clicked yet
        picks = CornerPicks().set(region) if region else CornerPicks()
    st.caption("Click the logo's four corners on the image: **1** top-left, **2** top-right, **3** bottom-right, "
               "**4** bottom-left. A fifth click starts again." + (
                   f" Corners from **{plain(frame.sku)}**'s logo region ({plain(frame.how)})."
                   if region and picks.points == tuple(region) else ""))
    shown = max(512, min(640, w))  # small images shown bigger: easier to click
    value = streamlit_image_coordinates(marked(src.image, picks.points, shown), width=shown,
                                        key=f"generate_logo_click_{suffix}", cursor="crosshair")
    before = picks
    picks = picks.click(value, (w, h))
    b1, b2, b3 = st.columns(3)
    if b1.button("Reset corners", key="generate_logo_reset"):
        picks = picks.reset()
    if region and b2.button("Use the product's region", key="generate_logo_use_region"):
        picks = picks.set(region)
    if picks != before or text_key not in st.session_state:  # the typed field follows the clicks
        st.session_state[text_key] = _fmt(picks.quad or [])
    with st.expander("Type the corners (advanced)"):
        typed = st.text_input("Corners x1,y1,…,x4,y4 in pixels (top-left, top-right, bottom-right, bottom-left)",
                              key=text_key)
        if st.button("Use typed corners", key="generate_logo_use_typed"):
            try:
                picks = picks.set(parse_corners(typed))
            except LogoError as exc:
                st.error(plain(exc))
    st.session_state[state_key] = picks
    quad = picks.quad
    st.caption(f"{w}x{h} · " + (f"corners {_fmt(quad)}" if quad else f"{len(picks.points)} of 4 corners"))
    if quad and frame is not None and b3.button(plain(f"Save as {frame.sku}'s logo region"),
                                                key="generate_logo_save_region",
                                                help="Recorded with the product's photo (normalised), used when no "
                                                     "corners are given: on the photo and on its scenes."):
        try:
            r = save_region(user, frame, quad)
            st.success(f"Saved as {plain(r.sku)}'s logo region (item {r.item_id}).")
        except Exception as exc:  # noqa: BLE001 - PermissionDenied, LogoError: shown, not fatal
            st.error(plain(exc))
    return quad


def render_logo_tab(user) -> None:
    """The "Place logo" tab: an image, the brand's SVG logo (or an uploaded one), four corners clicked on the image
    (or the product's logo region, or typed) with a live preview -> OCR check."""
    from workbench.evaluate.placement import brand_logo, place_and_check
    from workbench.generate.scenes.logo import (LogoError, brand_logo_path, check_svg, place_logo,
                                                save_brand_logo)
    from workbench.prompts import load_library

    username = getattr(user, "username", user)
    src = _image_source("generate_logo")
    brands = sorted(load_library().brands)
    b1, b2 = st.columns(2)
    brand = b1.selectbox("Brand", ["", *brands], key="generate_logo_brand", format_func=lambda b: b or "— none —")
    svg_up = b2.file_uploader("Logo SVG (default: the brand's)", type=["svg"], key="generate_logo_svg")
    svg_text = None
    if svg_up is not None:
        try:
            svg_text = check_svg(svg_up.getvalue())
        except LogoError as exc:
            st.error(plain(exc))
            return
        if brand and st.button(plain(f"Save as {brand}'s logo"), key="generate_logo_save_brand",
                               help="Admins: stored beside the brand profile, used by every logo placement."):
            try:
                save_brand_logo(username, brand, svg_text)
                st.success(f"Saved as {plain(brand_logo_path(brand))}.")
            except Exception as exc:  # noqa: BLE001 - PermissionDenied, LogoError: shown, not fatal
                st.error(plain(exc))
    if src is None:
        st.info("Pick or upload an image to place the logo on.")
        return
    try:
        frame = _frame_for(src)
    except LogoError as exc:
        st.error(plain(exc))
        frame = None
    c2, c3 = st.columns(2)
    colour = c2.color_picker("Colour", "#1E2A5E", key="generate_logo_colour")
    own = c3.checkbox("Logo's own colours", value=True, key="generate_logo_own_colours")
    text = st.text_input("Text OCR must read (default: the brand's logo text)", key="generate_logo_text")
    left, right = st.columns(2)
    with left:
        quad = _picker(username, src, frame)
    w = src.image.width
    logo_svg = svg_text
    if logo_svg is None and brand and brand_logo_path(brand).is_file():
        logo_svg = brand_logo_path(brand).read_text(encoding="utf-8", errors="replace")
    with right:
        if quad and logo_svg:
            try:
                preview = place_logo(src.image, logo_svg, quad, colour=None if own else colour).image
                st.image(preview, caption="preview (not yet checked by OCR)", width=min(512, max(256, w)))
            except LogoError as exc:
                st.warning(plain(exc))
        elif quad:
            st.caption("Pick a brand with a logo, or upload an SVG, to see the preview.")
    if st.button("Place logo and check", key="generate_logo_go", type="primary",
                 disabled=quad is None or logo_svg is None,
                 help=None if logo_svg else "Pick a brand that has a logo SVG, or upload one."):
        try:
            if svg_text is None:
                svg_text, expected = brand_logo(brand, text=text or None)
            else:
                expected = text or (load_library().brands[brand].logo_text if brand else "")
                if not expected:
                    raise LogoError("the text OCR must read is unknown: type it, or pick a brand with a logo_text")
            with st.spinner("Placing and reading…"):
                out = place_and_check(src.image, svg_text, quad, expected, colour=None if own else colour,
                                      engine=ocr_engine())
            buf = io.BytesIO()
            out.image.save(buf, format="PNG")
            st.session_state[K_LOGO] = {"png": buf.getvalue(), "passed": out.check.passed, "corners": quad,
                                        "check": f"OCR read {out.check.text!r}: score {out.check.score:.0f} for "
                                                 f"{out.check.expected!r} ({out.check.backend})"}
        except (LogoError, GenerationError) as exc:
            st.error(plain(exc))
    last = st.session_state.get(K_LOGO)
    if last:
        st.image(last["png"], width=min(512, w))
        (st.success if last["passed"] else st.warning)(("PASS · " if last["passed"] else "FAIL · ")
                                                       + plain(last["check"]))
        st.download_button("Download", last["png"], file_name="logo-placed.png", mime="image/png",
                           key="generate_logo_download")
