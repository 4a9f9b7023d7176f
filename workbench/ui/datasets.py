"""Datasets page widgets: dataset picker, thumbnail grid with filters, item detail, stats, duplicates, caption tools,
import and preprocess/split forms. Widget and state keys start with ``datasets_``.

Every view reads one page or one aggregate from ``workbench.data.store``, so rendering costs the same for 200 or
20,000 items; thumbnails come from ``workspace/thumbs`` (made at import, re-made on demand).
"""
from __future__ import annotations


import numpy as np
import streamlit as st

from workbench.data import store
from workbench.ui.common import code_span, plain
from workbench.ui.shop import render_shop_import
from workbench.ui import trash as trash_ui
from workbench.ui.state import StateKeys

K_DATASET = "datasets_dataset_id"
K_PICK = "datasets_pick"
K_PICK_NEXT = "datasets_pick_next"
K_ITEM = "datasets_selected_item"
K_PAGE = "datasets_page"
K_VIEW = "datasets_view"
K_LAST_REPORT = "datasets_last_report"
K_CAPTION_JOB = "datasets_caption_job"
VIEWS = ("Browse", "Stats", "Duplicates", "Captions", "Import", "Preprocess & split")
PER_PAGE = 24
COLS = 6
# Quality flags in plain words (the stored keys are for the CLI and filters).
FLAG_LABELS = {"tiny": "small image", "extreme_aspect": "very wide or tall", "no_caption": "no caption",
               "caption_fields_missing": "caption has gaps", "exact_duplicate": "exact duplicate",
               "near_duplicate": "near duplicate", "excluded": "excluded"}


def flag_label(flag: str) -> str:
    return FLAG_LABELS.get(flag, flag.replace("_", " "))


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@st.cache_data(ttl=30, show_spinner=False)
def dataset_summaries(workspace: str) -> list[store.DatasetSummary]:
    """Item/flag counts per dataset (an aggregate over all items: cached, cleared by every edit made here)."""
    return store.list_datasets()


@st.cache_data(ttl=30, show_spinner=False)
def _filter_options(workspace: str, dataset_id: int) -> dict[str, list[str]]:
    return store.filter_options(dataset_id)


def changed() -> None:
    """Forget cached aggregates after an edit, import or split."""
    dataset_summaries.clear()
    _filter_options.clear()


def init_state() -> None:
    st.session_state.setdefault(K_PAGE, 1)
    st.session_state.setdefault(K_ITEM, None)


def user() -> str:
    """The signed-in user (the page's ``require_login``); every edit below is checked again by the library."""
    return st.session_state.get(StateKeys.USER, "")


# -- empty workspace -------------------------------------------------------------------------------------------------

def empty_workspace() -> None:
    st.info("**No datasets yet.** Import a folder, zip, attribute CSV or Hugging Face dataset below, or create the "
            "demo catalog: an invented brand's garments drawn offline, with an attribute CSV.")
    if st.button("Create the demo catalog", key="datasets_demo_btn", type="primary"):
        from workbench.data.demo import import_demo_catalog

        with st.spinner("Drawing and importing the demo catalog…"):
            report = import_demo_catalog(user())
        show_dataset(report.dataset_id)
        st.session_state[K_LAST_REPORT] = report.summary()
        changed()
        st.rerun()
    import_form()


def show_dataset(dataset_id: int) -> None:
    """Make the picker show ``dataset_id`` on the next run (the one just imported)."""
    st.session_state[K_DATASET] = dataset_id
    st.session_state[K_PICK_NEXT] = dataset_id  # a widget's own value can only be set before it is drawn


