"""Cached entry points the pages share: start-up (migrations, job reconcile) and cheap workspace reads."""
from __future__ import annotations

import streamlit as st

from workbench.settings import Settings, get_settings


@st.cache_resource(show_spinner=False)
def _startup(workspace: str, db_url: str) -> None:
    from workbench.db import init_db
    from workbench.jobs import reconcile

    init_db()
    reconcile()


def startup() -> Settings:
    """Run once per workspace per server: apply migrations, mark jobs whose process is gone as failed."""
    settings = get_settings()
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
        {"model": m.name, "reference": m.ref, "status": m.status, "what to do": m.remedy if m.status != "available" else ""}
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
