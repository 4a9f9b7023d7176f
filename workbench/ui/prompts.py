"""The Prompts page's cached loaders, widgets and state keys. Widget keys start with ``prompts_``.

Each ``*_tab`` function draws one tab of ``pages/3_Prompts.py`` and calls only ``workbench.prompts``.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.prompts import Batch, BatchSpec, Library, PromptError, expand_batch, load_library, save_batch, store
from workbench.prompts.library import source_text, template_roots
from workbench.settings import Settings
from workbench.ui.common import code_span, plain
from workbench.ui.state import StateKeys

NO_BRAND = "(no brand)"
GENERATE_PAGE = Path(__file__).resolve().parents[2] / "pages" / "4_Generate.py"


class PromptsKeys:
    """Session-state keys of this page that are not widgets."""

    SAVED_BATCH = "prompts_saved_batch"  # (batch id, spec) the Build tab saved last
    AUTO_TEMPLATE = "prompts_auto_template"  # the template the brand chose (a brand change replaces only that one)


# -- cached loaders -----------------------------------------------------------------------------------------------


def _stamp(settings: Settings) -> tuple:
    """Names and modification times of every template file: the library reloads when an editor saves one."""
    return tuple((str(p), p.stat().st_mtime_ns) for root in template_roots(settings) if root.is_dir()
                 for p in sorted(root.rglob("*.y*ml")))


@st.cache_resource(show_spinner=False, max_entries=4)
def _library(workspace: str, stamp: tuple) -> Library:
    return load_library()


def library(settings: Settings) -> Library:
    return _library(str(settings.workspace_dir), _stamp(settings))


@st.cache_resource(show_spinner="Loading the CLIP tokenizer…")
def warm_tokenizer() -> None:
    from workbench.prompts.tokens import clip_tokenizer

    clip_tokenizer()


@st.cache_data(show_spinner="Expanding the batch…", max_entries=8)
def _expand(workspace: str, stamp: tuple, spec: dict) -> Batch:
    return expand_batch(load_library(), BatchSpec(**spec))


def user() -> str:
    """The signed-in user (the page's ``require_login``); every save below is checked again by the library."""
    return st.session_state.get(StateKeys.USER, "")


def show_problems(problems: list, title: str) -> None:
    st.error(title + "\n\n" + "\n".join(f"- {code_span(p)}" for p in problems))


# -- Build: template, slots, preview, batch -----------------------------------------------------------------------


def brand_template(lib: Library, brand_name: str | None) -> str:
    """The template a batch for ``brand_name`` starts from: the profile's ``product_template``, else the template of
    the brand's newest saved batch, else the first template."""
    names = list(lib.templates)
    brand = lib.brands.get(brand_name or "")
    if brand is not None and brand.product_template in lib.templates:
        return brand.product_template
    if brand is not None:
        used = next((b.template for b in store.list_batches() if b.brand == brand.name), None)
        if used in lib.templates:
            return used
    return names[0]


def build_tab(lib: Library, settings: Settings) -> None:
    left, right = st.columns([1, 2])
    names = list(lib.templates)
    brands = [NO_BRAND, *lib.brands]
    own_brand = lib.default_brand()
    if st.session_state.get("prompts_brand") not in brands:
        st.session_state["prompts_brand"] = own_brand or NO_BRAND
    if st.session_state.get("prompts_template") not in names:
        st.session_state["prompts_template"] = brand_template(lib, st.session_state["prompts_brand"])
        st.session_state[PromptsKeys.AUTO_TEMPLATE] = st.session_state["prompts_template"]

    def brand_changed() -> None:  # a new brand starts from its own template, unless the user chose one
        if st.session_state.get("prompts_template") == st.session_state.get(PromptsKeys.AUTO_TEMPLATE):
            st.session_state["prompts_template"] = brand_template(lib, st.session_state["prompts_brand"])
            st.session_state[PromptsKeys.AUTO_TEMPLATE] = st.session_state["prompts_template"]

    brand_name = left.selectbox("Brand profile", brands, key="prompts_brand", on_change=brand_changed,
                                format_func=lambda b: b if b == NO_BRAND else lib.brands[b].title)
    brand = None if brand_name == NO_BRAND else lib.brand(brand_name)
    name = left.selectbox("Template", names, format_func=lambda n: lib.templates[n].title, key="prompts_template")
    template = lib.template(name)
    scenes: list[str] = []
    if template.uses_scene:
        default = [template.default_scene] if template.default_scene else []
        scenes = left.multiselect("Scenes", list(lib.scenes), default=default, key=f"prompts_scenes_{name}",
                                  format_func=lambda s: lib.scenes[s].title)
    if template.description:
        left.caption(plain(template.description))

    slots: dict[str, list[str]] = {}
    for slot in template.slots.values():
        options = slot.allowed(brand.palette_names if brand else ())
        chosen = left.multiselect(slot.name.replace("_", " ").capitalize(), options, default=[slot.default],
                                  key=f"prompts_slot_{name}_{slot.name}", help=plain(slot.help) or None)
        if slot.allow_custom:
            custom = left.text_input(f"Other {slot.name}", key=f"prompts_custom_{name}_{slot.name}",
                                     placeholder="type a value of your own").strip()
            chosen = chosen + [custom] if custom else chosen
        slots[slot.name] = chosen

    warm_tokenizer()
    stamp = _stamp(settings)
    preview_spec = BatchSpec(name, slots={k: v[:1] for k, v in slots.items() if v}, scenes=scenes[:1],
                             brand=brand.name if brand else None)
    with right:
        st.subheader("Preview")
        try:
            variants = _expand(str(settings.workspace_dir), stamp, preview_spec.to_dict()).prompts
        except PromptError as exc:
            show_problems(exc.problems, "This combination cannot be rendered:")
            return
        preview = variants[0]
        st.code(preview.text, language=None, wrap_lines=True)
        if len(variants) > 1:
            st.caption(f"First of {len(variants)} variants from inline alternatives ({{a|b}}).")
        st.caption(f"Negative: {plain(preview.negative)}")
        st.metric("Tokens", f"{preview.tokens.total} / 77")
        for issue in preview.check.issues:
            st.warning(plain(issue))
        batch_builder(settings, stamp, BatchSpec(name, slots=slots, scenes=scenes,
                                                 brand=brand.name if brand else None))


def batch_builder(settings: Settings, stamp: tuple, spec: BatchSpec) -> None:
    st.subheader("Batch")
    c1, c2, c3 = st.columns(3)
    mode = c1.radio("Prompts", ["Every combination", "Random sample"], key="prompts_mode")
    if mode == "Random sample":
        spec.mode = "sample"
        spec.sample_size = int(c2.number_input("How many", 1, spec.cap, 20, key="prompts_sample_size"))
        spec.seed = int(c3.number_input("Seed", 0, 2**31 - 1, 0, key="prompts_seed"))
    try:
        batch = _expand(str(settings.workspace_dir), stamp, spec.to_dict())
    except PromptError as exc:
        show_problems(exc.problems, "The batch cannot be built:")
        return
    n = len(batch.prompts)
    st.write(f"**{n:,} prompt{'' if n == 1 else 's'}** from {batch.combinations:,} combinations · "
             f"{batch.duplicates_removed} duplicates removed · {batch.with_violations} break brand rules · "
             f"{batch.truncated} over 77 tokens")
    only_issues = st.toggle("Show only prompts with issues", key="prompts_only_issues")
    rows = [{"": "⚠️" if r["issues"] else "✓", **r} for r in batch.rows() if r["issues"] or not only_issues]
    st.dataframe(rows, hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 420),
                 column_config={"prompt": st.column_config.TextColumn(width="large")})

    c1, c2 = st.columns([3, 1])
    batch_name = c1.text_input("Batch name", key="prompts_batch_name", placeholder="e.g. SS26 tees, studio")
    if c2.button("Save to prompt library", key="prompts_save", type="primary", disabled=not batch.prompts):
        try:
            saved = save_batch(user(), batch, batch_name)
        except PromptError as exc:
            st.error(plain(exc))
        else:
            st.session_state[PromptsKeys.SAVED_BATCH] = (saved.id, spec.to_dict())
    saved_id, saved_spec = st.session_state.get(PromptsKeys.SAVED_BATCH, (None, None))
    if saved_id and saved_spec == spec.to_dict():  # only while the batch on screen is the one saved
        st.success(f"Saved as batch {saved_id}.")
        send_to_generate(saved_id, key="prompts_send_built")


