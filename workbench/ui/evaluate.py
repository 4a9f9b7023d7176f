"""Evaluate page widgets: comparison table with intervals, charts (vs training step, vs a sweep parameter, base vs
fine-tuned), per-image drill-down, the per-product fidelity view, metric cards, CSV export and the new-evaluation form.

A metric whose model is missing reads "unavailable: <model id> — run `workbench models pull`" everywhere: its value
is never shown (``runs.result_rows`` blanks it). Widget keys start with ``evaluate_``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from workbench.ui.common import plain
from workbench.ui.labels import GROUPS, label

from workbench.evaluate import METRIC_CARDS, METRIC_GROUPS
from workbench.evaluate.config import EvalConfig, EvaluationError, ImageSet, ReferenceSet
from workbench.evaluate.results import export_csv, image_rows, list_evaluations, result_rows, status_of
from workbench.evaluate.run import start_evaluation

K_JOB = "evaluate_job_id"  # page-private state: the job of the evaluation started from this page


@st.cache_data(ttl=2, show_spinner=False)
def evaluations(workspace: str) -> list[dict]:
    return [{"id": e.id, "name": e.name, "status": status_of(e), "created": e.created_at.strftime("%Y-%m-%d %H:%M"),
             "sets": [s["label"] for s in (e.config or {}).get("image_sets", [])]} for e in list_evaluations(200)]


def choose_runs(rows: list[dict]) -> list[int]:
    labels = {r["id"]: f"#{r['id']} {r['name']} ({r['status']}, {r['created']})" for r in rows}
    done = [r["id"] for r in rows if r["status"] == "done"]
    return st.multiselect("Evaluations to compare", list(labels), default=done[:1] or list(labels)[:1],
                          format_func=labels.get, key="evaluate_runs")


def set_name(label_: str, batch: str | None) -> str:
    """One name per image set on this page: its label, with the generation batch it was made from when that differs
    (the demo's "demo LoRA" is the batch "demo-aurelo" on the Generate and Review pages)."""
    return label_ if not batch or batch == label_ else f"{label_} (batch {batch})"


def short_ref(ref: str | None) -> str:
    """A model reference as people read it: a hub id or ``torchvision:alexnet`` as it is, a folder on the server by
    its name only."""
    if not ref:
        return "?"
    return (Path(ref).name or ref) if ref.startswith(("/", "~", "./")) else ref


def _display(row: dict) -> str:
    text = row["display"]
    ref = (row["detail"].get("unavailable") or {}).get("ref") if row["status"] == "unavailable" else None
    return text.replace(ref, short_ref(ref)) if ref else text


def plain_error(exc: Exception) -> str:
    """The library's messages name its fields ("image_sets is empty"); the form says what to do instead."""
    import re

    text = str(exc)
    rules = [
        (r"^image_sets is empty.*", "Choose at least one image set (a generation batch) to evaluate."),
        (r"^metrics is empty$", "Choose at least one metric."),
        (r"^image set labels must be unique; repeated: (.*)", r"Two image sets have the same name (\1): rename one."),
        (r"^image set '(.*)' has no images \(batch '(.*)',.*", r"The batch “\2” has no kept images to evaluate."),
        (r"^reference dataset '(.*)' has no photos in (\w+).*",
         r"The reference dataset “\1” has no photos in its \2 split: split it on the Datasets page, or choose the "
         r"split “all”."),
    ]
    for pattern, replacement in rules:
        if re.match(pattern, text):
            return plain(re.sub(pattern, replacement, text))
    return plain(text[:1].upper() + text[1:])


def comparison(ids: list[int]) -> pd.DataFrame:
    """One row per (evaluation, image set), one column per metric: value [interval] · reliability, or unavailable."""
    rows = result_rows(ids)
    if not rows:
        st.info("These evaluations have no results yet (a queued or running job fills them in).")
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["set"] = [set_name(r["image_set"], r["detail"].get("batch")) for r in rows]
    df["shown"] = [_display(r) for r in rows]
    shown = df.assign(step=df["step"].map(lambda v: "—" if pd.isna(v) else str(int(v))),
                      evaluation=df["evaluation"].map(lambda v: f"#{v}"))
    wide = shown.pivot_table(index=["evaluation", "set", "step"], columns="title", values="shown",
                             aggfunc="first", sort=False).reset_index()
    wide.columns.name = None
    wide = wide.rename(columns={"evaluation": "Evaluation", "set": "Image set", "step": "Training step"})
    st.dataframe(wide.fillna("—"), hide_index=True, width="stretch")
    unreliable = df[(df["reliable"] == False) & (df["status"] == "ok")]  # noqa: E712 - pandas mask
    if not unreliable.empty:
        st.warning("Some set metrics are marked **unreliable: n=…** — too few images for FID "
                   "(~2,000 needed) or KID; read them with their bootstrap interval, not as a ranking.")
    demo = df[df["backbone_demo"]]
    if not demo.empty:
        st.warning("🧪 Some metrics used demo models (tiny kit): their numbers mean nothing.")
    st.download_button("Download CSV", export_csv(ids), file_name=f"evaluations-{'-'.join(map(str, ids))}.csv",
                       mime="text/csv", key="evaluate_csv")
    return df


UNRELIABLE = "unreliable (too few images)"


def small_multiples_frame(ok: pd.DataFrame, metrics: list[str], several_runs: bool) -> pd.DataFrame:
    """Long-form rows for the side-by-side charts: one per (metric, image set), with the interval and the
    reliability mark (``flag``: "unreliable: n=3" or "")."""
    d = ok[ok["metric"].isin(metrics)].copy()
    d["chart"] = [f"{label(m, short=True)} ({'higher' if METRIC_CARDS[m].higher_is_better else 'lower'} is better)"
                  for m in d["metric"]]
    d["bar"] = [f"#{e} {s}" if several_runs else s for e, s in zip(d["evaluation"], d["set"])]
    d["low"] = d["ci_low"].fillna(d["value"])
    d["high"] = d["ci_high"].fillna(d["value"])
    d["flag"] = [f"unreliable: n={int(n) if n == n else '?'}" if r is False else ""
                 for r, n in zip(d["reliable"], d["n"])]
    d["reliability"] = d["flag"].map(lambda f: UNRELIABLE if f else "reliable")
    return d[["chart", "metric", "bar", "value", "low", "high", "n", "flag", "reliability"]].reset_index(drop=True)


def small_multiples(d: pd.DataFrame) -> None:
    """Several metrics side by side, one small bar chart each (own y scale), intervals as error bars; an unreliable
    value's bar is faded with a dashed outline and labelled "unreliable: n=…"."""
    import altair as alt

    domain = ["reliable", UNRELIABLE]
    base = alt.Chart()
    bars = base.mark_bar(strokeWidth=1.5).encode(
        x=alt.X("bar:N", sort=None, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=160)),
        y=alt.Y("value:Q", title=None),
        opacity=alt.Opacity("reliability:N", title="", scale=alt.Scale(domain=domain, range=[1.0, 0.3])),
        stroke=alt.Stroke("reliability:N", title="", scale=alt.Scale(domain=domain, range=["transparent", "#555"])),
        strokeDash=alt.StrokeDash("reliability:N", title="", scale=alt.Scale(domain=domain, range=[[1, 0], [4, 3]])),
        tooltip=[alt.Tooltip("bar:N", title="image set"), alt.Tooltip("value:Q", format=".4g"),
                 alt.Tooltip("low:Q", format=".4g", title="interval low"),
                 alt.Tooltip("high:Q", format=".4g", title="interval high"), "n:Q", "reliability:N"])
    err = base.mark_errorbar().encode(x=alt.X("bar:N", sort=None), y=alt.Y("low:Q", title=None), y2="high:Q")
    text = base.mark_text(dy=-8, fontSize=10, color="#a33").encode(
        x=alt.X("bar:N", sort=None), y=alt.Y("high:Q"), text="flag:N")
    chart = alt.layer(bars, err, text, data=d).properties(width=170, height=170).facet(
        facet=alt.Facet("chart:N", title=None, sort=list(dict.fromkeys(d["chart"]))), columns=3,
    ).resolve_scale(y="independent", x="independent")
    st.altair_chart(chart, key="evaluate_multiples")