def pick_dataset(summaries: list[store.DatasetSummary]) -> store.DatasetSummary:
    ids = [d.id for d in summaries]
    wanted = st.session_state.pop(K_PICK_NEXT, None)
    if wanted in ids:
        st.session_state[K_PICK] = wanted
    if st.session_state.get(K_PICK) not in ids:
        st.session_state[K_PICK] = st.session_state.get(K_DATASET) if st.session_state.get(K_DATASET) in ids \
            else ids[-1]
    by_id = {d.id: d for d in summaries}
    chosen = st.selectbox("Dataset", ids, format_func=lambda i: f"{by_id[i].name} ({by_id[i].items} items)",
                          key=K_PICK)
    if chosen != st.session_state.get(K_DATASET):
        st.session_state[K_DATASET] = chosen
        st.session_state[K_PAGE] = 1
        st.session_state[K_ITEM] = None
    d = by_id[chosen]
    c = st.columns(4)
    c[0].metric("Items", d.items)
    c[1].metric("Captioned", d.captioned)
    c[2].metric("Flagged", d.flagged)
    c[3].metric("Excluded", d.excluded)
    return d


# -- delete, undo, restore (workbench.trash) ----------------------------------------------------------------------

def trash_banner() -> None:
    """"Deleted … [Undo]" after a delete on this page."""
    trash_ui.undo_banner("datasets", user(), on_done=changed)


def delete_view(d: store.DatasetSummary) -> None:
    """Delete the open dataset (type its name to confirm); it goes to the trash, restorable for the stated time."""
    trash_ui.delete_control("datasets", "dataset", str(d.id), d.name, lambda: store.delete_dataset(user(), d.id),
                            warning=plural(d.items, "photo"), on_done=changed)


def recently_deleted() -> None:
    trash_ui.recently_deleted("datasets", ["dataset"], user(), on_done=changed)


# -- browse --------------------------------------------------------------------------------------------------------

def filters(dataset_id: int) -> store.ItemFilter:
    from workbench.settings import get_settings

    opts = _filter_options(str(get_settings().workspace_dir), dataset_id)
    c = st.columns([1, 1, 1, 1, 1, 2])
    f = store.ItemFilter(
        category=c[0].selectbox("Category", [""] + opts["category"], key="datasets_f_category",
                                format_func=lambda v: v or "any"),
        brand=c[1].selectbox("Brand", [""] + opts["brand"], key="datasets_f_brand", format_func=lambda v: v or "any"),
        colour=c[2].selectbox("Colour", [""] + opts["colour"], key="datasets_f_colour",
                              format_func=lambda v: v or "any"),
        flag=c[3].selectbox("Flag", ["", "any", "none", "excluded"] + opts["flag"], key="datasets_f_flag",
                            format_func=lambda v: {"": "any or none", "any": "any flag",
                                                   "none": "no flag"}.get(v) or flag_label(v)),
        split=c[4].selectbox("Split", ["", "train", "val", "test", "none"], key="datasets_f_split",
                             format_func=lambda v: v or "any"),
        text=c[5].text_input("Search captions and file names", key="datasets_f_text"),
    )
    return f


def grid(dataset_id: int, filt: store.ItemFilter) -> None:
    page = store.query_items(dataset_id, filt, st.session_state[K_PAGE], PER_PAGE)
    st.session_state[K_PAGE] = page.page
    left, right = st.columns([3, 1])
    left.caption(f"{plural(page.total, 'item')} match{'es' if page.total == 1 else ''} · page {page.page} of "
                 f"{page.pages}")
    new_page = right.number_input("Page", 1, page.pages, page.page, key="datasets_page_input")
    if new_page != page.page:
        st.session_state[K_PAGE] = int(new_page)
        st.rerun()
    for row in range(0, len(page.items), COLS):
        cols = st.columns(COLS)
        for col, item in zip(cols, page.items[row:row + COLS]):
            with col:
                try:
                    st.image(str(store.ensure_thumbnail(item)), width="stretch")
                except (OSError, ValueError):
                    st.warning("image missing")
                label = ("🚫 " if item.excluded else "") + " · ".join(flag_label(f) for f in item.flags)
                st.caption(f"#{item.id} · {plain(item.caption[:60]) or '(no caption)'}")
                if label:
                    st.markdown(label)
                if st.button("Open", key=f"datasets_open_{item.id}"):
                    st.session_state[K_ITEM] = item.id
                    st.rerun()