def send_to_generate(batch_id: int, key: str) -> None:
    """A button that hands a saved batch to the Generate page (session state) and goes there: Generate opens its
    batch tab with this batch, its prompts, gate, image count and time estimate."""
    from streamlit.errors import StreamlitAPIException

    if st.button("Send to Generate", key=key, type="primary", icon="🎨"):
        st.session_state[StateKeys.PROMPT_BATCH] = batch_id
        st.session_state[StateKeys.PROMPT_BATCH_SENT] = True
        if GENERATE_PAGE.exists():
            try:
                st.switch_page("pages/4_Generate.py")
            except StreamlitAPIException:  # this page run on its own (not from Home.py): no page to switch to
                pass
        st.info(f"Batch {batch_id} is saved and ready: open the Generate page.")


# -- Library: saved batches, versions ----------------------------------------------------------------------------


def library_tab() -> None:
    batches = store.list_batches()
    if not batches:
        st.info("No saved batches yet: build one on the **Build** tab and save it.")
        return
    st.dataframe([{"id": b.id, "name": b.name, "template": b.template, "brand": b.brand or "no brand",
                   "prompts": b.size, "by": b.created_by, "created": f"{b.created_at:%Y-%m-%d %H:%M}"}
                  for b in batches],
                 hide_index=True, width="stretch")
    by_id = {b.id: b for b in batches}
    batch_id = st.selectbox("Batch", list(by_id), format_func=lambda i: f"{i} · {by_id[i].name}",
                            key="prompts_lib_batch")
    send_to_generate(batch_id, key="prompts_send_library")
    prompts = store.batch_prompts(batch_id)
    st.dataframe([{"id": p.id, "version": p.version, "status": p.status, "prompt": p.text,
                   "tokens": p.token_count + 2, "issues": "; ".join(p.issues)} for p in prompts],
                 hide_index=True, width="stretch", height=300)

    st.subheader("Refine a prompt")
    pid = st.selectbox("Prompt", [p.id for p in prompts], key="prompts_refine_id")
    history = store.prompt_history(pid)
    latest = history[-1]
    new_text = st.text_area("New text", value=latest.text, key=f"prompts_refine_text_{pid}")
    reason = st.text_input("Why", key="prompts_refine_reason", placeholder="e.g. logo came out blurry")
    if st.button("Save new version", key="prompts_refine_save"):
        try:
            store.refine(user(), latest.id, new_text, reason=reason)
        except PromptError as exc:
            st.error(plain(exc))
        else:
            history = store.prompt_history(pid)
    st.dataframe([{"version": p.version, "id": p.id, "from version": "" if p.parent_id is None else p.parent_id,
                   "status": p.status, "text": p.text, "by": p.created_by, "why": p.reason or "",
                   "issues": "; ".join(p.issues)} for p in history],
                 hide_index=True, width="stretch")


