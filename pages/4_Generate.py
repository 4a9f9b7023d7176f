"""Generate: SDXL + LoRAs (optionally INT8) from a typed prompt or a saved prompt batch; every PNG carries its
provenance, every image goes to review.

Run: streamlit run Home.py (then the Generate page). Widgets live in workbench/ui/generate.py.
"""
import streamlit as st

from workbench.generate.batch import enqueue_batch, stop_batch
from workbench.models.sources import availability
from workbench.ui import generate as ui
from workbench.ui import scene as ui_scene
from workbench.ui.auth import require_login
from workbench.ui.common import startup, tabs
from workbench.ui.jobs import job_panel
from workbench.ui.state import StateKeys, init_session_state

st.set_page_config(page_title="Generate · Brand Workbench", page_icon="🎨", layout="wide")
init_session_state()
settings = startup()
st.title("Generate")
user = require_login("generate")

spec = ui.controls(settings)
model = availability(spec.model)
if not model.ok:
    st.info(f"**The model `{spec.model}` is not available here**: {model.reason}. {model.remedy}")
    st.stop()
if ui.is_demo(spec.model):
    st.warning("🧪 This is an offline demo model, not SDXL: its images are for trying the workbench, not for the "
               "catalog.")

batch_id = st.session_state.get(StateKeys.PROMPT_BATCH)
single, batch_tab, scene_tab, logo_tab = tabs(["One prompt", f"Prompt batch {batch_id}" if batch_id else "Prompt batch",
                                               "Product scene", "Place logo"], key="generate_tab")
with single:
    ui.single_prompt_form(spec, user.username)
with batch_tab:
    if not batch_id:
        st.info("Save a batch on the **Prompts** page and press *Send to Generate*; it appears here.")
    else:
        gate = ui.batch_gate_controls(batch_id)  # the batch's brand gate, on by default when its profile has one
        if st.button("Queue the batch", key="generate_queue_batch", type="primary"):
            st.session_state["generate_job"] = enqueue_batch(
                user.username, ui.batch_config(spec, batch_id, gate=gate), title=f"generate prompts-{batch_id}")
    if st.session_state.get("generate_job"):
        job_panel(st.session_state["generate_job"], key="generate",
                  stop=lambda job_id: stop_batch(user.username, job_id))
        ui.gallery(f"prompts-{batch_id}")
with scene_tab:
    ui_scene.render_scene_tab(user, spec)
with logo_tab:
    ui_scene.render_logo_tab(user)