def item_detail(item_id: int) -> None:
    try:
        item = store.get_item(item_id)
    except store.DatasetError:
        st.session_state[K_ITEM] = None
        return
    with st.container(border=True):
        left, right = st.columns([1, 2])
        left.image(str(store.image_path(item)), width="stretch")
        right.markdown(f"**Item {item.id}** · {code_span(item.source_key)} · {item.width}×{item.height} "
                       f"{plain(item.format)} {plain(item.mode)} · {item.file_size / 1024:.0f} KiB · "
                       + (f"{item.split} set" if item.split else "not in a split yet"))
        if item.flags:
            right.markdown("Flags: " + ", ".join(f"{flag_label(f)} ({store.FLAG_HELP.get(f, '')})"
                                                 for f in item.flags))
        text = right.text_area("Caption", item.caption, key=f"datasets_caption_edit_{item.id}", height=90)
        b = right.columns(3)
        if b[0].button("Save caption", key="datasets_caption_save", type="primary"):
            store.set_caption(user(), item.id, text)
            changed()
            st.toast("Caption saved")
            st.rerun()
        if b[1].button("Include" if item.excluded else "Exclude", key="datasets_exclude_toggle"):
            store.set_excluded(user(), [item.id], not item.excluded)
            changed()
            st.rerun()
        if b[2].button("Close", key="datasets_item_close"):
            st.session_state[K_ITEM] = None
            st.rerun()
        with right.expander("Attributes and hashes"):
            st.json({"attributes": item.attributes, "sha256": item.sha256, "phash": item.phash,
                     "colour": item.color, "caption source": item.caption_source, "source": item.source,
                     "duplicate group": item.dup_group})


# -- stats ---------------------------------------------------------------------------------------------------------

