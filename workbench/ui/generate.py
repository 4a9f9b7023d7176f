"""Generate page widgets: pipeline controls with a memory estimate, a cached pipeline, one-prompt generation, batch
jobs from a saved prompt batch, and the gallery."""
from __future__ import annotations

import streamlit as st

from workbench.generate.pipeline import (QUANTIZATION_MODES, SCHEDULERS, GenerationError, LoraSpec, PipelineSpec,
                                        estimate_memory_gib, parse_lora_arg)
from workbench.models.sources import native_size
from workbench.settings import Settings
from workbench.ui.common import plain

K_LAST = "generate_last_paths"


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def assembled_pipeline(spec: PipelineSpec):
    """One pipeline per spec (model, VAE, LoRAs and scales, scheduler, dtype, quantization, device)."""
    from workbench.generate.pipeline import build_pipeline

    return build_pipeline(spec)


def _loras(text: str) -> tuple[LoraSpec, ...]:
    """One LoRA per non-empty line, ``PATH`` or ``PATH:SCALE`` (``parse_lora_arg``, the CLI's rule)."""
    return tuple(parse_lora_arg(line.strip()) for line in text.splitlines() if line.strip())


def controls(settings: Settings) -> PipelineSpec:
    """Model, LoRAs, scheduler, precision and quantization, with the weights-memory estimate for full-size SDXL."""
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
    model = c1.text_input("Model", settings.models.sdxl_base, key="generate_model",
                          help="Hub id (cached), local diffusers folder or single .safetensors file.")
    scheduler = c2.selectbox("Scheduler", list(SCHEDULERS), format_func=lambda k: SCHEDULERS[k][2],
                             key="generate_scheduler")
    device = settings.resolved_device()
    dtype = c3.selectbox("Precision", ["fp16", "bf16", "fp32"] if device == "cuda" else ["fp32", "bf16"],
                         key="generate_dtype")
    quant = c4.selectbox("Weights", [m for m in QUANTIZATION_MODES if device == "cuda" or m in ("none", "int8")],
                         key="generate_quant", help="int8: optimum-quanto, about half the memory of fp16.")
    picked = registered_loras_picker()
    loras = st.text_area("More LoRAs (one per line, PATH or PATH:SCALE)", key="generate_loras", height=68)
    try:
        typed = _loras(loras)
    except GenerationError as exc:  # a bad scale: say so, rather than generating without that LoRA
        st.error(plain(exc))
        st.stop()
    spec = PipelineSpec(model=model.strip(), loras=picked + typed, scheduler=scheduler, dtype=dtype,
                        quantization=quant, device=device)
    est = estimate_memory_gib(spec)
    st.caption(f"Weights for full-size SDXL in this mode: ~{est['total_weights']:.1f} GiB "
               f"(UNet {est['unet']:.1f}, text encoders {est['text_encoders']:.1f}, VAE {est['vae']:.2f}); "
               "activations add ~2–4 GiB at 1024².")
    return spec


def registered_loras() -> list:
    """LoRAs trained here (the Training page registers them), newest first."""
    from workbench.db import session_scope
    from workbench.train.tables import Lora

    with session_scope() as s:
        return list(s.query(Lora).order_by(Lora.id.desc()).limit(200))


def registered_loras_picker() -> tuple[LoraSpec, ...]:
    """Pick trained LoRAs by name, each with its scale."""
    rows = registered_loras()
    if not rows:
        return ()
    by_id = {r.id: r for r in rows}
    chosen = st.multiselect(
        "Trained LoRAs", list(by_id), key="generate_lora_pick",
        format_func=lambda i: f"{by_id[i].name} · rank {by_id[i].rank} · step {by_id[i].step}"
                              + (f" · trigger “{by_id[i].trigger}”" if by_id[i].trigger else "")
                              + (" · 🧪 demo" if by_id[i].is_demo else ""))
    specs = []
    for i in chosen:
        scale = st.slider(f"Scale of {plain(by_id[i].name)}", 0.0, 2.0, 1.0, 0.05, key=f"generate_lora_scale_{i}")
        specs.append(LoraSpec(by_id[i].path, float(scale), by_id[i].name))
    return tuple(specs)


def use_seed(seed: int) -> None:
    """Button callback: put an image's seed into the form (runs before the form's widgets are created)."""
    st.session_state["generate_seed"] = int(seed)
    st.session_state["generate_n"] = 1


def gallery(batch: str, limit: int = 24) -> None:
    from workbench.db import session_scope
    from workbench.generate.tables import Generation

    with session_scope() as s:
        rows = (s.query(Generation).filter(Generation.batch == batch).order_by(Generation.id.desc()).limit(limit)
                .all())
    if not rows:
        st.caption("No images in this batch yet.")
        return
    cols = st.columns(4)
    for i, row in enumerate(rows):
        with cols[i % 4]:
            st.image(row.image_path, width="stretch")
            score = f" · CLIP {row.clip_score:.3f}" if row.clip_score is not None else ""
            kept = "" if row.kept else " · not kept"
            st.caption(f"seed {row.seed} · attempt {row.attempt}{score}{kept}"
                       + (" · 🧪 demo" if row.demo_model else ""))
            left, right = st.columns(2)
            with open(row.image_path, "rb") as f:
                left.download_button("Download", f.read(), file_name=row.image_path.rsplit("/", 1)[-1],
                                     mime="image/png", key=f"generate_dl_{row.id}")
            right.button("Use this seed", key=f"generate_seed_{row.id}", on_click=use_seed, args=(row.seed,),
                         help="Put this seed in the form to vary the prompt on the same composition.")


