"""Generate page, "Product scene" and "Place logo" tabs (issue #21): pick a SKU -> its photo and cut-out (threshold
slider to correct it by hand) -> scene preset or prompt, placement, IP-Adapter on its photo -> N scenes; and a logo
from SVG on any image, four corners, read back by OCR. Library calls only: ``generate.scenes`` and
``evaluate.placement``."""
from __future__ import annotations

import io

import numpy as np
import streamlit as st
from PIL import Image

from workbench.generate.pipeline import GenerationError, PipelineSpec
from workbench.ui.common import plain

K_SCENES = "generate_scene_last"  # [(path, verdict)] of the last request
K_LOGO = "generate_logo_last"  # {"png": bytes, "check": str, "passed": bool}
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


def _image_source(key: str) -> Image.Image | None:
    from workbench.generate.reads import batch_images

    recent = [r for r in batch_images("scenes", 12) + batch_images("page", 12) if r.kept]
    options = ["upload", *[r.image_path for r in recent]]
    pick = st.selectbox("Image", options, key=f"{key}_source",
                        format_func=lambda p: "— upload an image —" if p == "upload" else p.rsplit("/", 1)[-1])
    if pick != "upload":
        with Image.open(pick) as im:
            return im.convert("RGB")
    up = st.file_uploader("Image (PNG or JPEG)", type=["png", "jpg", "jpeg"], key=f"{key}_upload")
    if up is None:
        return None
    try:
        with Image.open(io.BytesIO(up.getvalue())) as im:
            if max(im.size) > MAX_UPLOAD_PX:
                st.error(f"The image is {im.width}x{im.height}: at most {MAX_UPLOAD_PX} px a side.")
                return None
            return im.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        st.error(plain(f"Not a readable image: {exc}"))
        return None


def render_logo_tab(user) -> None:
    """The "Place logo" tab: an image, the brand's SVG logo (or an uploaded one), four corners -> OCR check."""
    from workbench.evaluate.placement import brand_logo, place_and_check
    from workbench.generate.scenes.logo import LogoError, brand_logo_path, check_svg, parse_corners, save_brand_logo
    from workbench.prompts import load_library

    image = _image_source("generate_logo")
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
        if brand and st.button(f"Save as {brand}'s logo", key="generate_logo_save_brand",
                               help="Admins: stored beside the brand profile, used by every logo placement."):
            try:
                save_brand_logo(getattr(user, "username", user), brand, svg_text)
                st.success(f"Saved as {plain(brand_logo_path(brand))}.")
            except Exception as exc:  # noqa: BLE001 - PermissionDenied, LogoError: shown, not fatal
                st.error(plain(exc))
    if image is None:
        st.info("Pick or upload an image to place the logo on.")
        return
    w, h = image.size
    default = f"{w * 0.3:.0f},{h * 0.4:.0f},{w * 0.7:.0f},{h * 0.4:.0f},{w * 0.7:.0f},{h * 0.52:.0f}," \
              f"{w * 0.3:.0f},{h * 0.52:.0f}"
    c1, c2, c3 = st.columns([3, 1, 1])
    corners = c1.text_input("Corners x1,y1,…,x4,y4 (top-left, top-right, bottom-right, bottom-left)", default,
                            key=f"generate_logo_corners_{w}x{h}")
    colour = c2.color_picker("Colour", "#1E2A5E", key="generate_logo_colour")
    own = c3.checkbox("Logo's own colours", value=True, key="generate_logo_own_colours")
    text = st.text_input("Text OCR must read (default: the brand's logo text)", key="generate_logo_text")
    st.image(image, caption=f"{w}x{h}", width=min(512, w))
    if st.button("Place logo and check", key="generate_logo_go", type="primary"):
        try:
            pts = parse_corners(corners)
            if svg_text is None:
                svg_text, expected = brand_logo(brand, text=text or None)
            else:
                expected = text or (load_library().brands[brand].logo_text if brand else "")
                if not expected:
                    raise LogoError("the text OCR must read is unknown: type it, or pick a brand with a logo_text")
            with st.spinner("Placing and reading…"):
                out = place_and_check(image, svg_text, pts, expected, colour=None if own else colour,
                                      engine=ocr_engine())
            buf = io.BytesIO()
            out.image.save(buf, format="PNG")
            st.session_state[K_LOGO] = {"png": buf.getvalue(), "passed": out.check.passed,
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
