"""Generate page widgets: pipeline controls (with CPU offload, VAE tiling and a memory estimate), a cached pipeline,
a saved prompt version picker, the brand's CLIP gate, one-prompt generation, the batch view for a saved prompt batch
(its prompts, gate, image count and time estimate), and the user's results grouped per request, newest first.
Reads go through ``workbench.generate.reads`` (no table queries here).

The page's tabs are ``TABS`` (label -> what it draws): a new way to generate adds one entry there."""
from __future__ import annotations

import uuid

import streamlit as st

from workbench.generate.pipeline import (QUANTIZATION_MODES, SCHEDULERS, GenerationError, LoraSpec, PipelineSpec,
                                        estimate_memory_gib, parse_lora_arg)
from workbench.generate.speed import describe_measured
from workbench.models.sources import native_size
from workbench.settings import Settings
from workbench.ui import trash as trash_ui
from workbench.ui.common import open_tab, plain
from workbench.ui.state import StateKeys

K_TAB = "generate_tab"
TAB_ONE, TAB_BATCH = "One prompt", "Prompt batch"
K_LAST = "generate_last_paths"
K_ATTEMPTS = "generate_last_attempts"  # the gate's attempts of the last request: [{image, attempt, seed, score, kept}]
K_PICKED = "generate_picked_prompt"  # the id of the saved prompt version put into the form
K_JOB = "generate_job"  # the batch job queued last from this page
K_CLEARED = "generate_cleared_after"  # results with an id up to this one are hidden ("Clear older results")
K_MORE = "generate_more_groups"  # how many result groups are shown
GROUPS_SHOWN = 5


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
    o1, o2 = st.columns(2)
    offload = o1.checkbox("CPU offload", key="generate_cpu_offload",
                          help="Keep each model part in main memory and move it to the GPU only while it runs "
                               "(diffusers enable_model_cpu_offload): far less GPU memory, somewhat slower.")
    if offload and device != "cuda":
        o1.caption("CPU offload does nothing here: there is no GPU, the model already runs from main memory.")
    tiling = o2.checkbox("VAE tiling", key="generate_vae_tiling",
                         help="Decode the image in overlapping tiles (vae.enable_tiling): large images in less "
                              "memory; no effect on images smaller than one tile.")
    spec = PipelineSpec(model=model.strip(), loras=picked + typed, scheduler=scheduler, dtype=dtype,
                        quantization=quant, device=device, cpu_offload=offload, vae_tiling=tiling)
    est = estimate_memory_gib(spec)
    st.caption(f"Weights for full-size SDXL in this mode: ~{est['total_weights']:.1f} GiB "
               f"(UNet {est['unet']:.1f}, text encoders {est['text_encoders']:.1f}, VAE {est['vae']:.2f}); "
               "activations add ~2–4 GiB at 1024².")
    st.caption(describe_measured(spec.dtype, spec.quantization, spec.compile, spec.fuse_qkv))  # the GPU table
    return spec


def registered_loras_picker() -> tuple[LoraSpec, ...]:
    """Pick trained LoRAs by name, each with its scale."""
    from workbench.generate.reads import registered_loras

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


def arrive() -> None:
    """Before the tabs are drawn: a batch just sent from the Prompts page opens the batch tab with that batch."""
    if st.session_state.pop(StateKeys.PROMPT_BATCH_SENT, False):
        st.session_state["generate_batch_pick"] = st.session_state.get(StateKeys.PROMPT_BATCH)
        open_tab(K_TAB, TAB_BATCH)


def _when(t) -> str:
    return "" if t is None else f"{t:%Y-%m-%d %H:%M}"


def _short(text: str, n: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n - 1].rstrip(" ,") + "…"


def _seeds(seeds: list[int]) -> str:
    if not seeds:
        return ""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds[:6])) + ("…" if len(seeds) > 6 else "")


