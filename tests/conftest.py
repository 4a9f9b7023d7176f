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


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A fresh, empty workspace for every test (WORKBENCH_WORKSPACE), with settings and engines reset."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws))
    monkeypatch.setenv("WORKBENCH_STOP_GRACE_SECONDS", "1")
    # Most tests' workers run one model job: forking them from a preloaded server would only add its ~20 s import.
    # The `preloaded_worker` fixture and the browser journey use it (the product's default on CPU machines).
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "off")
    # Queueing does not start a consumer in tests: those that run jobs start one (the `worker` fixtures) and stop it.
    monkeypatch.setenv("WORKBENCH_AUTO_WORKER", "false")
    monkeypatch.chdir(tmp_path)  # no stray workbench.toml from the repo
    db.reset_for_tests()
    reload_settings()
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