def charts(df: pd.DataFrame) -> None:
    """Several metrics side by side (small multiples, unreliable values marked); one metric vs training step and vs
    a sweep parameter; with intervals."""
    import altair as alt

    ok = df[(df["status"] == "ok") & df["value"].notna()]
    if ok.empty:
        return
    options = [m for m in METRIC_CARDS if m in set(ok["metric"])]
    several_runs = ok["evaluation"].nunique() > 1
    st.subheader("Metrics side by side")
    default = [m for m in options if m != "clip_score_100"][:6]  # CLIPScore repeats CLIP cosine on another scale
    picked = st.multiselect("Metrics to chart", options, default=default, format_func=label, key="evaluate_multi")
    if picked:
        small_multiples(small_multiples_frame(ok, picked, several_runs))
        st.caption("Bars: the value per image set; whiskers: its bootstrap interval. Faded bars with a dashed outline "
                   "are unreliable (too few images for the metric): read them with their interval, not as a ranking.")
    metric = st.selectbox("One metric in detail", options,
                          index=options.index("clip_cosine") if "clip_cosine" in options else 0,
                          format_func=label, key="evaluate_chart_metric")
    d = ok[ok["metric"] == metric].copy()
    d["low"] = d["ci_low"].fillna(d["value"])
    d["high"] = d["ci_high"].fillna(d["value"])
    title = label(metric, short=True)
    stepped = d[d["step"].notna()]
    if stepped["step"].nunique() >= 2:
        st.caption(f"{title} vs training step")
        line = alt.Chart(stepped).mark_line(point=True).encode(x=alt.X("step:Q", title="training step"),
                                                               y=alt.Y("value:Q", title=title))
        band = alt.Chart(stepped).mark_area(opacity=0.2).encode(x="step:Q", y=alt.Y("low:Q", title=title),
                                                                 y2="high:Q")
        st.altair_chart(band + line, width="stretch")
    else:
        st.caption(f"{title} vs training step: evaluate image sets from two or more checkpoints to see it.")
    params = sorted({k for p in d["params"] for k in (p or {})})
    if params:
        param = st.selectbox("Sweep parameter", params, format_func=label, key="evaluate_chart_param")
        d["param"] = d["params"].map(lambda p: (p or {}).get(param))
        pts = d[d["param"].notna()]
        st.altair_chart(alt.Chart(pts).mark_point(filled=True, size=80).encode(
            x=alt.X("param:O", title=label(param)), y=alt.Y("value:Q", title=title),
            tooltip=[alt.Tooltip("set:N", title="image set"), "value"]) +
            alt.Chart(pts).mark_errorbar().encode(x="param:O", y=alt.Y("low:Q", title=title), y2="high:Q"),
            width="stretch")


