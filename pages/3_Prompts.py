"""Prompts: pick a template, fill its slots, preview with token count and brand-rule warnings, build and save a batch,
send it to Generate; edit templates and brand profiles (validated before saving).

Run: streamlit run Home.py  (then open Prompts)
"""
import streamlit as st

from workbench.prompts import parse_template, save_template_text
from workbench.ui import prompts as ui
from workbench.ui.auth import require_login
from workbench.ui.common import startup
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Prompts · Brand Workbench", page_icon="🧵", layout="wide")
init_session_state()
settings = startup()

st.title("Prompts")
user = require_login("prompts")
st.caption("Templates with slots and brand rules turn a product line into a reviewed, consistent batch of prompts.")

lib = ui.library(settings)
if lib.problems:
    ui.show_problems(lib.problems, "Some template or profile files did not load (fix them in the editors below):")
if not lib.templates:
    st.info(
        "**No prompt templates found.** The shipped ones come with the installation; your own are saved in this "
        "workspace. Add one on the **Templates** tab, or run `workbench prompts check` to see what did not load."
    )

build, library, templates, brands = st.tabs(["Build", "Library", "Templates", "Brand profiles"])
with build:
    if lib.templates:
        ui.build_tab(lib, settings)
    else:
        st.info("Add a template first.")
with library:
    ui.library_tab()
with templates:
    ui.editor_tab("template", {**lib.templates, **lib.scenes}, ui.TEMPLATE_SKELETON, parse_template,
                  save_template_text, settings)
with brands:
    ui.brand_form_tab(lib, settings, can_save=user.can("settings"),
                      who_saves="Brand profiles (forbidden terms, the CLIP gate) are saved by an admin.")
