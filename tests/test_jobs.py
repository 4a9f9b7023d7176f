"""Job lifecycle against a real Huey consumer and real job processes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench import jobs


@pytest.mark.empty_workspace
def test_migrations_are_safe_when_app_and_worker_start_together(workspace):
    """Several processes initialising one new workspace at once must all succeed (one migrates, the rest wait)."""
    code = "from workbench.db import init_db, current_revisions; init_db(); print(sorted(current_revisions()))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outs]
    assert len({out for out, _ in outs}) == 1


@pytest.fixture(params=["sqlite", "postgresql+redis"])
def stack_worker(request, workspace, tmp_path):
    """A worker on the embedded stack (SQLite database and queue) and on a team's (PostgreSQL and Redis)."""
    if request.param == "postgresql+redis":
        request.getfixturevalue("postgres_db")
        request.getfixturevalue("redis_queue")
    from conftest import _worker

    yield from _worker(tmp_path)


def test_enqueue_runs_to_done_with_progress_and_log(stack_worker):
    from workbench.db import get_engine
    from workbench.settings import get_settings

    team = bool(get_settings().redis_url)
    assert (get_engine().dialect.name, type(jobs.get_huey()).__name__) == (
        ("postgresql", "RedisHuey") if team else ("sqlite", "SqliteHuey"))
    job_id = jobs.enqueue("selftest", {"steps": 4, "delay": 0.05}, title="smoke", created_by="ada")
    assert jobs.get_job(job_id).status in ("queued", "running")
    job = jobs.wait_for(job_id, timeout=90)
    assert job.status == "done"
    assert (job.progress_step, job.progress_total) == (4, 4)
    assert job.metrics["loss"] == pytest.approx(0.25)
    assert job.result == {"steps": 4, "process": "fresh"}
    assert job.created_by == "ada" and job.started_at and job.finished_at
    assert "step 4/4" in jobs.log_tail(job)


def test_progress_is_visible_while_running(worker):
    job_id = jobs.enqueue("selftest", {"steps": 40, "delay": 0.1})
    jobs.wait_for(job_id, ("running",), timeout=90)
    deadline = time.monotonic() + 60
    while jobs.get_job(job_id).progress_step < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    job = jobs.get_job(job_id)
    assert job.status == "running" and 3 <= job.progress_step < 40 and job.pid
    jobs.request_stop(job_id)
    assert jobs.wait_for(job_id, timeout=90).status == "stopped"


def test_failing_job_is_failed_with_its_log_tail(worker):
    job_id = jobs.enqueue("selftest", {"steps": 5, "delay": 0.01, "fail_at": 3})
    job = jobs.wait_for(job_id, timeout=90)
    assert job.status == "failed"
    assert "failing on purpose at step 3" in job.message
    assert "Traceback" in job.error and "step 2/5" in job.error


def _wait_until_stepping(job_id: int) -> None:
    """The status says running as soon as the job process is spawned: wait until its own loop is going (and its
    SIGTERM handler installed). A stop sent while it still imports ends it before its first step: not what these
    tests are about."""
    deadline = time.monotonic() + 90
    while jobs.get_job(job_id).progress_step < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.get_job(job_id).progress_step >= 1, jobs.log_tail(job_id)


def test_stop_flag_is_honoured_by_a_cooperative_job(worker):
    job_id = jobs.enqueue("selftest", {"steps": 200, "delay": 0.05})
    _wait_until_stepping(job_id)
    jobs.request_stop(job_id)
    job = jobs.wait_for(job_id, timeout=90)
    assert job.status == "stopped" and job.progress_step < 200
    assert "SIGTERM" not in jobs.log_tail(job)


