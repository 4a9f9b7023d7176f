"""``python -m workbench.jobs [N]``: a job consumer for the workspace in WORKBENCH_WORKSPACE (what `workbench worker`
and the app's auto-start run), taking N jobs at once (default 1)."""
import sys

from workbench.jobs.supervisor import run_worker

if __name__ == "__main__":
    run_worker(workers=int(sys.argv[1]) if len(sys.argv) > 1 else 1)
