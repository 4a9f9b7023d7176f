"""Job processes forked from the preloaded job server behave like fresh ones: log, progress, outcome, stop escalation.

These drive the supervisor (``jobs.supervisor._execute_job``) in this process, with a light preload list instead of
the model
libraries, and ``selftest`` counted as a model kind; the generate tests and the browser journey run real model jobs
through it with the real list.
"""
import multiprocessing
import os
import threading
import time

import pytest

from workbench import jobs
from workbench.jobs import spawn as jobs_spawn
from workbench.jobs import supervisor
from workbench.settings import get_settings, reload_settings


@pytest.fixture
def forking(monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "on")
    monkeypatch.setattr(jobs_spawn, "MODEL_KINDS", frozenset({"selftest"}))
    monkeypatch.setattr(jobs_spawn, "PRELOAD_MODULE", "workbench.jobs.builtin")
    monkeypatch.setattr(jobs_spawn, "_context", None)
    reload_settings()


def _supervise(job_id: int) -> threading.Thread:
    thread = threading.Thread(target=supervisor._execute_job, args=(job_id,), daemon=True)
    thread.start()
    return thread


def test_a_forked_job_logs_reports_progress_and_finishes_in_its_own_session(forking):
    job_id = jobs.enqueue("selftest", {"steps": 20, "delay": 0.05}, queue=False)
    thread = _supervise(job_id)
    deadline = time.monotonic() + 60
    while jobs.get_job(job_id).progress_step < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = jobs.get_job(job_id).pid
    assert pid and os.getsid(pid) == pid  # its own session: a stop reaches the job's children too
    thread.join(timeout=60)
    job = jobs.get_job(job_id)
    assert job.status == "done" and job.result == {"steps": 20, "process": "forked"}
    assert (job.progress_step, job.progress_total) == (20, 20)
    log = jobs.log_tail(job, 100)
    assert "forked from the preloaded job server" in log and "step 20/20" in log
    assert all(p.pid != pid for p in multiprocessing.active_children())  # a consumer that exits does not wait for it


def test_a_forked_job_that_ignores_the_stop_flag_gets_sigterm_then_sigkill(forking):
    job_id = jobs.enqueue("selftest", {"steps": 1000, "delay": 0.05, "ignore_stop": True}, queue=False)
    thread = _supervise(job_id)
    deadline = time.monotonic() + 60
    while jobs.get_job(job_id).progress_step < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    jobs.request_stop(job_id)
    thread.join(timeout=60)
    job = jobs.get_job(job_id)
    assert job.status == "stopped"
    log = jobs.log_tail(job, 200)
    assert "sending SIGTERM" in log and "sending SIGKILL" in log
    assert not jobs.pid_alive(job.pid)


def test_a_failing_forked_job_is_failed_with_its_traceback(forking):
    job_id = jobs.enqueue("selftest", {"steps": 5, "delay": 0.01, "fail_at": 3}, queue=False)
    _supervise(job_id).join(timeout=60)
    job = jobs.get_job(job_id)
    assert job.status == "failed" and "failing on purpose at step 3" in job.message
    assert "Traceback" in job.error and "step 2/5" in job.error


def test_a_job_starts_fresh_when_the_job_server_cannot_start(forking, monkeypatch):
    class Broken:
        def Process(self, **kwargs):  # noqa: N802 - multiprocessing's name
            process = multiprocessing.get_context("spawn").Process(**kwargs)
            process.start = lambda: (_ for _ in ()).throw(OSError("the job server died while importing"))
            return process

    monkeypatch.setattr(jobs_spawn, "_forkserver", lambda: Broken())
    job_id = jobs.enqueue("selftest", {"steps": 2, "delay": 0.01}, queue=False)
    _supervise(job_id).join(timeout=60)
    job = jobs.get_job(job_id)
    assert job.status == "done" and job.result["process"] == "fresh"


@pytest.mark.parametrize("setting, cuda, kind, config, expected", [
    ("auto", False, "generate", {}, True),
    ("auto", True, "generate", {}, False),  # forking after CUDA is initialised breaks CUDA in the child
    ("off", False, "evaluate", {}, False),
    ("on", True, "caption", {}, True),
    ("on", False, "selftest", {}, False),  # imports nothing heavy
    ("on", False, "generate", {"num_processes": 2}, False),  # only launches processes that import for themselves
    ("on", False, "train_lora", {"num_processes": 1}, True),
])
def test_which_jobs_are_forked(monkeypatch, setting, cuda, kind, config, expected):
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", setting)
    monkeypatch.setattr(jobs_spawn, "cuda_present", lambda: cuda)
    assert jobs_spawn.wants_preload(kind, config, reload_settings()) is expected


def test_a_training_job_follows_the_workspace_process_count(monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "on")
    monkeypatch.setenv("WORKBENCH_NUM_PROCESSES", "2")
    assert not jobs_spawn.wants_preload("train_lora", {}, reload_settings())
    assert get_settings().num_processes == 2


def test_a_forked_job_starts_while_a_page_script_is_main(forking, monkeypatch, tmp_path):
    """Streamlit (and AppTest) install the page script as ``__main__``; a forked job's process must not re-run it
    (it did: after a page test, every forked job died running the Review page bare)."""
    import sys
    import types

    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('the page ran in the job process')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    job_id = jobs.enqueue("selftest", {"steps": 3, "delay": 0.01}, queue=False)
    _supervise(job_id).join(60)
    job = jobs.get_job(job_id)
    assert job.status == "done", jobs.log_tail(job_id, 30)
    assert job.result["process"] == "forked"
