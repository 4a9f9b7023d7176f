"""Test set-up: offline, caches in a temp dir, one fresh workspace per test."""
import os
import tempfile

# Before anything imports huggingface_hub/torch: no network, no writes to the real home.
_HOME = tempfile.mkdtemp(prefix="workbench-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
for var in ("HOME", "XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME"):
    os.environ[var] = os.path.join(_HOME, var.lower())
    os.makedirs(os.environ[var], exist_ok=True)
os.environ.setdefault("OMP_NUM_THREADS", "2")
for var in list(os.environ):
    if var.startswith("WORKBENCH_"):
        del os.environ[var]

import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from workbench import db  # noqa: E402
from workbench.settings import get_settings, reload_settings  # noqa: E402


@pytest.fixture(scope="session")
def _migrated_db(tmp_path_factory):
    """A SQLite database migrated to every head once per session: each test's workspace starts from a copy of it
    (~5 ms) instead of running the ~25 migrations again (~0.1-0.2 s on 2 cores, for ~600 tests)."""
    import sqlite3

    from workbench.settings import Settings

    root = tmp_path_factory.mktemp("migrated-db")
    settings = Settings(workspace=str(root / "ws"))
    db.init_db(settings)
    db.reset_for_tests()
    template = root / "workbench.db"
    with sqlite3.connect(settings.workspace_dir / "workbench.db") as src, sqlite3.connect(template) as dst:
        src.backup(dst)
    return template


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch, request, _migrated_db):
    """A fresh workspace for every test (WORKBENCH_WORKSPACE), with settings and engines reset. Its database is
    already migrated (a copy of ``_migrated_db``) unless the test is marked ``empty_workspace`` (then the workspace
    folder does not exist yet, as on a new machine)."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws))
    monkeypatch.setenv("WORKBENCH_STOP_GRACE_SECONDS", "1")
    # Most tests' workers run one model job: forking them from a preloaded server would only add its ~20 s import.
    # The `preloaded_worker` fixture and the browser journey use it (the product's default on CPU machines).
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "off")
    # Queueing does not start a consumer in tests: those that run jobs start one (the `worker` fixtures) and stop it.
    monkeypatch.setenv("WORKBENCH_AUTO_WORKER", "false")
    # `workbench --as NAME` sets WORKBENCH_CLI_USER for the rest of its process: undone after each test.
    monkeypatch.setenv("WORKBENCH_CLI_USER", "")
    monkeypatch.delenv("WORKBENCH_CLI_USER")
    monkeypatch.chdir(tmp_path)  # no stray workbench.toml from the repo
    db.reset_for_tests()
    settings = reload_settings()
    if request.node.get_closest_marker("empty_workspace") is None:
        import shutil

        ws.mkdir()
        shutil.copyfile(_migrated_db, ws / "workbench.db")
        db.mark_migrated(settings)
    yield ws
    db.reset_for_tests()
    get_settings.cache_clear()


def _worker(tmp_path):
    """A real Huey consumer (``python -m workbench.jobs``) for this test's workspace; its output in worker.log."""
    from workbench import jobs

    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not jobs.worker_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.worker_alive(), "the worker did not start"
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's group: the consumer and its job fork server
    except ProcessLookupError:
        pass
    proc.wait()
    log.close()


@pytest.fixture
def worker(workspace, tmp_path):
    """A worker that starts every job as a fresh process."""
    yield from _worker(tmp_path)


@pytest.fixture
def preloaded_worker(workspace, tmp_path, monkeypatch):
    """A worker that forks model jobs from its preloaded job server (workbench.jobs.spawn)."""
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "on")
    reload_settings()
    yield from _worker(tmp_path)
