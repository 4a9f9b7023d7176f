"""The shared queue: with WORKBENCH_REDIS_URL set, jobs go through Redis (several GPU machines, one queue).
Runs against a real redis-server on loopback when one is installed (apt-get install redis-server); skips otherwise."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from workbench import jobs
from workbench.settings import reload_settings


@pytest.fixture
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait()


def test_jobs_run_through_a_redis_queue(redis_url, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_REDIS_URL", redis_url)
    settings = reload_settings()
    assert type(jobs.get_huey(settings)).__name__ == "RedisHuey"
    job_id = jobs.enqueue("selftest", {"steps": 3, "delay": 0.01})
    assert not (settings.workspace_dir / "queue.db").exists()  # nothing queued locally
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        job = jobs.wait_for(job_id, timeout=90)
        assert job.status == "done" and job.progress_step == 3
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        log.close()
