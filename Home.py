"""Brand Workbench — the app's entry point: the sign-in this browser resumes, the navigation each role sees, and Home.

Home (``workbench.ui.home.home_view``) needs no sign-in: anyone sees the counts and what the machine can do; job
titles are for signed-in users, and paths, the database address and package versions for admins. The sidebar lists
the pages the signed-in role can use (``workbench.ui.home.PAGES``); the others stay reachable by link or bookmark and
say who they are for. The page scripts in pages/ also run on their own (``AppTest.from_file("pages/…")``).

Run: streamlit run Home.py
"""
import streamlit as st

from workbench.ui.auth import current_user
from workbench.ui.common import startup
from workbench.ui.home import navigation_pages
from workbench.ui.state import init_session_state

st.set_page_config(page_title="Brand Workbench", page_icon="🧵", layout="wide")
init_session_state(entry_point=True)
startup()
st.navigation(navigation_pages(current_user())).run()
