"""Training page widgets: the run form with presets and the estimate, the runs table, a run's view (curves,
validation grid, log, stop/resume), the sweep launcher and comparison. Logic lives in workbench.train."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from workbench.csvsafe import csv_text
from workbench.auth import AuthError
from workbench.train import estimate as est_mod
from workbench.ui import trash as trash_ui
from workbench.ui.common import open_tab, plain
from workbench.ui.labels import label
from workbench.train import runs
from workbench.train.config import ConfigError, build_config, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
K_RUN = "training_selected_run"
K_OPEN = "training_open"
K_TAB = "training_tab"
K_FLASH = "training_flash"
PRECISION_LABELS = {"no": "fp32 (no mixed precision)", "fp16": "fp16", "bf16": "bf16"}


def presets() -> dict[str, dict[str, Any]]:
    """The shipped example configs (configs/*.yaml) by name."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        try:
            out[path.stem] = load_config(path)
        except ConfigError as exc:  # a broken preset is shown, never fatal
            st.warning(plain(exc))
    return out


OPTION_LABELS = {"pretrained_model_name_or_path": "Base model", "pretrained_vae_model_name_or_path": "VAE",
                 "output_dir": "Output folder", "dataset": "Dataset", "instance_prompt": "Instance prompt",
                 "class_prompt": "Class prompt", "validation_prompts": "Validation prompts",
                 "checkpointing_steps": "Checkpoint every"}


def plain_problem(text: object) -> str:
    """A library message for people: the option name it starts with as the form's label ("pretrained_model_name_or_path
    'x': ..." -> "Base model 'x': ..."), and a capital letter. Escaped for markdown (``plain``)."""
    text = str(text)
    m = re.match(r"^([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b(.*)", text, re.S)
    if m:
        text = (OPTION_LABELS.get(m[1]) or label(m[1])) + m[2]
    return plain(text[:1].upper() + text[1:])


def flash(kind: str, message: str) -> None:
    st.session_state[K_FLASH] = (kind, message)


def show_flash() -> None:
    if K_FLASH in st.session_state:
        kind, message = st.session_state.pop(K_FLASH)
        getattr(st, kind)(message)


def _datasets() -> list[tuple[str, str]]:
    from workbench.data.store import list_datasets

    return [(str(d.id), f"{d.name} ({d.items} images, {d.captioned} captioned)") for d in list_datasets()]


# The form's widgets and the option each one sets: (TrainConfig option, value when the preset does not name it).
# Choosing a preset writes every one of them (K_KEEP keeps the fields the user edited); the widgets take their values
# from session state only, so a value a preset wrote is the value shown.
METHODS = ["Text-to-image LoRA (captions)", "DreamBooth-LoRA (instance prompt)"]
PRECISIONS = ["no", "fp16", "bf16"]
FORM_FIELDS: dict[str, tuple[str, Any]] = {
    "training_method": ("instance_prompt", None), "training_instance": ("instance_prompt", "a photo of TOK garment"),
    "training_class": ("class_prompt", ""), "training_steps": ("max_train_steps", 500),
    "training_lr": ("learning_rate", 1e-4), "training_rank": ("rank", 4), "training_batch": ("train_batch_size", 1),
    "training_res": ("resolution", 1024), "training_mp": ("mixed_precision", "no"),
    "training_ckpt": ("checkpointing_steps", 500), "training_gc": ("gradient_checkpointing", False),
    "training_8bit": ("use_8bit_adam", False), "training_te": ("train_text_encoder", False),
    "training_val": ("validation_prompts", None),
}
K_PRESET = "training_preset"
K_KEEP = "training_keep_edits"
K_APPLIED = "training_preset_applied"  # the values the last preset wrote: a field that differs was edited


def preset_form_values(preset: dict[str, Any]) -> dict[str, Any]:
    """What each form widget shows for a preset: every option the preset names, the form's default for the rest."""
    out: dict[str, Any] = {}
    for key, (option, default) in FORM_FIELDS.items():
        value = preset.get(option)
        out[key] = default if value is None else value
    out["training_method"] = METHODS[1] if preset.get("instance_prompt") else METHODS[0]
    out["training_instance"] = preset.get("instance_prompt") or FORM_FIELDS["training_instance"][1]
    out["training_class"] = preset.get("class_prompt") or ""
    prompts = preset.get("validation_prompts") or [preset.get("validation_prompt") or ""]
    out["training_val"] = "\n".join(p for p in prompts if p)
    for key in ("training_steps", "training_rank", "training_batch", "training_res", "training_ckpt"):
        out[key] = int(out[key])
    out["training_lr"] = float(out["training_lr"])
    for key in ("training_gc", "training_8bit", "training_te"):
        out[key] = bool(out[key])
    if out["training_mp"] not in PRECISIONS:
        out["training_mp"] = "no"
    return out


def apply_preset(preset: dict[str, Any], keep_edits: bool = False) -> list[str]:
    """Write a preset into the form's session state; with ``keep_edits`` the fields the user changed since the last
    preset stay. Returns the keys kept."""
    state = st.session_state
    applied = state.get(K_APPLIED) or {}
    kept = []
    for key, value in preset_form_values(preset).items():
        edited = key in state and key in applied and state[key] != applied[key]
        if keep_edits and edited:
            kept.append(key)
        else:
            state[key] = value
    state[K_APPLIED] = preset_form_values(preset)
    return kept


def _preset_chosen() -> None:
    shipped = presets()
    name = st.session_state.get(K_PRESET)
    if name in shipped:
        apply_preset(shipped[name], keep_edits=bool(st.session_state.get(K_KEEP)))


def _seed(key: str) -> None:
    """A widget not drawn on the last run (the DreamBooth fields) lost its state: give it the preset's value back."""
    if key not in st.session_state:
        st.session_state[key] = (st.session_state.get(K_APPLIED) or {}).get(key, FORM_FIELDS[key][1])


def run_form(settings, user: str) -> None:
    """Preset, data, method and the main options; the estimate; launch."""
    shipped = presets()
    names = list(shipped)
    if st.session_state.get(K_PRESET) not in names:
        demo = "tiny_cpu_demo" in names and settings.resolved_device() == "cpu"
        st.session_state[K_PRESET] = "tiny_cpu_demo" if demo else names[0]
    if K_APPLIED not in st.session_state:
        apply_preset(shipped[st.session_state[K_PRESET]])
    for key in FORM_FIELDS:
        _seed(key)
    top = st.columns([2, 1])
    preset_name = top[0].selectbox("Preset", names, key=K_PRESET, on_change=_preset_chosen,
                                   help="Example configs from configs/, named by GPU memory budget. Choosing one "
                                        "sets every option below that it names.")
    top[1].checkbox("Keep my edits", key=K_KEEP,
                    help="When you choose another preset, keep the fields you changed instead of the preset's values.")
    preset = dict(shipped[preset_name])
    datasets = _datasets()
    c1, c2 = st.columns([2, 1])
    with c1:
        choices = [d[0] for d in datasets] + ["folder"]
        labels = dict(datasets) | {"folder": "A folder on this machine…"}
        picked = st.selectbox("Dataset", choices, format_func=labels.get, key="training_dataset",
                              help="A workspace dataset (preprocessed for the run) or an imagefolder / kohya folder.")
        source = st.text_input("Folder", key="training_folder") if picked == "folder" else picked
    with c2:
        method = st.radio("Method", METHODS, key="training_method")
    values: dict[str, Any] = {k: v for k, v in preset.items()
                              if k not in ("dataset", "instance_data_dir", "train_data_dir")}
    values["dataset"] = source or None
    if method.startswith("DreamBooth"):
        d1, d2 = st.columns(2)
        values["instance_prompt"] = d1.text_input("Instance prompt", key="training_instance")
        values["class_prompt"] = d2.text_input("Class prompt (prior preservation)", key="training_class") or None
        values["with_prior_preservation"] = bool(values["class_prompt"])
    else:
        for k in ("instance_prompt", "class_prompt", "with_prior_preservation"):
            values.pop(k, None)
    with st.expander("Main options", expanded=True):
        o = st.columns(4)
        values["max_train_steps"] = o[0].number_input("Steps", 1, 100_000, key="training_steps")
        values["learning_rate"] = o[1].number_input("Learning rate", 1e-7, 1.0, format="%.1e", key="training_lr")
        values["rank"] = o[2].number_input("Rank", 1, 256, key="training_rank")
        values["train_batch_size"] = o[3].number_input("Batch size", 1, 64, key="training_batch")
        p = st.columns(4)
        values["resolution"] = p[0].number_input("Resolution", 64, 2048, step=64, key="training_res")
        values["mixed_precision"] = p[1].selectbox("Mixed precision", PRECISIONS, key="training_mp",
                                                   format_func=PRECISION_LABELS.get)
        values["checkpointing_steps"] = p[2].number_input("Checkpoint every", 1, 100_000, key="training_ckpt",
                                                          help="Steps between checkpoints (a stopped run resumes "
                                                               "from the last one).")
        values["gradient_checkpointing"] = p[3].checkbox("Gradient checkpointing", key="training_gc",
                                                         help="Less GPU memory, about 2x slower steps.")
        q = st.columns(4)
        values["use_8bit_adam"] = q[0].checkbox("8-bit Adam", key="training_8bit",
                                                help="Optimizer state in 8 bits: less GPU memory.")
        values["train_text_encoder"] = q[1].checkbox("Train text encoders", key="training_te")
        values["export_kohya"] = q[2].checkbox("A1111/ComfyUI file", True, key="training_kohya",
                                               help="Also write the LoRA in the kohya format A1111 and ComfyUI load.")
        values["run_name"] = q[3].text_input("Run name", "", key="training_name")
        prompts = st.text_area("Validation prompts (one per line; same seeds at every checkpoint)",
                               key="training_val", height=68)
        values["validation_prompts"] = [p.strip() for p in prompts.splitlines() if p.strip()]
        values.pop("validation_prompt", None)
    try:
        cfg = build_config(values, "in the form")
    except ConfigError as exc:
        st.error(plain_problem(exc))
        return
    problems = runs.preflight(cfg)
    estimate_panel(cfg)
    for p in problems:
        st.error(plain_problem(p))
    if st.button("Launch training", type="primary", key="training_launch", disabled=bool(problems)):
        try:
            run_id = runs.start(user, cfg)
        except (runs.RunError, ConfigError) as exc:
            st.error(plain_problem(exc))
            return
        st.session_state[K_RUN] = run_id
        flash("success", f"Run {run_id} queued. It runs in the background: closing the browser does not stop it.")
        open_tab(K_TAB, "Runs")
        st.rerun()


def _measure_key(cfg) -> str:
    return json.dumps([est_mod._base(cfg), cfg.resolution, cfg.train_batch_size, cfg.with_prior_preservation,
                       cfg.rank, cfg.gradient_checkpointing, cfg.gradient_accumulation_steps])


def estimate_panel(cfg) -> None:
    gpu = est_mod.detect_gpu()
    plan = None
    if gpu is None and not est_mod._is_demo(cfg):
        plan = st.number_input("No GPU here: plan for a GPU with (GiB)", 8, 192, 24, key="training_plan_gib")
    est = est_mod.estimate(cfg, gpu_gib=plan)
    on_cpu = gpu is None and est.peak_gib is None  # a model that trains here, on CPU: time depends on this machine
    with st.container(border=True):
        if on_cpu:
            st.markdown("**Estimate** — " + est.basis)
            _cpu_time(cfg)
        else:
            st.markdown(f"**Estimate** — {est.summary()}")
        if est.gpu is not None and est.fits is not None and not on_cpu:
            card = (f"a {est.gpu.total_gib:g} GiB GPU" if plan else f"{est.gpu.name} ({est.gpu.total_gib:.0f} GiB)")
            (st.success if est.fits else st.warning)(f"Fits {card}." if est.fits else f"Does not fit {card}.")
        for note in est.notes:
            if not (on_cpu and note.startswith("time scaled")):  # the table's CPU time is not this machine's
                st.caption(plain_problem(note))
        if est.suggestions:
            st.markdown("To make it fit, change:\n" + "\n".join(f"- {plain_problem(s)}" for s in est.suggestions))
        if est.gpu is not None and est.peak_gib is not None:
            st.caption(f"From the table measured on {est.device} (docs/PERFORMANCE.md); other GPUs are slower or "
                       "faster.")


def _cpu_time(cfg) -> None:
    """Time on this machine: measured here on request (a few steps of the run's UNet), else unknown until the run's
    first steps (a table measured on other, idle cores was 45x off on a busy machine)."""
    measured = st.session_state.setdefault("training_measured", {})
    key = _measure_key(cfg)
    c1, c2 = st.columns([3, 1])
    if c2.button("Measure here", key="training_measure",
                 help="Times a few training steps of this model at these settings on this machine (seconds)."):
        with st.spinner("Timing a few steps on this machine…"):
            try:
                measured[key] = est_mod.measure_step(cfg, steps=2)
            except Exception as exc:  # noqa: BLE001 - a failed measurement leaves the time unknown, said so
                measured[key] = None
                st.caption(f"Could not measure: {plain(exc)}")
    s = measured.get(key)
    if s:
        c1.markdown(f"Time: **{s:.2f} s/step** measured here just now, "
                    f"**{est_mod.duration_text(s * cfg.max_train_steps)}** for {cfg.max_train_steps} steps "
                    "(at least: loading, validation images and checkpoints come on top). The run view corrects it "
                    "from the real step times.")
    else:
        c1.markdown("Time: **unknown until the first steps** on this machine (it depends on what else runs here). "
                    "Measure it now, or read the time left in the run view once the run starts.")


RUN_STATUS = {"queued": "⏳ waiting", "running": "🏃 running", "done": "✅ done", "failed": "❌ failed",
              "stopped": "⏹️ stopped"}


def run_eta(r: runs.RunInfo, rows: list[dict[str, Any]] | None = None) -> est_mod.Eta:
    """The time left of a run from its real step times (metrics.jsonl), corrected at every step."""
    rows = runs.read_metrics(r.run_id) if rows is None else rows
    return est_mod.corrected_eta([row.get("s_per_step") for row in rows], r.step, r.total)


def _step_text(r: runs.RunInfo) -> str:
    if r.total:
        return f"{r.step} of {r.total}"
    return "not started" if r.status == "queued" else "—"


def runs_frame(all_runs: list[runs.RunInfo]) -> pd.DataFrame:
    """The runs table as people read it: plain column names, no None cells, the time left for active runs."""
    out = []
    for r in all_runs:
        active = r.status in ("queued", "running")
        out.append({"Run": r.run_id, "Name": r.title, "Status": RUN_STATUS.get(r.status, r.status),
                    "Progress": (r.step / r.total) if r.total else 0.0, "Step": _step_text(r),
                    "Loss": "—" if r.loss is None else f"{r.loss:.4f}",
                    "Time left": run_eta(r).text() if active else "—",
                    "Sweep": r.sweep_id or "—", "By": r.created_by or "—",
                    "Started": r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "—"})
    return pd.DataFrame(out)


def runs_panel(user: str) -> None:
    """The runs table, the open run's view and the loss-curve overlay, drawn together in one fragment that refreshes
    while a run is queued or running. (Drawn once outside the run view's refreshing fragment, the table went stale:
    "0 %, 0/?" beside a run view at step 10/20.)"""
    trash_ui.undo_banner("training", user)
    first = runs.list_runs()
    if not first:
        st.info("No runs yet. Launch one in **New run** (the tiny_cpu_demo preset trains on a laptop in a minute).")
        trash_ui.recently_deleted("training", ["run"], user)
        return
    active = any(r.status in ("queued", "running") for r in first)

    @st.fragment(run_every=2.0 if active else None)
    def live() -> None:
        all_runs = runs.list_runs()
        if active and not any(r.status in ("queued", "running") for r in all_runs):
            st.rerun(scope="app")  # all finished: the page stops refreshing
        run_id = runs_table(all_runs)
        if run_id is not None:
            run_view(run_id, user, next(r for r in all_runs if r.run_id == run_id))
        overlay(all_runs)

    live()
    trash_ui.recently_deleted("training", ["run"], user)


def runs_table(all_runs: list[runs.RunInfo] | None = None) -> int | None:
    all_runs = runs.list_runs() if all_runs is None else all_runs
    if not all_runs:
        return None
    st.dataframe(runs_frame(all_runs), hide_index=True, width="stretch", key="training_runs_table",
                 column_config={"Progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=1)})
    ids = [r.run_id for r in all_runs]
    current = st.session_state.get(K_RUN)
    if current in ids and st.session_state.get(K_OPEN) != current:
        # a run just launched: open it (a widget's own value can only be set before it is drawn)
        st.session_state[K_OPEN] = current
    if st.session_state.get(K_OPEN) not in ids:
        st.session_state[K_OPEN] = ids[0]
    titles = {r.run_id: r.title for r in all_runs}
    chosen = st.selectbox("Open run", ids, key=K_OPEN, on_change=_opened,
                          format_func=lambda i: f"run {i}: {titles[i]}")
    st.session_state[K_RUN] = chosen
    return chosen


def _opened() -> None:
    st.session_state[K_RUN] = st.session_state[K_OPEN]


def run_view(run_id: int, user: str, info: runs.RunInfo | None = None) -> None:
    """Status, progress with the time left, curves, the clean log, the validation grid and the LoRA of one run. Drawn
    in ``runs_panel``'s fragment, from the same read of the job rows as the table."""
    from workbench.ui.jobs import log_view

    r = info or runs.get_run(run_id)
    rows = runs.read_metrics(run_id)
    eta = run_eta(r, rows)
    status_row(r, user, eta)
    curves(run_id, rows, eta if r.status in ("queued", "running") else None)
    log_view(runs.run_log(run_id), title="Log (last 60 lines)", expanded=r.status == "failed")
    grid(run_id)
    lora = runs.lora_of(run_id)
    if lora is not None:
        st.success(f"LoRA registered (id {lora.id}) as **{plain(lora.name or f'run {run_id}')}** — pick it on the "
                   "Generate page." + (" Trained on the demo model." if lora.is_demo else ""))
        card = Path(lora.path) / "run_card.json"
        if card.exists():
            st.download_button("Download the run card", card.read_bytes(), file_name=f"run-{run_id}-card.json",
                               key=f"training_card_{run_id}")


def status_row(r: runs.RunInfo, user: str, eta: est_mod.Eta | None = None) -> None:
    """Status, progress, Stop or Resume. Drawn in the runs panel's fragment, whose reruns skip the page's
    ``require_login``: a role lost since the page was drawn shows up as the library's refusal."""
    icon = RUN_STATUS.get(r.status, " ").split(" ")[0]
    st.markdown(f"{icon} **run {r.run_id}** — {plain(r.title)} — {r.status}")
    active = r.status in ("queued", "running")
    if r.total:
        left = f" · time left {eta.text()}" if active and eta is not None else ""
        st.progress(min(1.0, r.step / r.total), text=f"step {r.step} of {r.total}{left} · {plain(r.message)}")
        if active and eta is not None and eta.measured_steps:
            st.caption(f"Time left {eta.basis} ({eta.s_per_step:.2f} s/step), corrected at every step.")
    elif r.message:
        st.caption(plain(r.message))
    c1, c2, _ = st.columns([1, 1, 4])
    if active:
        if c1.button("Stop", key=f"training_stop_{r.run_id}",
                     help="Saves a checkpoint, then stops; the run can be resumed from it."):
            try:
                runs.stop(user, r.run_id)
            except (runs.RunError, AuthError) as exc:
                st.error(plain(exc))
            else:
                st.rerun()
    elif r.status in ("stopped", "failed"):
        if c2.button("Resume", key=f"training_resume_{r.run_id}", type="primary",
                     help="Continues from the last checkpoint, in the same folder."):
            try:
                runs.resume(user, r.run_id)
            except (runs.RunError, AuthError) as exc:
                st.error(plain(exc))
            else:
                st.rerun()
    if r.status == "failed":
        st.error(plain(r.message))
    if not active:  # a running run is stopped first (the library refuses it too)
        trash_ui.delete_control("training", "run", str(r.run_id), r.title or f"run {r.run_id}",
                                lambda: runs.delete_run(user, r.run_id), confirm_word=str(r.run_id),
                                warning=f"run {r.run_id}, {r.status} at step {r.step}: its LoRA, checkpoints and "
                                        "samples")


def curves(run_id: int, rows: list[dict[str, Any]] | None = None, eta: est_mod.Eta | None = None) -> None:
    rows = runs.read_metrics(run_id) if rows is None else rows
    if not rows:
        st.caption("No steps yet (loading models and caching latents).")
        return
    df = pd.DataFrame(rows).set_index("step")
    last = rows[-1]
    m = st.columns(5)
    m[0].metric("Loss", f"{last['loss']:.4f}")
    m[1].metric("Learning rate", f"{last['lr']:.2e}")
    m[2].metric("s/step", f"{last['s_per_step']:.2f}")
    m[3].metric("Time left", eta.text() if eta is not None else "—",
                help="From the run's recent step times, corrected at every step.")
    m[4].metric("GPU memory", f"{last['gpu_mem_gb']:.1f} GiB" if last.get("gpu_mem_gb") else "CPU")
    c1, c2 = st.columns(2)
    df["loss (avg of 10)"] = df["loss"].rolling(10, min_periods=1).mean()
    c1.line_chart(df[["loss", "loss (avg of 10)"]], height=220, x_label="step", y_label="training loss")
    c2.line_chart(df[["lr"]].rename(columns={"lr": "learning rate"}), height=220, x_label="step",
                  y_label="learning rate")


def loss_frame(run_ids: list[int], labels: dict[int, str], smooth: int = 10) -> pd.DataFrame:
    """Long-form loss curves of several runs (one series per run: run, step, loss averaged over ``smooth`` steps)."""
    parts = []
    for run_id in run_ids:
        rows = runs.read_metrics(run_id)
        if not rows:
            continue
        d = pd.DataFrame(rows)[["step", "loss"]]
        d["loss"] = d["loss"].rolling(smooth, min_periods=1).mean()
        d["run"] = labels.get(run_id, f"run {run_id}")
        parts.append(d)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["step", "loss", "run"])


def overlay_chart(df: pd.DataFrame, key: str) -> None:
    """One chart, one coloured line per run."""
    import altair as alt

    chart = alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="training loss (avg of 10 steps)"),
        color=alt.Color("run:N", title="run"), tooltip=["run", "step", alt.Tooltip("loss:Q", format=".4f")])
    st.altair_chart(chart, width="stretch", key=key)


def overlay(all_runs: list[runs.RunInfo]) -> None:
    """Loss curves of the runs the user picks, overlaid (the open run by default)."""
    st.subheader("Compare loss curves")
    labels = {r.run_id: f"run {r.run_id}: {r.title}" for r in all_runs}
    ids = list(labels)
    kept = st.session_state.get("training_overlay")
    st.session_state["training_overlay"] = ids[:2] if kept is None else [i for i in kept if i in ids]
    picked = st.multiselect("Runs to overlay", ids, key="training_overlay", format_func=labels.get,
                            help="Their training loss, averaged over 10 steps, in one chart.")
    df = loss_frame(picked, labels)
    if df.empty:
        st.caption("The chosen runs have no steps yet.")
        return
    overlay_chart(df, key="training_overlay_chart")


def _sample_label(path: Path) -> str:
    """``p0-s7.png`` (the script's name for validation prompt 0, seed 7) -> ``prompt 1 · seed 7``."""
    m = re.fullmatch(r"p(\d+)-s(\d+)", path.stem)
    return f"prompt {int(m[1]) + 1} · seed {m[2]}" if m else path.stem


def grid(run_id: int) -> None:
    samples = runs.validation_grid(run_id)
    if not samples:
        return
    st.subheader("Validation images per checkpoint")
    newest = max(samples)
    listing = samples[newest][0].parent / "prompts.json" if samples[newest] else None
    prompts = json.loads(listing.read_text()).get("prompts", []) if listing and listing.is_file() else []
    st.caption("Same prompts and seeds at every checkpoint, so rows compare like for like."
               + "".join(f"  \n**prompt {i}**: {plain(p)}" for i, p in enumerate(prompts, 1)))
    for step, paths in sorted(samples.items(), reverse=True)[:6]:
        # at least 6 image columns, so a few small validation images are not blown up to the page width
        cols = st.columns([0.6] + [1] * max(6, len(paths)))
        cols[0].markdown(f"**step {step}**")
        for col, path in zip(cols[1:], paths):
            col.image(str(path), caption=_sample_label(path), width="stretch")


def sweep_form(settings, user: str) -> None:
    shipped = presets()
    names = list(shipped)
    preset_name = st.selectbox("Base preset", names, key="training_sweep_preset")
    datasets = _datasets()
    choices = [d[0] for d in datasets]
    if not choices:
        st.info("Import a dataset first (Datasets page).")
        return
    dataset = st.selectbox("Dataset", choices, format_func=dict(datasets).get, key="training_sweep_dataset")
    c = st.columns(3)
    ranks = c[0].text_input("Ranks", "4,8", key="training_sweep_rank", help="Comma-separated: one run per value.")
    lrs = c[1].text_input("Learning rates", "1e-4,3e-4", key="training_sweep_lr", help="Comma-separated.")
    batches = c[2].text_input("Batch sizes", "1", key="training_sweep_batch", help="Comma-separated.")
    extra = st.text_area("More options to vary (one per line: option=value1,value2)", "", key="training_sweep_extra",
                         height=68, help="Hyperparameters only, by their config names: " + ", ".join(runs.SWEEPABLE))
    axes = [f"rank={ranks}", f"learning_rate={lrs}", f"train_batch_size={batches}"] + \
        [line for line in extra.splitlines() if line.strip()]
    base = {k: v for k, v in shipped[preset_name].items() if k not in ("instance_data_dir", "train_data_dir")}
    base["dataset"] = dataset
    try:
        grid_ = runs.parse_grid(axes)
        points = runs.sweep_configs(base, grid_)
    except ConfigError as exc:
        st.error(plain_problem(exc))
        return
    st.caption(f"{len(points)} runs will be queued (they run one after another on one GPU).")
    if st.button(f"Queue {len(points)} runs", key="training_sweep_go", type="primary"):
        try:
            sweep_id, ids = runs.start_sweep(user, base, grid_)
        except (runs.RunError, ConfigError) as exc:
            st.error(plain_problem(exc))
            return
        flash("success", f"Sweep {sweep_id}: runs {', '.join(map(str, ids))} queued.")
        st.session_state["training_sweep_show"] = sweep_id
        st.rerun()


def _points(df: pd.DataFrame) -> list[str]:
    """Each sweep run's point: the swept options, as words (``Rank 4, Learning rate 0.001``)."""
    params = [c for c in df.columns if c not in ("run", "status", "step", "final_loss", "minutes")
              and not c.startswith("eval_")]
    return [", ".join(f"{label(c)} {row[c]}" for c in params) for _, row in df.iterrows()]


def sweep_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The sweep table with plain column names and no None cells."""
    shown = df.copy()
    if "status" in shown:
        shown["status"] = shown["status"].map(lambda v: RUN_STATUS.get(v, v))
    shown = shown.astype(object).where(shown.notna(), "—")
    return shown.rename(columns={c: label(c) for c in shown.columns})


def sweep_compare() -> None:
    ids = runs.sweep_ids()
    if not ids:
        st.info("No sweeps yet.")
        return
    current = st.session_state.get("training_sweep_show")
    sweep_id = st.selectbox("Sweep", ids, index=ids.index(current) if current in ids else 0,
                            key="training_sweep_pick")
    from workbench.evaluate.results import sweep_rows

    table = sweep_rows(sweep_id)  # the runs' training columns, then their evaluation scores
    df = pd.DataFrame(table)
    st.dataframe(sweep_frame(df), hide_index=True, width="stretch")
    done = df.dropna(subset=["final_loss"]) if "final_loss" in df else df.iloc[0:0]
    if not done.empty:
        points = dict(zip(df.index, _points(df)))
        done = done.assign(point=[points[i] or f"run {r}" for i, r in zip(done.index, done["run"])])
        st.bar_chart(done.set_index("point")[["final_loss"]].rename(columns={"final_loss": "final loss"}), height=240,
                     x_label="sweep point", y_label="final loss")
    members = {int(r): f"run {int(r)}" + (f" ({point})" if point else "") for r, point in
               zip(df["run"], _points(df))}
    curves_df = loss_frame(list(members), members)
    if not curves_df.empty:
        st.caption("Loss curves of the sweep's runs")
        overlay_chart(curves_df, key="training_sweep_overlay")
    st.download_button("Download CSV", csv_text(list(df.columns), table).encode(), file_name=f"{sweep_id}.csv",
                       key="training_sweep_csv")
