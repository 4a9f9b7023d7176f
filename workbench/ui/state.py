"""One home for session-state keys. Widget keys are prefixed by page (``home_…``, ``datasets_…``) so a widget never
overwrites a state key."""
from __future__ import annotations

import streamlit as st


class StateKeys:
    USER = "user"  # the signed-in user's name (Review adds real sign-in)
    PROMPT_BATCH = "prompt_batch_id"  # id of the saved prompt batch sent to Generate (set by the Prompts page)
    PROMPT_BATCH_SENT = "prompt_batch_sent"  # True right after "Send to Generate": Generate opens its batch tab
    SESSION = "session_token"  # the browser session's token (workbench.auth.sessions), also in the session cookie
    COOKIE_TODO = "session_cookie_todo"  # "set" / "clear": the page writes the session cookie on its next run


def init_session_state(entry_point: bool = False) -> None:
    """Every page's first call; Home.py (the entry point, whose st.navigation runs the pages) passes True."""
    st.session_state.setdefault(StateKeys.USER, "")
    st.session_state.setdefault(StateKeys.SESSION, "")
    if not entry_point:
        use_home_navigation()


def use_home_navigation() -> None:
    """Make the server run Home.py (its st.navigation: the session's sign-in, the role's pages) for every page.

    Streamlit 1.67 starts an app that has a pages/ folder in its first multipage mode, where opening /Datasets runs
    pages/1_Datasets.py alone, until some run calls st.navigation; a fresh server reached by a bookmark would show
    every page in the sidebar. The flag is process-wide: the first page run switches it and runs again (through
    Home.py). Home.py itself needs nothing: its st.navigation switches the flag."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Once per browser session: a rerun drops the widget events of the run it replaces (a click), and
        # Streamlit's AppTest resets the flag before every run, so it would otherwise drop every click there.
        if not st.session_state.get("_home_navigation"):
            st.session_state["_home_navigation"] = True
            st.rerun()