# -- editors: validate before saving -------------------------------------------------------------------------------

NEW = "(new)"
TEMPLATE_SKELETON = """kind: product
name: my-template
title: My template
text: "{trigger} {color} polo shirt, {scene}"
default_scene: studio-white
slots:
  color:
    values: [navy, white, "{olive|sand}"]
    default: navy
    palette: true
negative: "wrinkled fabric, distorted logo"
recommended: {width: 1024, height: 1024, steps: 30, guidance: 6.5}
"""
BRAND_SKELETON = """name: my-brand
title: My brand
trigger: mybrand_style
loras: [{name: my-brand-v1, scale: 0.8}]
logo_text: MYBRAND
palette: {navy: "#1F2A44"}
required_phrases: [photograph]
forbidden_terms: [knockoff]
negative: "watermark, blurry, lowres"
"""


def editor_tab(kind: str, items: dict, skeleton: str, parse, save, settings: Settings, can_save: bool = True,
               who_saves: str = "") -> None:
    """A YAML editor for templates (``kind="template"``) or brand profiles: Validate, then Save to the workspace as
    the signed-in user (``save(user, text, settings, name=…)`` checks the role). Without ``can_save`` the Save button
    is off, with ``who_saves`` as its help."""
    choice = st.selectbox(f"Edit {kind}", [NEW, *items], key=f"prompts_edit_{kind}")
    text = skeleton if choice == NEW else source_text(items[choice].path)
    st.caption(f"Saved in this workspace; a saved {kind} replaces a shipped one of the same name.")
    yaml_text = st.text_area("YAML", value=text, height=360, key=f"prompts_yaml_{kind}_{choice}")
    c1, c2 = st.columns(2)
    validate = c1.button("Validate", key=f"prompts_validate_{kind}")
    save_clicked = c2.button("Save", key=f"prompts_save_{kind}", type="primary", disabled=not can_save,
                             help=None if can_save else who_saves)
    if not (validate or save_clicked):
        return
    name = "" if choice == NEW else choice  # a shipped file may leave its name to its file name
    try:
        parse(yaml_text, "editor", name)
        if save_clicked:
            path = save(user(), yaml_text, settings, name=name)
    except PromptError as exc:
        show_problems(exc.problems, f"Not saved: the {kind} has problems." if save_clicked else "Problems:")
        return
    st.success(f"Saved {plain(Path(path).stem)} to this workspace." if save_clicked else f"The {kind} is valid.")



