"""Brand Workbench — Home: what is in the workspace, what to do next, and what this machine can do.

Home needs no sign-in: anyone sees the counts and what the machine can do; job titles are for signed-in users, and
paths, the database address and package versions for admins (``CapabilityReport.for_visitor``).

Run: streamlit run Home.py
"""
import streamlit as st

from workbench.overview import redact_paths
from workbench.ui.auth import current_user, user_box
from workbench.ui.common import capability_report, model_table, recent_jobs, startup, workspace_counts
from workbench.ui.home import demo_panel
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Brand Workbench", page_icon="🧵", layout="wide")
init_session_state()
settings = startup()
ws = str(settings.workspace_dir)
user = current_user()
is_admin = user is not None and user.can("manage_users")

st.title("Brand Workbench")
st.caption("From product photos to a fine-tuned SDXL model and approved catalog images — every image traceable.")

# -- workspace overview ---------------------------------------------------------------------------------------------
counts = workspace_counts(ws)
cols = st.columns(len(counts))
for col, (label, value) in zip(cols, counts.items()):
    col.metric(label.capitalize(), "—" if value is None else value,
               help=None if value is not None else "This part of the workbench is not set up in this workspace yet.")

demo_panel()
if not any(counts.values()):
    st.info(
        "**This workspace is empty.** Start by importing your product photos with their captions on the "
        "**Datasets** page, then train a LoRA, build prompts and generate — or create the demo workspace below to "
        "walk the whole product first." + (f" Everything you create is stored in `{ws}`." if is_admin else "")
    )
else:
    steps = [("datasets", "import product photos"), ("training runs", "train a LoRA on a dataset"),
             ("generated images", "generate catalog shots"), ("pending reviews", "review what was generated")]
    todo = next((hint for key, hint in steps if not counts.get(key)), None)
    if todo:
        st.info(f"Next step: {todo}.")

# -- what this machine can do ---------------------------------------------------------------------------------------
st.subheader("This machine")
report = capability_report(ws) if is_admin else capability_report(ws).for_visitor()
left, right = st.columns(2)
left.markdown(f"**PyTorch** {report.torch_version}  \n**Device** {report.device}")
if is_admin:
    left.markdown(f"**Workspace** `{report.workspace}`  \n**Database** {report.database}")
right.markdown("**OCR backends**  \n" + "  \n".join(f"{name}: {state}" for name, state in report.ocr_backends.items()))

models = model_table(ws)
if not is_admin:  # a model setting may be a local folder, and remedies name folders
    models = [{k: redact_paths(v) for k, v in m.items()} for m in models]
missing = [m for m in models if m["status"] != "available"]
if missing:
    st.warning(
        f"{len(missing)} of {len(models)} default models are not available on this machine: the capabilities that "
        "need them are shown as unavailable. Run `workbench models pull` where the Hugging Face hub is reachable, "
        "or point the setting at a local copy."
    )
st.dataframe(models, hide_index=True, width="stretch")
# Home needs no sign-in: job titles and messages (dataset, run and prompt names) are for signed-in users only.
if user is not None:
    user_box(user)
    recent = recent_jobs(ws)
    if recent:
        st.subheader("Recent jobs")
        st.dataframe(recent, hide_index=True, width="stretch")
elif any(counts.values()):
    st.caption("Sign in on any page to see the workspace's recent jobs here.")

if is_admin:
    with st.expander("Installed packages"):
        st.table({"package": list(report.packages), "version": list(report.packages.values())})
