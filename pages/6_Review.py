"""Review: approvers decide on generated images (one by one with keyboard shortcuts, or in bulk), see provenance,
scores, gate results and history, and export approved images; marketers see their submissions and feedback; admins
manage users.

Run: streamlit run Home.py  (then open Review)
"""
import streamlit as st

from workbench.review import list_queue
from workbench.ui import audit as ui_audit, review as ui
from workbench.ui.auth import require_login
from workbench.ui.common import startup, tabs as ui_tabs
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Review · Brand Workbench", page_icon="🧵", layout="wide")
init_session_state()
settings = startup()

st.title("Review")
st.caption("Nothing reaches a brand's catalog without an approver.")
user = require_login(any_of=("view_queue", "view_own"))
ui.show_flash()
ui.undo_bar(user)

if not user.can("view_queue"):
    st.subheader("My submissions")
    ui.submissions_view(user)
    st.stop()

tabs = ["Queue", "Bulk"] + (["Export"] if user.can("export") else []) + ["Audit"] + \
    (["Users"] if user.can("manage_users") else [])
panes = dict(zip(tabs, ui_tabs(tabs, key="review_tab")))
with panes["Queue"]:
    flt = ui.filters(user)
    items = list_queue(user.username, flt)
    if items:
        ui.single_view(user, items)
    else:
        st.info("Nothing to review with these filters. New images arrive here from the Generate page "
                "(or `workbench generate`); held-back images show under Gate: held.")
with panes["Bulk"]:
    if user.can("decide") and items:
        ui.bulk_view(user, items)
    else:
        st.caption("Bulk decisions are for approvers, on the images the Queue tab's filters show.")
if "Export" in panes:
    with panes["Export"]:
        ui.export_view(user)
with panes["Audit"]:
    ui_audit.audit_view(user)
if "Users" in panes:
    with panes["Users"]:
        ui.users_view(user)
        if user.can("settings"):
            st.subheader("Review policies")
            ui.policies_view(user)