def batch_title(group) -> str:
    """"Batch “SS26 tees” (job 12)" for a job from a saved prompt batch, else what the group is."""
    from workbench.prompts import PromptError
    from workbench.prompts.store import get_batch

    name = ""
    if group.batch.startswith("prompts-") and group.batch[8:].isdigit():
        try:
            name = get_batch(int(group.batch[8:])).name
        except PromptError:  # deleted since
            name = ""
    job = f"job {group.job_id}" if group.job_id else ""
    if name:
        return f"batch “{plain(name)}”" + (f" ({job})" if job else "")
    if group.batch == "page":
        return "on this page"
    return f"batch {plain(group.batch)}" + (f" ({job})" if job else "")


def group_label(group) -> str:
    kept = group.kept
    n = len(kept)
    what = (f"“{plain(_short(group.prompts[0], 60))}”" if len(group.prompts) == 1
            else f"{len(group.prompts)} prompts")
    return f"{_when(group.started)} · {n} image{'' if n == 1 else 's'} · {what} · {batch_title(group)}"


def settings_line(group) -> str:
    st_ = group.settings
    loras = ", ".join(f"{plain(name)} × {scale}" for name, scale in st_["loras"]) or "none"
    parts = [f"model {plain(st_['model'])}" + (" 🧪 demo" if st_["demo_model"] else ""), f"LoRAs {loras}",
             f"{st_['width']}×{st_['height']}", f"{st_['steps']} steps", f"guidance {st_['guidance']}",
             plain(SCHEDULERS.get(st_["scheduler"], (None, None, st_["scheduler"]))[2])]
    if st_["quantization"] and st_["quantization"] != "none":
        parts.append(f"weights {plain(st_['quantization'])}")
    if st_["brand"]:
        parts.append(f"brand {plain(st_['brand'])}")
    if st_["gate_threshold"] is not None:
        parts.append(f"CLIP gate {st_['gate_threshold']}")
    if st_["products"]:
        parts.append("for " + ", ".join(plain(p) for p in st_["products"]))
    seeds = _seeds(group.seeds)
    return " · ".join(parts + ([seeds] if seeds else []))


def image_card(row, several_prompts: bool) -> None:
    from pathlib import Path

    if Path(row.image_path).is_file():
        st.image(row.image_path, width="stretch")
    else:
        st.caption("(the image file is gone)")
    score = f" · CLIP {row.clip_score:.3f}" if row.clip_score is not None else ""
    attempt = f" · attempt {row.attempt}" if row.attempt > 1 or not row.kept else ""
    kept = "" if row.kept else " · not kept"
    text = f"“{plain(_short(row.asked_prompt, 80))}” · " if several_prompts else ""
    st.caption(f"{text}seed {row.seed}{attempt}{score}{kept}" + (" · 🧪 demo" if row.demo_model else ""),
               help=None if not several_prompts else plain(row.asked_prompt))
    if not Path(row.image_path).is_file():
        return
    left, right = st.columns(2)
    path = Path(row.image_path)
    # read when clicked, not on every run: a page of full-size PNGs would otherwise be sent each time
    left.download_button("Download", lambda: path.read_bytes(), file_name=path.name, mime="image/png",
                         key=f"generate_dl_{row.id}")
    right.button("Use this seed", key=f"generate_seed_{row.id}", on_click=use_seed, args=(row.seed,),
                 help="Put this seed in the one-prompt form to vary the prompt on the same composition.")


def _clear(after_id: int) -> None:
    st.session_state[K_CLEARED] = after_id
    st.session_state[K_MORE] = GROUPS_SHOWN


