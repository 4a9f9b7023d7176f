"""``python -m workbench.jobs [N] [--idle-exit SECONDS]``: a job consumer for the workspace in WORKBENCH_WORKSPACE
(what `workbench worker` and the app's auto-start run), taking N jobs at once (default 1); with ``--idle-exit`` it
exits after that many seconds without a job (the auto-started one: settings.worker_idle_exit_seconds)."""
import argparse

from workbench.jobs.supervisor import run_worker

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m workbench.jobs")
    parser.add_argument("workers", nargs="?", type=int, default=1)
    parser.add_argument("--idle-exit", type=float, default=0.0)
    args = parser.parse_args()
    run_worker(workers=args.workers, idle_exit=args.idle_exit)