def test_stop_escalates_to_sigterm_then_sigkill(worker):
    job_id = jobs.enqueue("selftest", {"steps": 1000, "delay": 0.05, "ignore_stop": True})
    _wait_until_stepping(job_id)
    jobs.request_stop(job_id)
    job = jobs.wait_for(job_id, timeout=90)  # grace is 1 s in tests: flag -> SIGTERM -> SIGKILL
    assert job.status == "stopped"
    log = jobs.log_tail(job, 200)
    assert "sending SIGTERM" in log and "sending SIGKILL" in log
    assert not jobs.pid_alive(job.pid)


def test_stop_reaches_a_child_process(worker):
    job_id = jobs.enqueue("selftest", {"steps": 1000, "delay": 0.05, "child": True})
    deadline = time.monotonic() + 90
    while "child step 3/" not in jobs.log_tail(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "child step" in jobs.log_tail(job_id), "the child's output is streamed into the job log"
    jobs.request_stop(job_id)
    assert jobs.wait_for(job_id, timeout=90).status == "stopped"


def test_queued_job_stops_without_running(workspace):
    job_id = jobs.enqueue("selftest", {"steps": 3})  # no worker: it stays queued
    assert jobs.request_stop(job_id).status == "stopped"
    assert jobs.get_job(job_id).started_at is None


def test_unknown_kind_is_refused_with_the_known_kinds(workspace):
    with pytest.raises(jobs.JobError, match="unknown job kind 'trian'.*selftest"):
        jobs.enqueue("trian", {})


def test_reconcile_after_sigkill_marks_the_job_failed_with_its_log(worker):
    job_id = jobs.enqueue("selftest", {"steps": 1000, "delay": 0.05})
    deadline = time.monotonic() + 90
    while jobs.get_job(job_id).progress_step < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    job = jobs.get_job(job_id)
    assert job.progress_step >= 2 and job.pid, f"the job never got going: {job.status} {job.message}"
    # The machine "crashes": consumer and job process die at once, nobody writes an outcome.
    os.killpg(worker.pid, signal.SIGKILL)
    os.killpg(job.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while jobs.pid_alive(job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.get_job(job_id).status == "running"  # stale until someone reconciles
    assert jobs.reconcile() == [job_id]
    job = jobs.get_job(job_id)
    assert job.status == "failed" and "is gone" in job.message
    assert "step 1/1000" in job.error
    assert jobs.reconcile() == []


def test_ensure_worker_starts_one_only_when_none_is_alive(workspace):
    assert not jobs.worker_alive()
    assert jobs.ensure_worker() is True
    try:
        deadline = time.monotonic() + 20
        while not jobs.worker_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs.worker_alive()
        assert jobs.ensure_worker() is False
        job_id = jobs.enqueue("selftest", {"steps": 2, "delay": 0.01})
        assert jobs.wait_for(job_id, timeout=90).status == "done"
    finally:
        pid = int((workspace / "worker.lock").read_text().split()[-1])
        os.kill(pid, signal.SIGKILL)


# -- issue #17 item 12: a job whose process died after its worker was replaced ---------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: no process has it (pid reuse within the test is very unlikely)


def _mark_running(job_id: int, pid: int, host: str = jobs.HOST) -> None:
    from workbench.db import Job, session_scope, utcnow

    with session_scope() as s:
        row = s.get(Job, job_id)
        row.status, row.pid, row.host, row.started_at = "running", pid, host, utcnow()


@pytest.fixture
def fast_reconcile_worker(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RECONCILE_SECONDS", "0.5")
    from conftest import _worker

    yield from _worker(tmp_path)


def test_a_live_worker_reconciles_a_job_whose_process_died_within_its_interval(fast_reconcile_worker):
    """The job was started by a worker that is gone (replaced by this one), then its process died: this worker marks
    it failed within its reconcile interval instead of leaving it 'running' for ever. A job recorded on another host
    is not judged by this machine's process table."""
    mine, theirs = jobs.enqueue("selftest", {}, queue=False), jobs.enqueue("selftest", {}, queue=False)
    _mark_running(mine, _dead_pid())
    _mark_running(theirs, _dead_pid(), host="another-gpu-machine")
    deadline = time.monotonic() + 15
    while jobs.get_job(mine).status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    job = jobs.get_job(mine)
    assert job.status == "failed" and "is gone" in job.message
    assert jobs.get_job(theirs).status == "running"


def test_stop_on_a_job_whose_process_is_gone_ends_it_at_once(workspace):
    job_id = jobs.enqueue("selftest", {}, queue=False)
    _mark_running(job_id, _dead_pid())
    job = jobs.request_stop(job_id)
    assert job.status == "stopped" and "already gone" in job.message and job.finished_at is not None
    elsewhere = jobs.enqueue("selftest", {}, queue=False)
    _mark_running(elsewhere, _dead_pid(), host="another-gpu-machine")
    job = jobs.request_stop(elsewhere)  # its own host's worker judges it: here only the flag is set
    assert job.status == "running" and job.stop_requested and "another-gpu-machine" in job.message


def test_a_job_run_in_the_callers_process_records_its_host(workspace):
    from workbench.jobs.runner import run_inline

    job_id = jobs.enqueue("selftest", {"steps": 1, "delay": 0.0}, queue=False)
    assert run_inline(job_id) == 0
    job = jobs.get_job(job_id)
    assert job.status == "done" and job.host == jobs.HOST and job.pid == os.getpid()


def test_progress_while_the_database_is_away_logs_the_outage_once_and_its_end(monkeypatch, capsys):
    """A PostgreSQL restart during a training run: each progress write fails for a while. The job's log says so once
    (not a line every half second), says when progress is recorded again, and nothing reported in between is lost."""
    from sqlalchemy.exc import OperationalError

    from workbench.jobs import runner

    job_id = jobs.enqueue("selftest", {"steps": 10}, title="outage", queue=False)
    ctx = runner.JobContext(jobs.get_job(job_id))
    real = runner.session_scope
    away = {"on": True}

    def session_scope(*args, **kwargs):
        if away["on"]:
            raise OperationalError("UPDATE jobs", {}, Exception("server closed the connection unexpectedly"))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "session_scope", session_scope)
    for step in range(1, 6):
        ctx.progress(step, 10, force=True, loss=1.0 / step)
    away["on"] = False
    ctx.progress(6, 10, force=True)
    ctx.progress(7, 10, force=True)
    log = capsys.readouterr().out
    assert log.count("not recorded yet: the database is unreachable") == 1, log
    assert log.count("recorded again") == 1 and "after 5 unrecorded updates" in log, log
    job = jobs.get_job(job_id)
    assert (job.progress_step, job.progress_total) == (7, 10) and job.metrics["loss"] == pytest.approx(0.2)


def test_a_killed_jobs_process_ends_the_jobs_it_ran_inside_it_too():
    """The demo job runs its training run and its generation job inside its own process (``run_inline``): when that
    process is killed, the supervisor that records the demo job's end fails those too, at once, instead of leaving
    the training run 'running' until a reconcile finds it."""
    from workbench.db import Job, session_scope
    from workbench.jobs.store import HOST
    from workbench.jobs.supervisor import _finish_if_unfinished

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    demo = jobs.enqueue("selftest", {"steps": 9}, title="demo", queue=False)
    inner = jobs.enqueue("selftest", {"steps": 120}, title="training inside the demo", queue=False)
    other = jobs.enqueue("selftest", {"steps": 3}, title="another process's job", queue=False)
    with session_scope() as s:
        for job_id, pid in ((demo, dead.pid), (inner, dead.pid), (other, os.getpid())):
            row = s.get(Job, job_id)
            row.status, row.pid, row.host = "running", pid, HOST
    _finish_if_unfinished(demo, -signal.SIGKILL)
    assert jobs.get_job(demo).status == "failed"
    ended = jobs.get_job(inner)
    assert ended.status == "failed" and f"process {dead.pid} is gone" in ended.message
    assert jobs.get_job(other).status == "running"  # a live process's job is left alone
