"""Home's own widgets: the demo-workspace panel (a job with progress, or the demo's accounts once it exists)."""
from __future__ import annotations

import streamlit as st

K_DEMO_JOB = "home_demo_job"


def demo_panel() -> None:
    """Home: "Create demo workspace" (a job with progress), or the demo's accounts once it exists."""
    from workbench import jobs
    from workbench.demo import DEMO_PASSWORD, DEMO_USERS, demo_password_public, is_demo_workspace
    from workbench.auth import needs_first_admin
    from workbench.ui.jobs import job_panel, submit_job

    running = [j for j in jobs.list_jobs(kind="demo", limit=5) if j.is_active]
    if running:
        st.session_state[K_DEMO_JOB] = running[0].id
    if st.session_state.get(K_DEMO_JOB):
        # Home needs no sign-in, and neither does the demo build it offers: anyone here may stop it
        job_panel(st.session_state[K_DEMO_JOB], key="home_demo", stop=jobs.request_stop)
    if is_demo_workspace() and not demo_password_public():  # real accounts now: the demo admin is not for everyone
        st.success("🧪 **Demo workspace** (invented brand AURELO, small offline demo models). Sign in with your "
                   "own account.")
    elif is_demo_workspace():
        accounts = ", ".join(f"`{u}` ({r})" for u, r in DEMO_USERS.items())
        st.success("🧪 **Demo workspace** (invented brand AURELO, small offline demo models: the images are for trying "
                   f"the workbench, not for a catalog). Sign in on any page as {accounts} with the password "
                   f"`{DEMO_PASSWORD}`.")
    elif not running and not needs_first_admin():
        # The demo adds accounts with a published password (an admin among them), and Home needs no sign-in: so it
        # is offered on a workspace nobody uses yet, never on one with users.
        st.caption("To try the product, build the demo in a new workspace: "
                   "`WORKBENCH_WORKSPACE=demo-workspace workbench demo`.")
    elif not running:
        with st.container(border=True):
            st.markdown("**Try it first:** build a demo workspace offline in a few minutes — a catalog, a trained "
                        "LoRA, prompts, generated images with CLIP-gate attempts, an evaluation, a review queue and "
                        "one account per role.")
            if st.button("Create demo workspace", key="home_demo_create", type="primary"):
                st.session_state[K_DEMO_JOB] = submit_job("demo", {}, title="demo workspace", user="demo")
                st.rerun()
