"""Datasets: import, browse, caption, dedupe, preprocess and split brand photo sets.

Run: streamlit run Home.py (then the Datasets page). Widgets live in workbench/ui/datasets.py.
"""
import streamlit as st

from workbench.ui import datasets as ui
from workbench.ui import products as products_ui
from workbench.ui.auth import require_login
from workbench.ui.common import startup, tabs
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Datasets · Brand Workbench", page_icon="🗂️", layout="wide")
init_session_state()
ui.init_state()
settings = startup()
st.title("Datasets")
user = require_login("datasets")

data_tab, products_tab = tabs(["Datasets", "Products"], key="datasets_tab")
with products_tab:
    products_ui.products_view()
with data_tab:
    ui.trash_banner()
    summaries = ui.dataset_summaries(str(settings.workspace_dir))
    if not summaries:
        ui.empty_workspace()
        ui.recently_deleted()
        st.stop()

    dataset = ui.pick_dataset(summaries)
    ui.delete_view(dataset)
    ui.recently_deleted()
    view = st.segmented_control("View", ui.VIEWS, default=ui.VIEWS[0], key=ui.K_VIEW) or ui.VIEWS[0]

    if view == "Browse":
        if st.session_state[ui.K_ITEM]:
            ui.item_detail(st.session_state[ui.K_ITEM])
        ui.grid(dataset.id, ui.filters(dataset.id))
    elif view == "Stats":
        ui.stats_view(dataset.id)
    elif view == "Duplicates":
        ui.duplicates_view(dataset.id)
    elif view == "Captions":
        ui.captions_view(dataset.id)
    elif view == "Import":
        ui.import_form()
    else:
        ui.preprocess_view(dataset.id)
