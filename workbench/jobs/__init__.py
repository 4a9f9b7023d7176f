"""Background jobs: training, batch generation, captioning, evaluation, the demo build.

    job_id = jobs.enqueue("train_lora", config, title=..., created_by=user)   # a jobs row + a queue task
    jobs.wait_for(job_id, timeout=60); jobs.log_tail(job_id); jobs.request_stop(job_id)

Modules, each importing only those after it (no loop):

    supervisor  the queue (Huey: SQLite in the workspace, or Redis), ``enqueue`` (which starts a local consumer when
                none is alive, unless ``auto_worker`` is off), the consumer that supervises each job's process, stop
                escalation, reconciling, the worker lock
    spawn       how a job's process starts: fresh (``python -m workbench.jobs.runner ID``) or forked from a server
                that imported the model libraries once (``preload``)
    runner      the process one job runs in: ``JobContext`` (progress, log, stop flag, child processes), ``run``,
                ``run_inline``, ``accelerate_command``
    store       job kinds (``KINDS``: kind -> "module:function"), errors, reading a job and its log, waiting,
                asking a job to stop, whether its process is alive
    builtin     the ``selftest`` kind;  cli: ``workbench jobs …``;  ``python -m workbench.jobs [N]``: a consumer

This package checks no roles: a capability's entry point (``runs.start``, ``enqueue_batch``, ``enqueue_caption``,
``start_evaluation``) checks the user's role before it calls ``enqueue``, and the handler acts for ``created_by``.
"""
from workbench.jobs.runner import JobContext, accelerate_command, run_inline
from workbench.jobs.store import (HOST, KINDS, LOG_TAIL_LINES, JobError, JobStopped, get_job, list_jobs, log_path_for,
                                  log_tail, pid_alive, request_stop, wait_for)
from workbench.jobs.supervisor import enqueue, ensure_worker, get_huey, reconcile, run_worker, worker_alive

__all__ = ["HOST", "KINDS", "LOG_TAIL_LINES", "JobContext", "JobError", "JobStopped", "accelerate_command", "enqueue",
           "ensure_worker", "get_huey", "get_job", "list_jobs", "log_path_for", "log_tail", "pid_alive", "reconcile",
           "request_stop", "run_inline", "run_worker", "wait_for", "worker_alive"]