def results(user: str) -> None:
    """The signed-in user's results, one group per request (a Generate click, a batch job) with its prompt and
    settings, newest first: the newest open, older ones collapsed; "Clear older results" hides all but the newest
    (for this session: nothing is deleted, every image stays in review)."""
    from workbench.generate.reads import result_groups

    trash_ui.undo_banner("generate", user)
    trash_ui.recently_deleted("generate", ["batch"], user)
    shown = st.session_state.get(K_MORE, GROUPS_SHOWN)
    groups = result_groups(user, limit=shown + 1, after_id=st.session_state.get(K_CLEARED, 0))
    more, groups = len(groups) > shown, groups[:shown]
    head, b1, b2 = st.columns([4, 1, 1])
    head.subheader("Your results")
    if not groups:
        st.caption("Nothing here yet: images you generate appear here, newest first, grouped per request."
                   + (" Older results are hidden (Clear)." if st.session_state.get(K_CLEARED) else ""))
        return
    b1.button("Clear older results", key="generate_clear_older", disabled=len(groups) < 2, on_click=_clear,
              args=(min(i.id for i in groups[0].images) - 1,),
              help="Hide every result but the newest (for this session; the images stay in review).")
    b2.button("Clear all", key="generate_clear_all", on_click=_clear,
              args=(max(i.id for i in groups[0].images),), help="Hide every result shown (for this session).")
    deletable = set()  # one Delete per batch: two jobs of one saved prompt batch write into the same batch
    for n, group in enumerate(groups):
        with st.expander(group_label(group), expanded=n == 0):
            st.caption(settings_line(group))
            if len(group.prompts) == 1:
                st.code(group.prompts[0], language=None, wrap_lines=True)
            cols = st.columns(4)
            for i, row in enumerate(group.images):
                with cols[i % 4]:
                    image_card(row, several_prompts=len(group.prompts) > 1)
            if group.job_id is not None and group.batch not in deletable:
                deletable.add(group.batch)
                delete_batch_control(group.batch, user)
    if more:
        st.button("Show older results", key="generate_show_more",
                  on_click=lambda: st.session_state.__setitem__(K_MORE, shown + GROUPS_SHOWN))




def delete_batch_control(batch: str, user: str) -> None:
    """Delete a batch job's whole batch (every image in it, whoever asked; the count says how many), to the trash."""
    from workbench.generate.deletion import batch_summary, delete_batch
    from workbench.generate.pipeline import GenerationError

    try:
        summary = batch_summary(batch)
    except GenerationError:
        return
    trash_ui.delete_control("generate", "batch", batch, batch, lambda: delete_batch(user, batch),
                            warning=summary.warning())


def is_demo(ref: str) -> bool:
    from workbench.models.sources import is_demo_model

    return is_demo_model(ref)


def batch_config(spec: PipelineSpec, prompt_batch_id: int, size: int, steps: int, gate: dict | None = None,
                 num_images: int = 1, seed: int = 0, guidance: float = 5.0):
    """The ``BatchConfig`` of the batch view's "Queue" (``gate``: None for no gate, else the overrides of
    ``gate_controls``, {} meaning each prompt's brand gate). Image ``i`` of every prompt gets seed ``seed + i``."""
    from workbench.generate.batch import BatchConfig

    return BatchConfig(spec=spec, prompt_batch_id=prompt_batch_id, batch=f"prompts-{prompt_batch_id}",
                       params={"width": int(size), "height": int(size), "steps": int(steps),
                               "guidance": float(guidance), "num_images": int(num_images), "seed": int(seed)},
                       gate=gate)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def time_estimate(spec: PipelineSpec, size: int, steps: int, images: int, attempts: int) -> str:
    """How long the batch should take, from images made here at this size (``reads.seconds_per_image``), or an honest
    "unknown" until there are some."""
    from workbench.generate.reads import seconds_per_image

    measured = seconds_per_image(spec.model, size, size, steps)
    if measured is None:
        return ("Time: unknown until this machine has made two images of this model at this size; the job shows its "
                "progress and the first images tell.")
    per_image, n = measured
    low, high = per_image * images, per_image * images * attempts
    span = _duration(low) if attempts == 1 else f"{_duration(low)}–{_duration(high)} (gate retries)"
    return (f"Time: about {span}, plus loading the model ({per_image:.1f} s per image here, the median of {n} "
            f"measurement{'' if n == 1 else 's'} at {size}×{size}).")


def _batch_choices() -> dict:
    from workbench.prompts import PromptError
    from workbench.prompts.store import get_batch, list_batches

    batches = {b.id: b for b in list_batches(limit=50)}
    sent = st.session_state.get(StateKeys.PROMPT_BATCH)
    if sent and sent not in batches:
        try:
            batches[sent] = get_batch(sent)
        except PromptError:  # deleted since
            pass
    return batches