def _hist(values: list[int], bins: int = 12):
    """Counts of whole-number ``values`` in at most ``bins`` equal ranges of whole numbers, in order: a table with
    "range" ("126" for a one-number range, "120–131" otherwise) and "items"."""
    import pandas as pd

    if not values:
        return pd.DataFrame({"range": [], "items": []})
    lo, hi = int(min(values)), int(max(values))
    width = max(1, -(-(hi - lo + 1) // bins))  # ceil: every whole number in exactly one range
    starts = list(range(lo, hi + 1, width))
    counts = np.bincount((np.asarray(values, dtype=np.int64) - lo) // width, minlength=len(starts))
    labels = [str(a) if width == 1 else f"{a}–{a + width - 1}" for a in starts]
    return pd.DataFrame({"range": labels, "items": counts[:len(starts)].astype(int)})


def stats_view(dataset_id: int) -> None:
    from workbench.data import dedupe, images

    s = store.stats(dataset_id)
    a, b = st.columns(2)
    a.markdown("**Categories**")
    a.bar_chart({"items": s.categories}, horizontal=True)
    b.markdown("**Quality flags**")
    if s.flags:
        b.bar_chart({"items": {flag_label(f): n for f, n in s.flags.items()}}, horizontal=True)
    else:
        b.success("No flags.")
    from workbench.data.importer import tiny_threshold

    b.caption(f"small image: shorter side under {tiny_threshold()} px, a quarter of the base model's training "
              f"size · very wide or tall: beyond {images.MAX_ASPECT:.0f}:1 · near duplicate: nearly the same picture "
              f"(perceptual hash within {dedupe.NEAR_DISTANCE} bits) and colour")
    c, d = st.columns(2)
    c.markdown("**Resolution (shorter side, px)**")
    c.bar_chart(_hist([min(w, h) for w, h in zip(s.widths, s.heights)]), x="range", y="items", sort=False)
    d.markdown("**Caption length (words)**")
    d.bar_chart(_hist(s.caption_lengths), x="range", y="items", sort=False)
    names = {"train": "training", "val": "validation", "test": "test", "none": "not split"}
    st.caption("Splits: " + ", ".join(f"{names.get(k, k)} {v}" for k, v in s.splits.items()))


# -- duplicates ----------------------------------------------------------------------------------------------------

def duplicates_view(dataset_id: int) -> None:
    groups = store.duplicate_groups(dataset_id, limit=50)
    if not groups:
        st.success("No exact or near duplicates.")
        return
    st.caption(f"{len(groups)} groups. Choose the items to keep; the others are excluded from preprocessing and "
               "splits (reversible).")
    for g in groups:
        gid = g[0].dup_group
        with st.container(border=True):
            cols = st.columns(min(len(g), COLS))
            for col, item in zip(cols, g):
                col.image(str(store.ensure_thumbnail(item)), width="stretch")
                col.caption(f"#{item.id} {item.width}×{item.height} {item.format} "
                            f"{'(excluded)' if item.excluded else ''}")
            keep = st.multiselect("Keep", [i.id for i in g], default=[i.id for i in g if not i.excluded][:1],
                                  key=f"datasets_keep_{gid}")
            if st.button("Apply", key=f"datasets_resolve_{gid}"):
                n = store.resolve_group(user(), dataset_id, gid, keep)
                changed()
                st.toast(f"{n} excluded")
                st.rerun()


# -- captions ------------------------------------------------------------------------------------------------------

def captions_view(dataset_id: int) -> None:
    from workbench.settings import get_settings

    with st.form("datasets_blip_form"):
        st.markdown("**BLIP captions** (a background job)")
        mode = st.radio("Which items", ["uncaptioned", "all"], horizontal=True, key="datasets_blip_mode")
        prefix = st.text_input("Trigger prefix (optional)", placeholder="a photo of TOK woman",
                               key="datasets_blip_prefix")
        model = st.text_input("Captioner", get_settings().models.blip_captioner, key="datasets_blip_model")
        if st.form_submit_button("Start captioning"):
            from workbench.data.captioning import enqueue_caption

            st.session_state[K_CAPTION_JOB] = enqueue_caption(user(), dataset_id, mode, prefix, model)
    if st.session_state.get(K_CAPTION_JOB):
        from workbench.data.captioning import stop_caption
        from workbench.ui.jobs import job_panel

        job_panel(st.session_state[K_CAPTION_JOB], key="datasets_caption_job",
                  stop=lambda job_id: stop_caption(user(), job_id))
    a, b = st.columns(2)
    with a.form("datasets_replace_form"):
        st.markdown("**Find and replace** in every caption")
        find = st.text_input("Find", key="datasets_find")
        repl = st.text_input("Replace with", key="datasets_replace")
        regex = st.checkbox("Regular expression", key="datasets_regex")
        if st.form_submit_button("Replace"):
            try:
                st.success(f"{store.bulk_find_replace(user(), dataset_id, find, repl, regex)} captions changed")
                changed()
            except ValueError as exc:
                st.error(plain(exc))
    with b.form("datasets_prefix_form"):
        st.markdown("**Trigger prefix** on existing captions")
        prefix = st.text_input("Prefix", placeholder="a photo of TOK woman", key="datasets_prefix_text")
        if st.form_submit_button("Add prefix"):
            try:
                st.success(f"{store.apply_prefix(user(), dataset_id, prefix)} captions changed")
                changed()
            except ValueError as exc:
                st.error(plain(exc))


# -- import --------------------------------------------------------------------------------------------------------

def import_form() -> None:
    from workbench.data.captions import DEFAULT_TEMPLATE

    if st.session_state.get(K_LAST_REPORT):
        with st.expander("Last import", expanded=True):
            st.code(st.session_state[K_LAST_REPORT], language="text")
    with st.form("datasets_import_form"):
        st.markdown("**Import** a folder (imagefolder or kohya), an attribute CSV, a saved or parquet Hugging Face "
                    "dataset, a hub name, or upload a zip")
        path = st.text_input("Path or hub name", key="datasets_import_path",
                             placeholder="/data/styles.csv  ·  /data/photos  ·  hahminlew/kream-product-blip-captions")
        upload = st.file_uploader("…or a zip", type=["zip"], key="datasets_import_zip",
                                  help="Up to 2 GB (.streamlit/config.toml); for larger sets give the folder's path.")
        name = st.text_input("Dataset name (an existing name adds to it)", key="datasets_import_name")
        template = st.text_input("Caption template (attribute CSVs)", DEFAULT_TEMPLATE, key="datasets_import_template")
        submitted = st.form_submit_button("Import", type="primary")
    render_shop_import(user())
    if not submitted:
        return
    source = path.strip()
    uploaded = None
    if upload is not None:
        from workbench.data.uploads import save_upload

        uploaded = save_upload(upload, upload.name)  # a unique server-side name, removed after the import
        source = str(uploaded)
    if not source:
        st.error("Give a path or hub name, or upload a zip.")
        return
    from workbench.data.uploads import discard_upload
    from workbench.products.importing import import_catalog

    bar = st.progress(0.0, text="Reading the source…")

    def progress(done: int, total: int | None, message: str) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0, text=message)

    try:
        report = import_catalog(user(), source, name=name.strip() or None, template=template, progress=progress)
    except ValueError as exc:
        st.error(plain(exc))
        return
    finally:
        if uploaded is not None:
            discard_upload(uploaded)
    if report.dataset_id:
        show_dataset(report.dataset_id)
    st.session_state[K_LAST_REPORT] = report.summary()
    changed()
    st.rerun()


# -- preprocess and split ------------------------------------------------------------------------------------------

def training_size() -> int:
    """The image side the workspace's base model trains at (SDXL 1024, the demo model 64)."""
    from workbench.models.sources import native_size
    from workbench.settings import get_settings

    return native_size(get_settings().models.sdxl_base)


def preprocess_view(dataset_id: int) -> None:
    a, b = st.columns(2)
    with a.form("datasets_split_form"):
        st.markdown("**Split** train / val / test (stratified by category)")
        val = st.number_input("Validation fraction", 0.0, 0.5, 0.1, 0.05, key="datasets_split_val")
        test = st.number_input("Test fraction", 0.0, 0.5, 0.1, 0.05, key="datasets_split_test")
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="datasets_split_seed")
        if st.form_submit_button("Split"):
            from workbench.data.split import split_dataset

            try:
                res = split_dataset(user(), dataset_id, val, test, int(seed))
                changed()
                st.success(f"{res.counts} ({'stratified' if res.stratified else 'not stratified'})")
            except ValueError as exc:
                st.error(plain(exc))
    with b.form("datasets_prep_form"):
        st.markdown("**Preprocess** to a training-ready imagefolder")
        native = training_size()
        sizes = sorted({native, 512, 768, 1024})
        size = st.selectbox("Size (px)", sizes, index=sizes.index(native), key="datasets_prep_size",
                            help=f"The base model trains at {native} px: preprocess to that unless you know better.")
        mode = st.radio("Mode", ["crop", "pad", "bucket"], horizontal=True, key="datasets_prep_mode",
                        help="crop: centre square · pad: whole product on a square · bucket: SDXL aspect buckets")
        color = st.color_picker("Pad colour", "#ffffff", key="datasets_prep_color")
        go = st.form_submit_button("Preprocess")
    if go:
        from workbench.data.preprocess import PreprocessConfig, preprocess_dataset

        bar = st.progress(0.0)
        try:
            res = preprocess_dataset(user(), dataset_id, PreprocessConfig(size=size, mode=mode, pad_color=color),
                                     progress=lambda d, t, m: bar.progress(d / t, text=m))
        except ValueError as exc:
            st.error(plain(exc))
            return
        st.success(f"{plural(sum(res.counts.values()), 'image')} ready for training ("
                   + ", ".join(f"{k} {v}" for k, v in res.counts.items())
                   + f") · fingerprint `{res.result_hash[:16]}…`")
