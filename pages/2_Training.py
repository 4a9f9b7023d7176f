"""Training: SDXL LoRA and DreamBooth-LoRA runs as background jobs. Presets, dataset, estimate against the GPU, launch;
live runs with loss curves, validation grids, log, stop and resume; sweeps and their comparison.

Run: streamlit run Home.py (then the Training page). Widgets live in workbench/ui/training.py, logic in workbench/train.
"""
import streamlit as st

from workbench.ui import training as ui
from workbench.ui.auth import require_login
from workbench.ui.common import startup, tabs
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Training · Brand Workbench", page_icon="🏋️", layout="wide")
init_session_state()
settings = startup()
st.title("Training")
st.caption("Runs go on in the background: closing the browser does not stop them.")
user = require_login("train")
ui.show_flash()

new, runs_tab, sweeps = tabs(["New run", "Runs", "Sweeps"], key=ui.K_TAB)
with new:
    ui.run_form(settings, user.username)
with runs_tab:
    ui.runs_panel(user.username)
with sweeps:
    left, right = st.columns([1, 2])
    with left:
        st.subheader("New sweep")
        ui.sweep_form(settings, user.username)
    with right:
        st.subheader("Compare")
        ui.sweep_compare()
