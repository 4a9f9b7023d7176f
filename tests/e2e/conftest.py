"""Real-browser tests: the app served by `streamlit run` on localhost, driven by Playwright in Debian's Chromium.

Chromium comes from Debian (`apt-get install chromium`, which .ci/run does); Playwright cannot download its own browser
here, and tests never install system packages: without Chromium the journey skips, saying what to install.
Screenshots of each page land in ./test-artifacts/ (set WORKBENCH_TEST_ARTIFACTS to move them).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.browser import ROOT, serve


@pytest.fixture
def app_server(tmp_path, workspace):
    """`streamlit run Home.py` on a free localhost port, over the test's fresh workspace."""
    try:
        with serve(workspace, log=tmp_path / "streamlit.log") as url:
            yield url
    except RuntimeError as exc:
        if "streamlit did not start" not in str(exc):
            raise
        pytest.fail(str(exc))


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item, so fixtures can screenshot a failed page."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