def batch_view(spec: PipelineSpec, user: str) -> None:
    """A saved prompt batch (the one sent from Prompts, or picked here): its prompts, the CLIP gate of its brand(s),
    images per prompt and seeds, how many images that makes, how long it should take, and the Queue button."""
    from workbench.generate.batch import enqueue_batch, plan, stop_batch
    from workbench.generate.guard import gate_for
    from workbench.prompts.store import batch_prompts
    from workbench.ui.jobs import job_panel

    batches = _batch_choices()
    if not batches:
        st.info("No saved prompt batches yet: build one on the **Prompts** page, save it and press *Send to "
                "Generate*; it opens here.")
        return
    if st.session_state.get("generate_batch_pick") not in batches:
        st.session_state["generate_batch_pick"] = next(iter(batches))
    batch_id = st.selectbox("Prompt batch", list(batches), key="generate_batch_pick",
                            format_func=lambda i: f"{batches[i].name or 'batch'} · {batches[i].size} prompts · "
                                                  f"{batches[i].brand or 'no brand'} · saved by "
                                                  f"{batches[i].created_by} {_when(batches[i].created_at)}")
    prompts = batch_prompts(batch_id)
    brand = batches[batch_id].brand
    st.dataframe([{"#": i + 1, "prompt": p.text, "negative": p.negative, "brand": p.brand or "—"}
                  for i, p in enumerate(prompts)], hide_index=True, width="stretch",
                 height=min(38 + 35 * len(prompts), 250), key="generate_batch_prompts",
                 column_config={"prompt": st.column_config.TextColumn(width="large")})
    gate = gate_controls(brand, "generate_batch")  # on by default when the batch's brand profile has a gate
    others = sorted({p.brand for p in prompts} - {brand})
    if gate is not None and others:  # each prompt goes through its own brand's gate
        st.caption("Other brands in this batch keep their own gates: " + "; ".join(
            f"{plain(b) or 'no brand'}: threshold {g.policy.threshold}, {g.policy.max_attempts} attempt(s)"
            for b, g in ((b, gate_for(b, gate.get("threshold"), gate.get("max_attempts"))) for b in others)))
    native = native_size(spec.model)
    c1, c2, c3, c4, c5 = st.columns(5)
    per_prompt = int(c1.number_input("Images per prompt", 1, 16, 1, key="generate_batch_n"))
    seed = int(c2.number_input("First seed", 0, 2**32 - 1, 0, key="generate_batch_seed",
                               help="Image i of every prompt uses this seed + i: the same seeds across prompts make "
                                    "them comparable; a new first seed makes new images."))
    steps = int(c3.number_input("Steps", 1, 100, 30, key="generate_batch_steps"))
    guidance = float(c4.number_input("Guidance", 0.0, 20.0, 5.0, key="generate_batch_guidance"))
    sizes = sorted({1024, 768, 512, 256, 64, native}, reverse=True)
    size = int(c5.selectbox("Size", sizes, index=sizes.index(native), key="generate_batch_size",
                            help=f"This model was built for {native}×{native}."))
    config = batch_config(spec, batch_id, size, steps, gate, per_prompt, seed, guidance)
    _, _, todo, done = plan(config)
    new = sum((p.text, s) not in done for p, s in todo)
    attempts = max([gate_for(b, (gate or {}).get("threshold"), (gate or {}).get("max_attempts")).policy.max_attempts
                    for b in {p.brand for p in prompts}] or [1]) if gate is not None else 1
    st.markdown(f"**{len(prompts)} prompt{'' if len(prompts) == 1 else 's'} × {per_prompt} = {len(todo)} image"
                f"{'' if len(todo) == 1 else 's'}**" + (f" · {len(todo) - new} already made with these seeds (skipped)"
                                                        if new < len(todo) else ""))
    st.caption(time_estimate(spec, size, steps, new, attempts) if new else
               "Every image of this batch with these seeds is made already: pick another first seed for new ones.")
    if st.button(f"Queue {new} image{'' if new == 1 else 's'}", key="generate_queue_batch", type="primary",
                 disabled=not new):
        st.session_state[K_JOB] = enqueue_batch(user, config, title=f"generate prompts-{batch_id}")
    if st.session_state.get(K_JOB):
        job_panel(st.session_state[K_JOB], key="generate", stop=lambda job_id: stop_batch(user, job_id))