def drilldown(evaluation_id: int, limit: int = 12) -> None:
    """Images of one run sorted by any metric (worst first by default), with prompt, provenance and OCR overlay."""
    rows = image_rows(evaluation_id)
    if not rows:
        st.caption("No per-image results for this evaluation.")
        return
    df = pd.DataFrame(rows)
    metrics = [m for m in [*METRIC_CARDS, "ocr_score"] if m in df.columns and df[m].notna().any()]
    if not metrics:
        st.caption("No per-image scores (every per-image metric was unavailable).")
        return
    df["set"] = [set_name(s, (p or {}).get("batch")) for s, p in zip(df["image_set"], df["provenance"])]
    c1, c2, c3 = st.columns([2, 1, 1])
    sort = c1.selectbox("Sort by", metrics, format_func=label, key="evaluate_sort")
    card = METRIC_CARDS.get(sort)
    worst_first = c2.toggle("Worst first", value=True, key="evaluate_worst_first")
    sets = ["All image sets", *sorted(df["set"].unique())]
    chosen = c3.selectbox("Image set", sets, key="evaluate_drill_set")
    if chosen != sets[0]:
        df = df[df["set"] == chosen]
    ascending = worst_first == (card.higher_is_better if card else True)
    df = df.sort_values(sort, ascending=ascending, na_position="last")
    table_cols = ["set", "generation_id", "prompt", *metrics, "ocr_read"]
    table = df[[c for c in table_cols if c in df.columns]].rename(
        columns={c: "Image set" if c == "set" else label(c, short=True) for c in table_cols})
    st.dataframe(table.astype(object).where(table.notna(), "—"), hide_index=True, width="stretch",
                 key="evaluate_images_table")
    for _, r in df.head(limit).iterrows():
        with st.container(border=True):
            a, b, c = st.columns([1, 1, 2])
            if Path(r["image"]).is_file():
                a.image(r["image"], caption=f"image {r['generation_id'] or ''}", width="stretch")
            if r.get("ocr_overlay") and Path(r["ocr_overlay"]).is_file():
                b.image(r["ocr_overlay"], caption="OCR boxes", width="stretch")
            elif r.get("reference") and Path(r["reference"]).is_file():
                b.image(r["reference"], caption="product photo", width="stretch")
            value = r[sort]
            c.markdown(f"**{label(sort)}: {'—' if pd.isna(value) else f'{value:.4g}'}**")
            c.code(r["prompt"], language=None, wrap_lines=True)
            scores = {m: r[m] for m in metrics if not pd.isna(r[m])}
            c.caption(" · ".join(f"{label(m, short=True)} {v:.3g}" for m, v in scores.items()))
            prov = r["provenance"] or {}
            loras = ", ".join(f"{l.get('name') or short_ref(l.get('path'))} × {l.get('scale')}"
                              for l in prov.get("loras") or [])
            c.caption(plain(f"image set {r['set']} · model {short_ref(prov.get('model'))} · LoRAs {loras or 'none'} · "
                            f"seed {prov.get('seed', '—')} · "
                            f"training step {prov.get('step') if prov.get('step') is not None else '—'}"))


