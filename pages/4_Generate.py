"""Generate: SDXL + LoRAs (optionally INT8) from a typed prompt or a saved prompt batch; every PNG carries its
provenance, every image goes to review; the user's results below, one group per request, newest first.

Run: streamlit run Home.py (then the Generate page). Widgets live in workbench/ui/generate.py.
"""
import streamlit as st

from workbench.models.sources import availability
from workbench.ui import generate as ui
from workbench.ui import scene as ui_scene
from workbench.ui.auth import require_login
from workbench.ui.common import plain, startup, tabs
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Generate · Brand Workbench", page_icon="🎨", layout="wide")
init_session_state()
settings = startup()
st.title("Generate")
user = require_login("generate")

spec = ui.controls(settings)
model = availability(spec.model)
if not model.ok:
    st.info(f"**The model “{plain(spec.model)}” is not available here**: {plain(model.reason)}. {plain(model.remedy)}")
    st.stop()
if ui.is_demo(spec.model):
    st.warning("🧪 This is an offline demo model, not SDXL: its images are for trying the workbench, not for the "
               "catalog.")

ui.arrive()  # a batch sent from Prompts opens the batch tab
TABS = {  # label -> what the tab draws; a new way to generate adds one entry
    ui.TAB_ONE: lambda: ui.single_prompt_form(spec, user.username),
    ui.TAB_BATCH: lambda: ui.batch_view(spec, user.username),
    "Product scene": lambda: ui_scene.render_scene_tab(user, spec),
    "Place logo": lambda: ui_scene.render_logo_tab(user),
}
for pane, draw in zip(tabs(list(TABS), key=ui.K_TAB), TABS.values()):
    with pane:
        draw()
ui.results(user.username)
