"""Several approvers deciding at once through the served app (issue #23 item 5, scaled down from
bench/load_served.py): three signed-in approvers in headless Chromium start on the same image of a six-image queue;
every decision a page acknowledged is recorded exactly once, no image is decided twice, no page shows an error.
The checker itself is tested without a browser: an acknowledgement without its row is lost, a row without an
acknowledgement is a phantom."""
from __future__ import annotations

import pytest

from workbench.browser import find_chromium
from workbench.browser.load import LoadPlan, Observed, Seeded, check_database, run_load


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(600)  # ~25 s idle; 100-120 s on this machine at a load average of 20
def test_three_approvers_on_one_queue_lose_and_double_no_decision(workspace, tmp_path):
    pytest.importorskip("playwright.async_api", reason="pip install playwright (requirements-test.txt)")
    if not find_chromium():
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run installs it)")
    plan = LoadPlan(approvers=3, marketers=0, analysts=0, images=6, seconds=20, spread=False, ramp=0.2,
                    action_timeout=90)
    report = run_load(plan, workspace, log=tmp_path / "streamlit.log")
    d = report["decisions"]
    assert report["errors"] == []
    assert d["lost"] == [] and d["phantom"] == [] and d["decided_twice"] == [] and d["audit_mismatch"] == []
    assert d["acknowledged"] >= 1 and d["acknowledged"] == d["recorded"]  # every click answered, every answer kept
    assert d["images_left_pending"] == 6 - d["recorded"]
    assert report["ok"], report
    answered = report["actions"]
    assert answered.get("approved:ok", 0) + answered.get("rejected:ok", 0) == d["acknowledged"]


def test_check_database_reports_a_lost_and_a_phantom_decision(workspace):
    from helpers.review import make_generation, make_users

    from workbench.review import decide

    make_users()
    images = [make_generation(seed=i) for i in range(3)]
    decide("ana", images[0], "approve")
    decide("ana", images[1], "reject", comment="off brand")
    seen = Observed(decisions=[(images[0], "ana", "approved"), (images[2], "ana", "approved")])
    report = check_database(seen, Seeded(["ana"], [], [], images), LoadPlan(jobs_timeout=0))
    d = report["decisions"]
    assert d["lost"] == [(images[2], "ana", "approved")]  # the page said so, the database does not
    assert d["phantom"] == [(images[1], "ana", "rejected")]  # recorded, never acknowledged
    assert d["decided_twice"] == [] and d["audit_mismatch"] == [] and d["images_left_pending"] == 1


def test_the_served_app_is_found_among_children_that_include_a_zombie():
    """The served-app tests find their `streamlit run` child by its port; a child some earlier test left exited but
    unreaped (a zombie, whose command line cannot be read) must not stop the search (it did, in a CI run:
    'psutil.ZombieProcess' at the setup of both served-app tests)."""
    import subprocess
    import sys
    import time

    import psutil

    from workbench.browser import server_process

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "streamlit", "48123"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE
        assert server_process("http://127.0.0.1:48123").pid == server.pid
        with pytest.raises(LookupError, match="no streamlit process"):
            server_process("http://127.0.0.1:48124")
    finally:
        server.kill()
        server.wait()
        zombie.wait()
