"""Cached entry points the pages share: start-up (migrations, job reconcile) and cheap workspace reads."""
from __future__ import annotations

import re

import streamlit as st

from workbench.settings import Settings, get_settings, reload_settings, workspace_settings_file


# Every ASCII punctuation character may be backslash-escaped in CommonMark, and then shows as itself. Escaping all of
# them (not a hand-picked few) also breaks what Streamlit adds on top: autolinked bare URLs (http\:\/\/, www\.),
# :red[...] directives, :material/...: icons, $LaTeX$, and HTML entities such as &lt;img&gt;.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text: object) -> str:
    """``text`` (anything a user typed or a file named: captions, prompts, names, comments, job messages, errors that
    quote input) escaped so that st.markdown, st.caption, alerts, toasts and widget/expander/tab labels show it
    literally: no link, image, HTML, icon or formula. Use it wherever user text meets a markdown-rendering call;
    st.code, st.text and dataframe cells need nothing."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", "" if text is None else str(text))


def code_span(text: object) -> str:
    """``text`` as inline code that it cannot break out of (a fence longer than any run of backticks inside it):
    markdown is not interpreted inside code, so no other escaping is needed (nor wanted: it would show)."""
    text = "" if text is None else str(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@st.cache_resource(show_spinner=False)
def _startup(workspace: str, db_url: str) -> None:
    from workbench.db import init_db
    from workbench.jobs import reconcile

    init_db()
    reconcile()


_SETTINGS_SEEN: dict[str, int | None] = {}


def _fresh_settings() -> Settings:
    """The settings, read again when ``<workspace>/workbench.toml`` changed since this server last looked (the demo
    job writes it in another process: without this the app would keep pointing at models that are not there)."""
    path = workspace_settings_file()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    if _SETTINGS_SEEN.get(str(path), stamp) != stamp:
        reload_settings()
    _SETTINGS_SEEN[str(path)] = stamp
    return get_settings()


def startup() -> Settings:
    """Run once per workspace per server: apply migrations, mark jobs whose process is gone as failed. Every page
    run: pick up a changed workspace workbench.toml."""
    settings = _fresh_settings()
    _startup(str(settings.workspace_dir), settings.db_url)
    return settings


def workspace_counts(workspace: str) -> dict[str, int | None]:
    """Not cached: a handful of COUNT(*) queries, and a user coming back from an import expects the new numbers."""
    from workbench.overview import workspace_counts as counts

    return counts()


@st.cache_data(ttl=60, show_spinner="Checking models and devices…")
def capability_report(workspace: str):
    from workbench.overview import capability_report as report

    return report()


@st.cache_data(ttl=60, show_spinner=False)
def model_table(workspace: str) -> list[dict[str, str]]:
    from workbench.models.sources import list_models

    return [
        {"model": m.name, "reference": m.ref, "status": m.status,
         "what to do": m.remedy if m.status != "available" else ""}
        for m in list_models()
    ]


@st.cache_data(ttl=2, show_spinner=False)
def recent_jobs(workspace: str, limit: int = 8) -> list[dict]:
    from workbench.jobs import list_jobs

    return [
        {"id": j.id, "kind": j.kind, "title": j.title, "status": j.status,
         "progress": f"{j.progress_step}/{j.progress_total}" if j.progress_total else "", "message": j.message,
         "created": j.created_at.strftime("%Y-%m-%d %H:%M")}
        for j in list_jobs(limit=limit)
    ]


def demo_badge(ref: str) -> str:
    """A label to show next to a model name: tiny demo models are always marked as such."""
    from workbench.models.sources import is_demo_model

    return " 🧪 demo model" if is_demo_model(ref) else ""


def tabs(labels: list[str], key: str):
    """``st.tabs`` whose choice survives reruns (a finished job reruns the page) and that ``open_tab`` can switch."""
    wanted = st.session_state.pop(f"{key}__next", None)
    if wanted in labels:
        st.session_state[key] = wanted
    return st.tabs(labels, key=key, on_change="rerun")


def open_tab(key: str, label: str) -> None:
    """Show tab ``label`` of ``tabs(…, key)`` on the next run (a widget's value can only be set before it is drawn)."""
    st.session_state[f"{key}__next"] = label