@st.cache_resource(show_spinner="Loading the CLIP scorer…", max_entries=1)
def clip_scorer(ref: str, device: str):
    from workbench.generate.guard import ClipScorer

    return ClipScorer.from_ref(ref, device)


def brand_names() -> list[str]:
    from workbench.prompts import load_library

    return sorted(load_library().brands)


def gate_controls(brand: str, key: str) -> dict | None:
    """The CLIP gate for prompts of ``brand``: on by default when its profile has a ``gate:`` section, threshold and
    attempts prefilled from it. Returns None (gate off) or the user's overrides ({} = the brand's own values)."""
    from workbench.generate.guard import GatePolicy, brand_profile

    profile = brand_profile(brand)
    base = GatePolicy.for_brand(profile)
    c1, c2, c3 = st.columns([2, 1, 1])
    # keys name the brand: picking another brand shows that brand's values, not the last ones typed
    on = c1.checkbox("CLIP gate: regenerate images that match the prompt poorly",
                     value=bool(profile and profile.gate_defined), key=f"{key}_gate_{brand}")
    threshold = c2.number_input("CLIP threshold", -1.0, 1.0, float(base.threshold), 0.01, disabled=not on,
                                key=f"{key}_threshold_{brand}")
    attempts = c3.number_input("Attempts", 1, 10, int(base.max_attempts), disabled=not on,
                               key=f"{key}_attempts_{brand}")
    if profile and profile.gate_defined:
        c1.caption(f"Brand {plain(profile.title)}: threshold {base.threshold}, {base.max_attempts} attempt(s)"
                   + (f", trigger {plain(profile.trigger)} kept first" if profile.trigger else ""))
    else:
        c1.caption("No brand gate: the defaults" + (f" (brand {plain(brand)} defines none)" if brand else ""))
    if not on:
        return None
    overrides: dict = {}
    if abs(float(threshold) - base.threshold) > 1e-9:
        overrides["threshold"] = float(threshold)
    if int(attempts) != base.max_attempts:
        overrides["max_attempts"] = int(attempts)
    return overrides


def use_prompt_version(prompt_id: int) -> None:
    """Button callback: put a saved prompt version (text, negative, brand) into the form."""
    from workbench.prompts.store import get_prompt

    p = get_prompt(prompt_id)
    st.session_state["generate_prompt"] = p.text
    st.session_state["generate_negative"] = p.negative
    st.session_state["generate_brand"] = p.brand if p.brand in brand_names() else ""
    st.session_state[K_PICKED] = p.id


def saved_prompt_picker() -> None:
    """Pick a saved prompt and one of its versions (the Prompts page's library) and put it into the form."""
    from workbench.generate.reads import saved_prompts
    from workbench.prompts.store import prompt_history

    prompts = {p.id: p for p in saved_prompts()}
    if not prompts:
        return
    c1, c2, c3 = st.columns([3, 2, 1])
    pid = c1.selectbox("Saved prompt", [None, *prompts], key="generate_saved_prompt",
                       format_func=lambda i: "— type a prompt —" if i is None else
                       f"#{i} · {prompts[i].template or 'typed'} · {prompts[i].text[:70]}")
    if pid is None:
        return
    versions = {v.id: v for v in prompt_history(pid)}
    vid = c2.selectbox("Version", list(versions), index=len(versions) - 1, key=f"generate_saved_version_{pid}",
                       format_func=lambda i: f"v{versions[i].version} · {versions[i].reason or versions[i].status}")
    c3.button("Use this version", key="generate_use_version", on_click=use_prompt_version, args=(vid,))


