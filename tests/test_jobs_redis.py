"""The shared queue: with WORKBENCH_REDIS_URL set, jobs go through Redis (several GPU machines, one queue).
Runs against a real redis-server on loopback (the session's `redis_server`: .ci/run's, else a private one when
redis-server is installed); skips otherwise. tests/test_jobs_workers.py runs two workers on one Redis queue."""
import os
import signal
import subprocess
import sys


from workbench import jobs
from workbench.settings import get_settings


def test_jobs_run_through_a_redis_queue(redis_queue, tmp_path):
    settings = get_settings()
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
