"""Faults (issue #23 item 4): the served app (`streamlit run Home.py`) SIGKILLed while a job it queued runs. The job
runs in the worker the app started (its own session, so the app's death does not reach it) and goes on; a restarted
app's start-up reconcile leaves it alone; a new visitor of Home sees it running, stops it with the panel's Stop
button, and sees it end as stopped. Driven in headless Chromium (skips without it, like tests/e2e/)."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from helpers.faults import fault_rng
from workbench import jobs
from workbench.browser import see, serve, server_process, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait(predicate, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(900)
def test_the_served_app_killed_while_its_job_runs_the_job_goes_on_and_the_restarted_app_shows_it(
        browser, workspace, tmp_path):
    rng, seed = fault_rng("served app")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        with serve(workspace, log=tmp_path / "first.log") as first:
            page.goto(first)
            settle(page)
            page.get_by_role("button", name="Create demo workspace").click()
            settle(page)
            job = _wait(lambda: next((j for j in jobs.list_jobs(kind="demo") if j.status == "running" and j.pid),
                                     None), "the demo job's process", timeout=300)
            delay = round(rng.uniform(0.0, 3.0), 2)  # a random moment of the job's start-up to kill the app at
            print(f"[faults] killing the app {delay} s after job {job.id} started (seed {seed})")
            time.sleep(delay)
            app = server_process(first)
            os.killpg(app.pid, signal.SIGKILL)  # the app's process group: the server and anything it ran itself
            app.wait(30)
            log_size = os.path.getsize(job.log_path)
            assert jobs.get_job(job.id).status == "running" and jobs.pid_alive(job.pid), f"seed {seed}"
            assert jobs.worker_alive(), "the worker the app started died with it"
            _wait(lambda: os.path.getsize(job.log_path) > log_size, "the job to go on writing its log")

            with serve(workspace, log=tmp_path / "second.log") as second:  # the app restarted
                page.goto(second)
                settle(page)
                see(page, re.compile(rf"demo workspace — job {job.id}, running"))
                assert jobs.get_job(job.id).status == "running"  # the restart's reconcile left the live job alone
                page.locator("[data-testid='stMain']").get_by_role("button", name="Stop").click()  # the panel's
                settle(page)
                ended = jobs.wait_for(job.id, timeout=180)
                assert ended.status == "stopped" and ended.finished_at is not None, (ended.message, seed)
                assert not jobs.pid_alive(job.pid)
                see(page, re.compile(rf"demo workspace — job {job.id}, stopped"))  # the panel follows it
    finally:
        page.close()