def _score(value: float | None, digits: int = 3) -> str:
    return "unavailable" if value is None else f"{value:.{digits}f}"


def products_view() -> None:
    """Per SKU: its generated images' fidelity (mean DINO, mean ΔE, shape IoU) and the gate's pass rate, worst first,
    with a chart (``products.fidelity_summary`` over ``fidelity_rows``)."""
    import altair as alt

    from workbench.evaluate.product_cards import FIDELITY_CARDS
    from workbench.products import fidelity_rows, fidelity_summary

    rows = fidelity_rows()
    if not rows:
        st.info("No image generated for a product has been checked yet: generate for a SKU on the **Generate** page "
                "(or `workbench generate run --product SKU`); each image is scored against the product's photos.")
        return
    summary = fidelity_summary(rows)
    table = pd.DataFrame([{
        "sku": p.sku, "images": p.images, "passed": p.passed, "failed": p.failed,
        "pass rate": "—" if p.pass_rate is None else f"{p.pass_rate:.0%}", "mean DINO": _score(p.mean_dino),
        "mean ΔE": _score(p.mean_delta_e, 1), "mean shape IoU": _score(p.mean_shape_iou)} for p in summary])
    st.dataframe(table, hide_index=True, width="stretch")
    missing = sorted({why for r in rows for why in (r.unavailable or {}).values()})
    for why in missing[:3]:
        st.caption(plain(why))
    if any(p.demo for p in summary):
        st.warning("🧪 Some scores used demo models (tiny kit): their DINO and CLIP-I numbers mean nothing.")
    chart = pd.DataFrame([{"sku": p.sku, "pass rate": p.pass_rate, "mean ΔE": p.mean_delta_e} for p in summary])
    left, right = st.columns(2)
    for col, field, title in ((left, "pass rate", "pass rate (worst first)"), (right, "mean ΔE", "mean colour ΔE")):
        d = chart[chart[field].notna()]
        if not d.empty:
            col.altair_chart(alt.Chart(d, title=title).mark_bar().encode(
                x=alt.X("sku:N", sort=None, title="SKU"), y=alt.Y(f"{field}:Q", title=field),
                tooltip=["sku", field]), width="stretch")
    st.caption(f"ΔE: {FIDELITY_CARDS['delta_e'].range}. Held images wait in **Review** with the reason.")


