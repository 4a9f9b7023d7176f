"""One home for session-state keys. Widget keys are prefixed by page (``home_…``, ``datasets_…``) so a widget never
overwrites a state key."""
from __future__ import annotations

import streamlit as st


class StateKeys:
    USER = "user"  # the signed-in user's name (Review adds real sign-in)
    PROMPT_BATCH = "prompt_batch_id"  # id of the saved prompt batch sent to Generate (set by the Prompts page)
    SESSION = "session_token"  # the browser session's token (workbench.auth.sessions), also in the session cookie
    COOKIE_TODO = "session_cookie_todo"  # "set" / "clear": the page writes the session cookie on its next run


def init_session_state() -> None:
    st.session_state.setdefault(StateKeys.USER, "")
    st.session_state.setdefault(StateKeys.SESSION, "")