# -- brand profiles as a form --------------------------------------------------------------------------------------


def swatches(palette: dict[str, str]) -> str:
    """HTML colour swatches with their names (hex codes are checked by the profile format; names escaped)."""
    import html

    from workbench.prompts.brands import HEX_COLOUR

    return " ".join(
        f'<span style="display:inline-flex;align-items:center;gap:.3em;margin-right:1em">'
        f'<span style="display:inline-block;width:1.3em;height:1.3em;border-radius:3px;border:1px solid #8886;'
        f'background:{code}"></span>{html.escape(name)} <small>{code}</small></span>'
        for name, code in palette.items() if HEX_COLOUR.match(code))


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def brand_form_tab(lib: Library, settings: Settings, can_save: bool, who_saves: str) -> None:
    """The Brand profiles tab: a form over every field a marketer or admin changes (the same YAML, written by
    ``brands.brand_to_yaml`` and saved through ``save_brand_text``), the palette with swatches, and the YAML editor as
    an advanced view."""
    from dataclasses import replace

    import pandas as pd

    from workbench.prompts import BrandProfile, save_brand_text
    from workbench.prompts.brands import brand_to_yaml, parse_brand

    choice = st.selectbox("Brand profile", [NEW, *lib.brands], key="prompts_brandform_pick",
                          format_func=lambda b: "New profile" if b == NEW else lib.brands[b].title)
    base = BrandProfile(name="", title="", path="") if choice == NEW else lib.brands[choice]
    if base.palette:
        st.html(swatches(base.palette))
    k = f"prompts_brandform_{choice}"
    with st.form(k):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name (lowercase, used in file and batch names)", base.name, key=f"{k}_name",
                             disabled=choice != NEW)
        title = c2.text_input("Title", base.title, key=f"{k}_title")
        trigger = c3.text_input("Trigger token", base.trigger, key=f"{k}_trigger",
                                help="The word the brand's LoRA was trained on; templates put it in every prompt.")
        c1, c2 = st.columns([1, 2])
        logo = c1.text_input("Logo text", base.logo_text, key=f"{k}_logo",
                             help="What the logo check (OCR) must read on generated images.")
        negative = c2.text_input("Negative prompt", base.negative, key=f"{k}_negative")
        st.markdown("**Palette** (colour names marketers pick in the slots, with their hex codes)")
        palette = st.data_editor(
            pd.DataFrame({"colour": list(base.palette), "hex": list(base.palette.values())}, dtype=str),
            num_rows="dynamic", hide_index=True, key=f"{k}_palette",
            column_config={"colour": st.column_config.TextColumn("Colour name", required=True),
                           "hex": st.column_config.TextColumn("Hex code", required=True,
                                                              validate=r"^#[0-9A-Fa-f]{6}$")})
        c1, c2 = st.columns(2)
        required = c1.text_area("Required phrases (one per line)", "\n".join(base.required_phrases),
                                key=f"{k}_required", help="Every prompt of this brand must contain each one.")
        forbidden = c2.text_area("Forbidden terms (one per line)", "\n".join(base.forbidden_terms),
                                 key=f"{k}_forbidden", help="A prompt containing one is flagged and not generated.")
        st.markdown("**CLIP gate**: an image that matches its prompt less than the threshold is made again")
        c1, c2, c3 = st.columns(3)
        gate_on = c1.toggle("On by default on Generate", base.gate_defined, key=f"{k}_gate_on")
        threshold = c2.number_input("Threshold (CLIP similarity)", -1.0, 1.0, float(base.clip_threshold), 0.01,
                                    key=f"{k}_threshold")
        attempts = c3.number_input("Attempts at most", 1, 10, int(base.max_attempts), key=f"{k}_attempts")
        st.markdown("**Product fidelity** (images made for a product; leave a field empty for no limit)")
        c1, c2, c3, c4 = st.columns(4)
        delta_e = c1.number_input("Colour difference at most (ΔE)", 0.0, 100.0, base.max_delta_e, 0.5,
                                  key=f"{k}_delta_e")
        dino = c2.number_input("Likeness at least (DINO)", -1.0, 1.0, base.min_dino, 0.01, key=f"{k}_dino")
        shape = c3.number_input("Shape overlap at least (IoU)", 0.0, 1.0, base.min_shape_iou, 0.01, key=f"{k}_shape")
        templates = ["", *lib.templates]
        product_template = c4.selectbox(
            "Template for products", templates, key=f"{k}_product_template",
            index=templates.index(base.product_template) if base.product_template in templates else 0,
            format_func=lambda t: lib.templates[t].title if t else "the product's category")
        save = st.form_submit_button("Save brand profile", type="primary", disabled=not can_save,
                                     help=None if can_save else who_saves)
    if not can_save:
        st.caption(who_saves)
    if save:
        rows = palette.dropna(how="all").fillna("")
        profile = replace(
            base, name=name.strip(), title=title.strip() or name.strip(), trigger=trigger.strip(),
            logo_text=logo.strip(), negative=negative.strip(), required_phrases=_lines(required),
            forbidden_terms=_lines(forbidden), palette={str(r.colour).strip(): str(r.hex).strip().upper()
                                                        for r in rows.itertuples() if str(r.colour).strip()},
            gate_defined=gate_on, clip_threshold=float(threshold), max_attempts=int(attempts),
            max_delta_e=delta_e, min_dino=dino, min_shape_iou=shape, product_template=product_template)
        text = brand_to_yaml(profile)
        try:
            path = save_brand_text(user(), text, settings, name=profile.name)
        except PromptError as exc:
            show_problems([p.message if not p.field else f"{p.field}: {p.message}" for p in exc.problems],
                          "Not saved: the profile has problems.")
        else:
            st.success(f"Saved the brand profile {plain(Path(path).stem)} to this workspace.")
    with st.expander("Advanced: edit as YAML (keeps comments; also for LoRAs)"):
        editor_tab("brand profile", lib.brands, BRAND_SKELETON, parse_brand, save_brand_text, settings,
                   can_save=can_save, who_saves=who_saves)