def metric_cards() -> None:
    """What each metric means, its range and direction, its caveats, and whether its model is here."""
    from workbench.models.sources import availability
    from workbench.settings import get_settings

    refs = get_settings().models.model_dump()
    for card in METRIC_CARDS.values():
        with st.expander(f"{card.title} — {'higher' if card.higher_is_better else 'lower'} is better"):
            st.markdown(f"{card.meaning}\n\n**Range:** {card.range} · **per** {card.per}\n\n"
                        f"**Caveats:** {card.caveats}")
            if card.backbone:
                ref = refs[card.backbone]
                a = availability(ref, card.backbone)
                if a.ok:
                    st.caption(f"model: {plain(short_ref(ref))} ✓ available")
                else:
                    st.caption(f"unavailable: {plain(short_ref(ref))} — run `workbench models pull`")
            else:
                st.caption("needs no model")


def new_evaluation_form(user: str) -> None:
    """Pick image sets (generation batches), a reference set and metrics; queue the evaluation job."""
    from workbench.data.store import list_datasets
    from workbench.generate.batch import batch_names

    batches = batch_names()
    if not batches:
        st.info("No generated images yet: make a batch on the **Generate** page, then evaluate it here.")
        return
    datasets = {d.name: d.id for d in list_datasets()}
    with st.form("evaluate_new"):
        name = st.text_input("Name", key="evaluate_new_name")
        chosen = st.multiselect("Image sets (generation batches)", batches, key="evaluate_new_batches")
        c1, c2 = st.columns(2)
        ref = c1.selectbox("Reference set", ["(none)", *datasets], key="evaluate_new_reference",
                           format_func=lambda d: "No reference set" if d == "(none)" else d,
                           help="A dataset's photos: FID/KID, closeness to the product photo, brand consistency.")
        split = c2.selectbox("Split", ["val", "test", "train", "all"], key="evaluate_new_split",
                             format_func={"val": "validation", "test": "test", "train": "training",
                                          "all": "all photos"}.get)
        metrics = st.multiselect("Metrics", list(METRIC_GROUPS), default=list(METRIC_GROUPS),
                                 format_func=lambda g: GROUPS.get(g, label(g)), key="evaluate_new_metrics")
        logo = st.text_input("Logo text (default: the brand profile's)", key="evaluate_new_logo")
        go = st.form_submit_button("Evaluate", type="primary")
    if go and not chosen:
        st.error("Choose at least one image set (a generation batch) to evaluate.")
    elif go and not metrics:
        st.error("Choose at least one metric.")
    elif go:
        try:
            reference = ReferenceSet(ref, None if split == "all" else split) if ref != "(none)" else None
            cfg = EvalConfig(image_sets=[ImageSet(label=b, batch=b) for b in chosen], name=name, metrics=metrics,
                             logo_text=logo, reference=reference)
            eval_id = start_evaluation(user, cfg)
        except EvaluationError as exc:
            st.error(plain_error(exc))
            return
        from workbench.evaluate.results import get_evaluation

        st.session_state[K_JOB] = get_evaluation(eval_id).job_id
        evaluations.clear()
        st.success(f"Evaluation {eval_id} queued.")
    if st.session_state.get(K_JOB):
        from workbench.ui.jobs import job_panel

        job_panel(st.session_state[K_JOB], key="evaluate")
