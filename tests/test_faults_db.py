"""Faults (issue #23 item 4): the PostgreSQL server restarted while a job runs. A private server for the test (never
the shared one of .ci/run, which other tests use at the same time): a worker, a job reporting progress, ``pg_ctl
restart -m fast`` at a seeded random step (every connection is cut; the server is away for a moment). The job must
end in a true state, the worker must go on taking jobs. And a server that accepts connections and never answers:
a connection start must give up in bounded time, not hang."""
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


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a hung PostgreSQL, or a half-open network path."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_postgresql_server_that_never_answers_fails_the_connection_in_bounded_time(silent_server, monkeypatch):
    """libpq waits for ever on a server that accepts and never answers; a worker stuck there would neither fail its
    job nor hand it on. The connection start now gives up (here after 2 s instead of the default 10) with an error
    that retry_database treats as 'database unreachable'."""
    import threading

    pytest.importorskip("psycopg")
    from sqlalchemy import text

    from workbench.jobs.store import database_unreachable
    from workbench.settings import Settings

    monkeypatch.setattr(db, "PG_NETWORK_LIMITS", {**getattr(db, "PG_NETWORK_LIMITS", {}), "connect_timeout": 2},
                        raising=False)
    settings = Settings(database_url=f"postgresql+psycopg://workbench@127.0.0.1:{silent_server}/workbench")
    engine = db.get_engine(settings)
    outcome: dict = {}

    def connect():
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout=30)
    try:
        assert not thread.is_alive(), "still connecting after 30 s to a server that never answers"
        assert time.monotonic() - started < 15
        assert database_unreachable(outcome["error"]), repr(outcome.get("error"))
    finally:
        db.dispose_engines()


def test_network_limits_apply_to_postgresql_only_and_the_url_wins():
    assert db._network_limits("sqlite:////tmp/w.db") == {}
    limits = db._network_limits("postgresql+psycopg://u@h/w")
    assert limits["connect_timeout"] == 10 and limits["keepalives"] == 1
    assert "connect_timeout" not in db._network_limits("postgresql+psycopg://u@h/w?connect_timeout=3")
