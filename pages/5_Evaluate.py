"""Evaluate: compare image sets (checkpoints, LoRAs, base vs fine-tuned) with FID/KID, CLIP, BLIP, LPIPS, SSIM, PSNR,
brand consistency, PickScore and the OCR logo check; drill into single images; per product (SKU), the fidelity of its
generated images; export CSV.

Run: streamlit run Home.py (then the Evaluate page). Widgets live in workbench/ui/evaluate.py.
"""
import streamlit as st

from workbench.ui import evaluate as ui
from workbench.ui.auth import require_login
from workbench.ui.common import startup, tabs
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Evaluate · Brand Workbench", page_icon="📏", layout="wide")
init_session_state()
settings = startup()
st.title("Evaluate")
st.caption("Numbers you can defend: each with its interval, its sample size and what it means.")
user = require_login(any_of=("evaluate", "view_queue"))

compare, images, products, new, cards = tabs(["Compare", "Images", "Products", "New evaluation", "Metric cards"],
                                             key="evaluate_tab")
runs = ui.evaluations(str(settings.workspace_dir))
with compare:
    if not runs:
        st.info("No evaluations yet. Start one under **New evaluation** (or `workbench evaluate`).")
    else:
        chosen = ui.choose_runs(runs)
        if chosen:
            df = ui.comparison(chosen)
            if not df.empty:
                ui.charts(df)
with images:
    if runs:
        labels = {r["id"]: f"#{r['id']} {r['name']}" for r in runs}  # as the Compare tab names them
        ui.drilldown(st.selectbox("Evaluation", list(labels), format_func=labels.get, key="evaluate_drill_run"))
with products:
    ui.products_view()
with new:
    if user.can("evaluate"):
        ui.new_evaluation_form(user.username)
    else:
        st.info("Starting evaluations is for analysts; you can read every result here.")
with cards:
    ui.metric_cards()