def _source(prompt: str, negative: str):
    """The saved prompt version the form holds, if its text is still that version's (an edit makes it typed)."""
    from workbench.prompts.store import get_prompt

    picked = st.session_state.get(K_PICKED)
    if picked is None:
        return None
    p = get_prompt(picked)
    return p if (p.text, p.negative) == (" ".join(prompt.split()), negative) else None


def _attempts_table() -> None:
    rows = st.session_state.get(K_ATTEMPTS)
    if rows:
        st.caption("The CLIP gate: every attempt with its score; the kept one goes to review.")
        st.dataframe(rows, hide_index=True, key="generate_attempts_table")


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
    """Typed (or saved) prompt, or a product's -> N images in the page as ``user`` (the library checks the role),
    through the brand's CLIP gate when it is on (a product's images through its fidelity check instead), with
    progress; ``results`` shows them as one group with the prompt and settings."""
    from dataclasses import replace

    from workbench.generate.pipeline import GenerationError
    from workbench.generate.sample import GenerationParams, generate
    from workbench.models.sources import ModelUnavailable

    saved_prompt_picker()
    pp, spec = product_picker(spec)
    brands = ["", *brand_names()]
    brand = st.selectbox("Brand", brands, key="generate_brand", format_func=lambda b: b or "— none —",
                         help="The brand profile: recorded with each image; its CLIP gate and trigger token.")
    gate = gate_controls(brand, "generate_one") if pp is None else None  # a product's images: its fidelity check
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
            source = _source(prompt, negative)
            params = GenerationParams(prompt=prompt, negative_prompt=negative, width=size, height=size,
                                      steps=int(steps), guidance=float(guidance), seed=int(seed), num_images=int(n),
                                      brand=brand, prompt_id=source.id if source else None,
                                      template=source.template if source else "",
                                      prompt_version=source.version if source else None)
            params.check()
            assembled = assembled_pipeline(spec)
            scorer = None
            if gate is not None:
                from workbench.generate.guard import gate_for, generate_guarded
                from workbench.settings import get_settings

                policy = gate_for(brand, gate.get("threshold"), gate.get("max_attempts"))
                scorer = clip_scorer(policy.scorer or get_settings().models.clip_scorer, spec.device)
            bar = st.progress(0.0, text="Generating…")
            paths, attempts, held = [], [], []
            params = replace(params, request=f"page-{uuid.uuid4().hex[:12]}")  # this click: one result group
            for i in range(params.num_images):
                one = replace(params, seed=params.seed + i, num_images=1)
                if pp is not None:
                    from workbench.generate.product import generate_for_product

                    out = generate_for_product(user, assembled, pp.sku, replace(one, brand=pp.brand,
                                                                                template=pp.template),
                                               batch="page", brand=pp.brand or None)
                    img = out.images[0]
                    held += [c.reason for c in out.checks if c.passed is False]
                elif scorer is None:
                    img = generate(user, assembled, one, batch="page")[0]
                else:
                    [guarded] = generate_guarded(user, assembled, one, scorer, policy.policy, batch="page",
                                                 trigger=policy.trigger)
                    img = guarded.kept
                    attempts += [{"image": i + 1, "attempt": a.attempt, "seed": a.seed,
                                  "CLIP score": round(a.clip_score, 4), "kept": a.kept,
                                  "passed": a.clip_score >= policy.policy.threshold} for a in guarded.attempts]
                paths.append(str(img.path))
                bar.progress((i + 1) / params.num_images, text=f"{i + 1}/{params.num_images} images")
            st.session_state[K_LAST] = paths
            st.session_state[K_ATTEMPTS] = attempts
            for reason in held:
                st.warning(f"Held for review: {plain(reason)}")
        except (GenerationError, ModelUnavailable) as exc:
            st.error(plain(exc))
    if st.session_state.get(K_LAST):
        st.success(f"{len(st.session_state[K_LAST])} image(s) saved with their provenance and sent to review.")
    _attempts_table()
