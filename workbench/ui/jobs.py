"""Job widgets every page shares: submit (starting a worker when none is alive) and a live status panel.

The queue checks no roles; the capabilities' entry points do. So a page queues through its capability
(``enqueue_caption``, ``enqueue_batch``, ``runs.start``) and gives ``job_panel`` the capability's stop call, which
checks the signed-in user's role like every other mutating call. The panel is a fragment: a click in it reruns the
panel, not the page's ``require_login``, so a role lost meanwhile shows up as the stop call's refusal."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from workbench import jobs
from workbench.auth import AuthError
from workbench.ui.common import plain

STATUS_ICON = {"queued": "⏳", "running": "🏃", "done": "✅", "failed": "❌", "stopped": "⏹️"}


def submit_job(kind: str, config: dict, title: str = "", user: str = "") -> int:
    """Enqueue a job (``jobs.enqueue`` starts a background consumer when none is alive, so it does not sit queued).
    Checks no role: only for jobs anyone may start (the demo build on Home); capabilities have their own."""
    return jobs.enqueue(kind, config, title=title, created_by=user)


def _render(job_id: int, key: str, stop: Callable[[int], object] | None) -> None:
    job = jobs.get_job(job_id)
    st.markdown(f"{STATUS_ICON.get(job.status, '')} **{plain(job.title)}** — job {job.id}, {job.status}")
    if job.fraction is not None:
        st.progress(job.fraction, text=f"{job.progress_step}/{job.progress_total} {plain(job.message)}")
    elif job.message:
        st.caption(plain(job.message))
    if job.metrics:
        cols = st.columns(min(len(job.metrics), 6))
        for col, (name, value) in zip(cols, job.metrics.items()):
            col.metric(plain(name), f"{value:.4g}" if isinstance(value, float) else value)
    if job.status == "failed":
        st.error(plain(job.message))
        st.code(job.error or jobs.log_tail(job), language="text")
    if job.is_active:
        if job.stop_requested:
            st.caption("Stopping… (the job saves what it has, then exits)")
        elif stop is not None and st.button("Stop", key=f"{key}_stop_{job.id}"):
            try:
                stop(job.id)
            except AuthError as exc:  # role changed or account deactivated since the page was drawn
                st.error(f"Not stopped: {plain(exc)}")
            else:
                st.rerun()
    with st.expander("Log"):
        st.code(jobs.log_tail(job, 60) or "(empty)", language="text")


def job_panel(job_id: int, key: str = "job", every: float = 2.0, stop: Callable[[int], object] | None = None) -> None:
    """A panel that refreshes itself while the job is queued or running; with ``stop`` (the capability's stop call
    for the signed-in user, given the job id) it has a Stop button."""
    active = jobs.get_job(job_id).is_active

    @st.fragment(run_every=every if active else None)
    def panel() -> None:
        if active and not jobs.get_job(job_id).is_active:
            st.rerun(scope="app")  # finished: what the page shows around the panel (galleries, tables) catches up
        _render(job_id, key, stop)

    panel()
