"""Faults (issue #23 item 4): the PostgreSQL server restarted while a job runs. A private server for the test (never
the shared one of .ci/run, which other tests use at the same time): a worker, a job reporting progress, ``pg_ctl
restart -m fast`` at a seeded random step (every connection is cut; the server is away for a moment). The job must
end in a true state, the worker must go on taking jobs."""
import time

import pytest

from helpers.faults import fault_rng
from workbench import db, jobs
from workbench.settings import reload_settings


@pytest.fixture
def private_postgres(workspace, monkeypatch):
    from helpers.services import PostgresServer

    try:
        server = PostgresServer.start()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc}; .ci/run installs it")
    try:
        url = server.new_database("template0")
        monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)  # the worker and its job processes inherit it
        db.reset_for_tests()
        reload_settings()
        db.init_db()
        yield server
    finally:
        db.reset_for_tests()
        server.stop()


def _wait_step(job_id: int, step: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while jobs.get_job(job_id).progress_step < step and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.get_job(job_id).progress_step >= step, jobs.log_tail(job_id)


@pytest.mark.slow
def test_a_job_ends_true_when_postgres_restarts_mid_job_and_the_worker_goes_on(private_postgres, tmp_path):
    from conftest import _worker

    rng, seed = fault_rng("postgres restart")
    steps = 24
    at = rng.randint(2, steps - 8)  # the step the server is stopped at
    down = round(rng.uniform(1.0, 2.5), 2)  # seconds with no server: longer than a progress write's interval
    print(f"[faults] stopping PostgreSQL at step {at} of {steps} for {down} s")
    worker = _worker(tmp_path)
    next(worker)
    try:
        job_id = jobs.enqueue("selftest", {"steps": steps, "delay": 0.1})
        _wait_step(job_id, at)
        took = private_postgres.restart(down)
        db.dispose_engines()  # this test process's own pooled connections were cut too
        job = jobs.wait_for(job_id, timeout=120)
        log = jobs.log_tail(job, 200)
        assert job.status == "done", f"seed {seed}, restart at step {at} (away {took:.1f} s): {job.status} " \
                                     f"{job.message}\n{log}"
        assert (job.progress_step, job.progress_total) == (steps, steps)
        assert job.result["steps"] == steps and f"step {steps}/{steps}" in log
        assert "not recorded yet: the database is unreachable" in log  # the fault did land while the job ran
        # the consumer survived the restart: it takes and finishes the next job
        after = jobs.enqueue("selftest", {"steps": 2, "delay": 0.01})
        assert jobs.wait_for(after, timeout=90).status == "done", (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        next(worker, None)
