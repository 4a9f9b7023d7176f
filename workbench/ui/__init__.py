"""The only streamlit-aware code: cached loaders, shared widgets, session-state keys."""
