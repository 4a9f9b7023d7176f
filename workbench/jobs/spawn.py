"""How the supervising consumer starts a job's process.

Two ways, the same process afterwards (its own session, its output in the job's log, ``runner.run(job_id)``):

- **fresh**: ``python -m workbench.jobs.runner JOB_ID``. Every model job then first imports torch, diffusers and
  transformers: about 20 s on a 2-core machine before the first step.
- **preloaded**: a fork of a server process that imported those libraries once (``multiprocessing``'s forkserver
  with a preload list, started by the consumer on its first model job). A job then starts in about a second.

The preloaded way is used on machines without a CUDA device (``jobs_preload = "auto"``, the default), where those
imports are most of a short job. A process that forks must not have initialised CUDA, and on a GPU machine the
imports are small next to a training run or a batch, so GPU machines start jobs fresh. ``WORKBENCH_JOBS_PRELOAD``
(``on`` / ``off``) overrides; only Linux forks. ``selftest`` jobs, which import nothing heavy, and jobs that only
launch other processes always start fresh. The job server holds the imported libraries (~1 GiB resident, shared
copy-on-write with the jobs) for as long as the consumer runs; if it cannot start, jobs start fresh.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from workbench.jobs.runner import PROCESS_ENV
from workbench.procs import plain_main
from workbench.settings import Settings

# Job kinds whose handlers import the model libraries.
MODEL_KINDS = frozenset({"caption", "generate", "evaluate", "train_lora", "demo"})
PRELOAD_MODULE = "workbench.jobs.preload"


class JobProcess(Protocol):
    pid: int

    def poll(self) -> int | None: ...


class _Forked:
    """A preloaded job process, with the bits of ``subprocess.Popen`` the supervisor uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess):
        self._process = process
        self.pid: int = process.pid  # type: ignore[assignment]

    def poll(self) -> int | None:
        return self._process.exitcode  # negative signal number when killed, like Popen.returncode


def cuda_present() -> bool:
    """A CUDA device on this machine, found without initialising CUDA in this process (Linux device files)."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def preload_enabled(settings: Settings) -> bool:
    if not sys.platform.startswith("linux"):
        return False  # forkserver: POSIX only, and forking after macOS system frameworks loaded is unsafe
    if settings.jobs_preload == "auto":
        return not cuda_present()
    return settings.jobs_preload == "on"


_context: multiprocessing.context.BaseContext | None = None


def _forkserver() -> multiprocessing.context.BaseContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([PRELOAD_MODULE])  # modules that fail to import are skipped by the server
        _context = ctx
    return _context


def _child(job_id: int, log_path: str, env: dict[str, str]) -> None:
    """In the forked process: become a job process like a fresh one, then run the job."""
    os.setsid()  # its own session and process group: a stop reaches the job's children too
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    os.environ.update(env)
    from workbench.settings import reload_settings

    reload_settings()  # the server was started for another job: read this job's environment
    from workbench.jobs.runner import run

    code = run(job_id)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def wants_preload(kind: str, config: dict, settings: Settings) -> bool:
    """Whether this job's process should be a preloaded fork: a model job that does its work itself. A job split
    over several processes only launches them (``accelerate launch``), which import for themselves."""
    if kind not in MODEL_KINDS or not preload_enabled(settings):
        return False
    processes = config.get("num_processes") or (settings.num_processes if kind == "train_lora" else 1)
    return int(processes) == 1


def start_job_process(job_id: int, kind: str, config: dict, log_path: Path, settings: Settings) -> JobProcess:
    """Start the process for one job, its output appended to ``log_path``."""
    env = {"PYTHONUNBUFFERED": "1", "WORKBENCH_WORKSPACE": str(settings.workspace_dir)}
    if wants_preload(kind, config, settings):
        process = _forkserver().Process(target=_child, args=(job_id, str(log_path), env | {PROCESS_ENV: "forked"}),
                                        daemon=False, name=f"workbench-job-{job_id}")
        try:
            with plain_main():  # the child must not re-run a page script that is __main__ here (AppTest, Streamlit)
                process.start()
        except Exception as exc:  # noqa: BLE001 - the job server is a speed-up: without it the job starts fresh
            print(f"[workbench] could not fork job {job_id} from the job server ({type(exc).__name__}: {exc}); "
                  "starting it fresh", flush=True)
        else:
            # Jobs outlive the consumer (like fresh ones, which run in their own session): a consumer that exits must
            # not wait for them, which multiprocessing does at exit for the children it knows about.
            multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]
            return _Forked(process)
    fresh_env = {k: v for k, v in os.environ.items() if k != PROCESS_ENV} | env
    with open(log_path, "ab", buffering=0) as log:
        return subprocess.Popen([sys.executable, "-m", "workbench.jobs.runner", str(job_id)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=fresh_env,
                                start_new_session=True)
