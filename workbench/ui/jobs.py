"""Job widgets every page shares: submit (starting a worker when none is alive) and a live status panel.

The queue checks no roles; the capabilities' entry points do. So a page queues through its capability
(``enqueue_caption``, ``enqueue_batch``, ``runs.start``) and gives ``job_panel`` the capability's stop call, which
checks the signed-in user's role like every other mutating call. The panel is a fragment: a click in it reruns the
panel, not the page's ``require_login``, so a role lost meanwhile shows up as the stop call's refusal."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from workbench import jobs
from workbench.auth import AuthError
from workbench.ui.common import plain
from workbench.ui.labels import label

STATUS_ICON = {"queued": "⏳", "running": "🏃", "done": "✅", "failed": "❌", "stopped": "⏹️"}


# What people need not read in a job's log: library internals. The log file keeps every line; the page shows them
# only in the collapsed full log.
_WARNING = re.compile(r"^\S.*\.py:\d+: \w*(Warning|Deprecated\w*)\b")  # warnings.warn's "file.py:12: XWarning: ..."
_NOISE = [
    re.compile(r"^[WIE]\d{4} \d\d:\d\d:\d\d"),  # absl / glog lines (torch, onnxruntime)
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[.,]\d+ (WARNING|INFO|DEBUG)\b"),  # logging's default format
    re.compile(r"^(WARNING|INFO|DEBUG)(:| {2}|\s+\S+:\S+:\d+ )"),  # logging.basicConfig / pytest-style records
    re.compile(r"\d+%\|.*\|.*(it/s|s/it|\?it/s)"),  # tqdm progress bars
    re.compile(r"\b(site|dist)-packages/"),  # anything quoting a library's file
    re.compile(r"^\s*warnings\.warn\("),
    re.compile(r"Failed to load CPU gemm_4bit_forward|Unable to import `torchao`|missing ScriptRunContext"),
]


@dataclass
class CleanLog:
    text: str  # what a person reads: the job's own lines and the final error of a traceback
    hidden: int  # lines left out (library warnings, traceback frames, progress bars): shown in the full log


def clean_log(text: str, workspace: str | None = None) -> CleanLog:
    """A job's log for people: library warnings (and the source line Python prints under each), logger noise,
    progress bars and traceback frames left out; a traceback keeps its last line (the error itself). With
    ``workspace``, paths inside it read ``workspace/...``. The log file itself is not touched."""
    kept: list[str] = []
    hidden = 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _WARNING.search(line):
            hidden += 1
            i += 1
            while i < len(lines) and lines[i].startswith((" ", "\t")):  # the source line echoed under a warning
                hidden += 1
                i += 1
            continue
        if line.startswith("Traceback (most recent call last):"):
            hidden += 1
            i += 1
            while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
                hidden += 1
                i += 1
            continue  # the next line, the exception itself, is kept
        if line.startswith(("During handling of the above exception", "The above exception was the direct cause")):
            hidden += 1
            i += 1
            continue
        if any(p.search(line) for p in _NOISE):
            hidden += 1
            i += 1
            continue
        kept.append(line)
        i += 1
    out = "\n".join(kept)
    if workspace:
        out = out.replace(str(workspace).rstrip("/") + "/", "workspace/")
    return CleanLog(out, hidden)


def log_view(text: str, title: str | None = "Log", expanded: bool = False) -> None:
    """The clean log (in an expander titled ``title``, or inline when None) and, beside it, the full log (every line
    the job wrote) in a collapsed expander. Expanders do not nest: call it outside one."""
    from workbench.settings import get_settings

    clean = clean_log(text, str(get_settings().workspace_dir))
    shown = clean.text or "(nothing yet)"
    if title is None:
        st.code(shown, language="text")
    else:
        with st.expander(title, expanded=expanded):
            st.code(shown, language="text")
    if clean.hidden:
        with st.expander(f"Full log (also {clean.hidden} lines of library warnings and internals)"):
            st.code(text, language="text")


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
            col.metric(plain(label(name)), f"{value:.4g}" if isinstance(value, float) else value)
    if job.status == "failed":
        st.error(plain(job.message))
        log_view(job.error or jobs.log_tail(job), title=None)
    if job.is_active:
        if job.stop_requested:
            st.caption("Stopping… (the job saves what it has, then exits)")
        elif stop is not None and st.button("Stop", key=f"{key}_stop_{job.id}",
                                            help="The job saves what it has done so far, then ends."):
            try:
                stop(job.id)
            except AuthError as exc:  # role changed or account deactivated since the page was drawn
                st.error(f"Not stopped: {plain(exc)}")
            else:
                st.rerun()
    if job.status != "failed":  # a failed job's log is shown above
        log_view(jobs.log_tail(job, 60))


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