def is_demo(ref: str) -> bool:
    from workbench.models.sources import is_demo_model

    return is_demo_model(ref)


def batch_config(spec: PipelineSpec, prompt_batch_id: int, size: int | None = None, steps: int | None = None):
    """The ``BatchConfig`` of the page's "Queue the batch" (size and steps from the one-prompt form)."""
    from workbench.generate.batch import BatchConfig

    size = size or st.session_state.get("generate_size") or native_size(spec.model)
    steps = steps or st.session_state.get("generate_steps", 30)
    return BatchConfig(spec=spec, prompt_batch_id=prompt_batch_id, batch=f"prompts-{prompt_batch_id}",
                       params={"width": size, "height": size, "steps": steps})


def _product_prompt(sku: str | None):
    """The product's prompt (``generate.product.product_prompt``), or None with the error shown."""
    from workbench.generate.product import product_prompt
    from workbench.products import ProductError
    from workbench.prompts import PromptError

    if not sku:
        return None
    try:
        return product_prompt(sku)
    except (ProductError, PromptError) as exc:
        st.error(plain(exc))
        return None


def _fill_product_prompt() -> None:
    """Selectbox callback (runs before the form is drawn): the chosen product's prompt and negative into the form."""
    pp = _product_prompt(st.session_state.get("generate_product"))
    if pp is not None:
        st.session_state["generate_prompt"], st.session_state["generate_negative"] = pp.prompt, pp.negative


def product_picker(spec: PipelineSpec):
    """Generate for a product: pick a SKU; its prompt fills the form and its newest finished LoRA is added at scale
    1.0. Returns (the ProductPrompt or None, the spec with that LoRA)."""
    from dataclasses import replace

    from workbench.products import list_products

    products = {p.sku: p for p in list_products(limit=1000)}
    if not products:
        return None, spec
    sku = st.selectbox("Product (SKU)", [None, *products], key="generate_product", on_change=_fill_product_prompt,
                       format_func=lambda k: "— none: a free prompt —" if k is None
                       else f"{k} · {products[k].name or products[k].category}",
                       help="The prompt is built from the product's template, attributes, brand and LoRA token; "
                            "its images are linked to the SKU and checked against its photos.")
    pp = _product_prompt(sku)
    if pp is None:
        return None, spec
    if pp.lora and pp.lora.path not in {x.path for x in spec.loras}:
        spec = replace(spec, loras=(*spec.loras, pp.lora))
    st.caption(plain(f"template {pp.template or '—'} · brand {pp.brand or '—'} · "
                     + (f"LoRA {pp.lora.name} at scale 1.0 (token {pp.token})" if pp.lora else "no product LoRA yet")))
    return pp, spec


def single_prompt_form(spec: PipelineSpec, user: str) -> None:
    """Typed prompt (or a product's) -> N images in the page as ``user`` (the library checks the role), with
    progress; the gallery shows them with seeds. Images made for a product are fidelity-checked."""
    from workbench.generate.pipeline import GenerationError
    from workbench.generate.sample import GenerationParams, generate
    from workbench.models.sources import ModelUnavailable

    pp, spec = product_picker(spec)

    with st.form("generate_form"):
        prompt = st.text_area("Prompt", key="generate_prompt")
        negative = st.text_input("Negative prompt", key="generate_negative")
        c1, c2, c3, c4, c5 = st.columns(5)
        # no value= here: "Use this seed" sets these two through session state (defaults are the minimums)
        n = c1.number_input("Images", 1, 16, key="generate_n")
        seed = c2.number_input("Seed", 0, 2**32 - 1, key="generate_seed")
        steps = c3.number_input("Steps", 1, 100, 30, key="generate_steps")
        guidance = c4.number_input("Guidance", 0.0, 20.0, 5.0, key="generate_guidance")
        native = native_size(spec.model)  # the demo model draws at 64 px, SDXL at 1024
        sizes = sorted({1024, 768, 512, 256, 64, native}, reverse=True)
        size = c5.selectbox("Size", sizes, index=sizes.index(native), key="generate_size",
                            help=f"This model was built for {native}×{native}.")
        go = st.form_submit_button("Generate", type="primary")
    if go:
        try:
            params = GenerationParams(prompt=prompt, negative_prompt=negative, width=size, height=size,
                                      steps=int(steps), guidance=float(guidance), seed=int(seed), num_images=int(n))
            params.check()
            assembled = assembled_pipeline(spec)
            bar = st.progress(0.0, text="Generating…")
            paths, held = [], []
            for i in range(params.num_images):
                from dataclasses import replace

                one = replace(params, seed=params.seed + i, num_images=1)
                if pp is not None:
                    from workbench.generate.product import generate_for_product

                    out = generate_for_product(assembled, pp.sku, replace(one, brand=pp.brand, template=pp.template),
                                               batch="page", user=user, brand=pp.brand or None)
                    img = out.images[0]
                    held += [c.reason for c in out.checks if c.passed is False]
                else:
                    img = generate(assembled, one, batch="page", user=user)[0]
                paths.append(str(img.path))
                bar.progress((i + 1) / params.num_images, text=f"{i + 1}/{params.num_images} images")
            st.session_state[K_LAST] = paths
            for reason in held:
                st.warning(f"Held for review: {plain(reason)}")
        except (GenerationError, ModelUnavailable) as exc:
            st.error(plain(exc))
    if st.session_state.get(K_LAST):
        st.success(f"{len(st.session_state[K_LAST])} image(s) saved with their provenance and sent to review.")
    gallery("page")
