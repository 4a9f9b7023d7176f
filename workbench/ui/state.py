"""One home for session-state keys. Widget keys are prefixed by page (``home_…``, ``datasets_…``) so a widget never
overwrites a state key."""
from __future__ import annotations

import streamlit as st


class StateKeys:
    USER = "user"  # the signed-in user's name (Review adds real sign-in)
    PROMPT_BATCH = "prompt_batch_id"  # id of the saved prompt batch sent to Generate (set by the Prompts page)
    PROMPT_BATCH_SENT = "prompt_batch_sent"  # True right after "Send to Generate": Generate opens its batch tab


def init_session_state() -> None:
    st.session_state.setdefault(StateKeys.USER, "")
