"""Home: the page itself (``home_view``), the navigation each role sees (``navigation_pages``), the next-step hint,
and the demo-workspace panel (a job with progress, or the demo's accounts once it exists)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.auth import UserInfo
from workbench.ui.common import code_span

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
            st.markdown("**Try it first:** build a demo workspace offline (about a minute on an idle machine, "
                        "longer on a busy one) — a catalog, a trained LoRA, prompts, generated images with CLIP-gate "
                        "attempts, an evaluation, a review queue and one account per role.")
            if st.button("Create demo workspace", key="home_demo_create", type="primary"):
                st.session_state[K_DEMO_JOB] = submit_job("demo", {}, title="demo workspace", user="demo")
                st.rerun()


# -- the Home page ----------------------------------------------------------------------------------------------------

# The pages and who may use them: the sidebar shows a signed-in user the pages their role can use (the others stay
# reachable by link, where the page's own guard says who it is for). Each entry matches the page's require_login.
PAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pages/1_Datasets.py", ("datasets",)),
    ("pages/2_Training.py", ("train",)),
    ("pages/3_Prompts.py", ("prompts",)),
    ("pages/4_Generate.py", ("generate",)),
    ("pages/5_Evaluate.py", ("evaluate", "view_queue")),
    ("pages/6_Review.py", ("view_queue", "view_own")),
)


def visible_pages(user: UserInfo | None) -> list[str]:
    """The page files listed in the sidebar for ``user`` (every page for a visitor: each one has a sign-in form)."""
    return [path for path, needs in PAGES if user is None or any(user.can(p) for p in needs)]


def navigation_pages(user: UserInfo | None) -> list:
    shown = set(visible_pages(user))
    return [st.Page(home_view, title="Home", default=True)] + [  # no icon: the sidebar link reads "Home"
        st.Page(path, visibility="visible" if path in shown else "hidden") for path, _ in PAGES]


def next_step(user: UserInfo | None, counts: dict[str, int | None]) -> tuple[str, str | None] | None:
    """What this visitor could do next, as (message, page file): by role once signed in, else the workflow's next
    empty stage. None when there is nothing to suggest."""
    n = {k: v or 0 for k, v in counts.items()}

    def images(k: int) -> str:
        return f"{k} image{'' if k == 1 else 's'}"

    if user is not None:
        if user.can("decide") and n["pending reviews"]:
            verb = "waits" if n["pending reviews"] == 1 else "wait"
            return f"**{images(n['pending reviews'])} {verb} for your review.**", "pages/6_Review.py"
        if user.can("evaluate") and (n["training runs"] or n["generated images"]):
            return (f"**{n['training runs']} training run{'' if n['training runs'] == 1 else 's'} and "
                    f"{images(n['generated images'])}** to compare on Evaluate.", "pages/5_Evaluate.py")
        if user.can("generate") and n["generated images"]:
            return (f"**{images(n['generated images'])}** generated so far: see what the reviewers said under My "
                    "submissions, or build the next prompt batch.", "pages/6_Review.py")
        if user.can("generate") and n["training runs"]:
            return "A LoRA is trained: build a prompt batch for it, then generate.", "pages/3_Prompts.py"
        if user.can("manage_users"):
            return "Add your team's accounts and roles on Review → Users.", "pages/6_Review.py"
    steps = [("datasets", "import product photos", "pages/1_Datasets.py"),
             ("training runs", "train a LoRA on a dataset", "pages/2_Training.py"),
             ("generated images", "generate catalog shots", "pages/4_Generate.py"),
             ("pending reviews", "review what was generated", "pages/6_Review.py")]
    todo = next(((hint, page) for key, hint, page in steps if not n[key]), None)
    return (f"Next step: {todo[0]}.", todo[1]) if todo else None


JOB_KINDS = {"train_lora": "training run", "generate": "image generation", "evaluate": "evaluation",
             "caption": "captioning", "demo": "demo workspace", "selftest": "self-test"}


def recent_job_rows(jobs: list[dict]) -> list[dict]:
    """Home's recent-jobs table in plain words: what kind of work, no empty cells reading "None"."""
    return [{**j, "kind": JOB_KINDS.get(j["kind"], str(j["kind"]).replace("_", " ")),
             "message": j["message"] or "", "title": j["title"] or ""} for j in jobs]


def home_view() -> None:
    """The Home page: workspace counts, the demo, what to do next, what this machine can do."""
    from workbench.overview import redact_paths
    from workbench.ui.auth import current_user, user_box
    from workbench.ui.common import capability_report, model_table, recent_jobs, startup, workspace_counts

    settings = startup()
    ws = str(settings.workspace_dir)
    user = current_user()
    is_admin = user is not None and user.can("manage_users")

    st.title("Brand Workbench")
    st.caption("From product photos to a fine-tuned SDXL model and approved catalog images — every image traceable.")

    # -- workspace overview -----------------------------------------------------------------------------------------
    counts = workspace_counts(ws)
    cols = st.columns(len(counts))
    for col, (label, value) in zip(cols, counts.items()):
        col.metric(label.capitalize(), "—" if value is None else value,
                   help=None if value is not None else "This part of the workbench is not set up in this workspace "
                                                        "yet.")

    demo_panel()
    if not any(counts.values()):
        st.info(
            "**This workspace is empty.** Start by importing your product photos with their captions on the "
            "**Datasets** page, then train a LoRA, build prompts and generate — or walk the whole product first "
            "with a demo workspace (**Create demo workspace**, or `workbench demo` in a new workspace)."
            + (f" Everything you create is stored in {code_span(ws)}." if is_admin else "")
        )
    elif hint := next_step(user, counts):
        message, target = hint
        st.info(message)
        if target:
            st.page_link(target, label=f"Open {Path(target).stem.split('_', 1)[1]}", icon="➡️")

    # -- what this machine can do -----------------------------------------------------------------------------------
    st.subheader("This machine")
    report = capability_report(ws) if is_admin else capability_report(ws).for_visitor()
    left, right = st.columns(2)
    left.markdown(f"**PyTorch** {report.torch_version}  \n**Device** {report.device}")
    if is_admin:
        left.markdown(f"**Workspace** {code_span(report.workspace)}  \n**Database** {report.database}")
    right.markdown("**OCR backends**  \n" + "  \n".join(f"{name}: {state}"
                                                         for name, state in report.ocr_backends.items()))

    models = model_table(ws)
    if not is_admin:  # a model setting may be a local folder, and remedies name folders
        models = [{k: redact_paths(v) for k, v in m.items()} for m in models]
    missing = [m for m in models if m["status"] != "available"]
    if missing:
        st.warning(
            f"{len(missing)} of {len(models)} default models are not available on this machine: the capabilities "
            "that need them are shown as unavailable. Run `workbench models pull` where the Hugging Face hub is "
            "reachable, or point the setting at a local copy."
        )
    st.dataframe(models, hide_index=True, width="stretch")
    # Home needs no sign-in: job titles and messages (dataset, run and prompt names) are for signed-in users only.
    if user is not None:
        user_box(user)
        recent = recent_job_rows(recent_jobs(ws))
        if recent:
            st.subheader("Recent jobs")
            st.dataframe(recent, hide_index=True, width="stretch")
    elif any(counts.values()):
        st.caption("Sign in on any page to see the workspace's recent jobs here.")

    if is_admin:
        with st.expander("Installed packages"):
            st.table({"package": list(report.packages), "version": list(report.packages.values())})
