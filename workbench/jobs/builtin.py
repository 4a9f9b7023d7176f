"""Built-in job kinds. ``selftest`` checks that the queue, the worker and progress reporting work end to end:
``workbench jobs selftest``. Config: steps (int), delay (seconds per step), fail_at (step that raises),
ignore_stop (keep running after a stop request, to exercise SIGTERM/SIGKILL), child (run the loop in a child process).
"""
from __future__ import annotations

import os
import sys
import time


def selftest(ctx) -> dict:
    steps = int(ctx.config.get("steps", 5))
    delay = float(ctx.config.get("delay", 0.1))
    fail_at = ctx.config.get("fail_at")
    ignore_stop = bool(ctx.config.get("ignore_stop", False))
    if ctx.config.get("child"):
        code = (f"import time\nfor i in range({steps}):\n    print(f'child step {{i + 1}}/{steps}', flush=True)\n"
                f"    time.sleep({delay})\n")
        rc = ctx.run_child([sys.executable, "-c", code])
        if rc != 0 and not ctx.should_stop():
            raise RuntimeError(f"child process exited with code {rc}")
        return {"steps": steps, "child_rc": rc, "process": _process()}
    for step in range(1, steps + 1):
        if not ignore_stop:
            ctx.check_stop()
        if fail_at is not None and step == int(fail_at):
            raise RuntimeError(f"selftest failing on purpose at step {step}")
        time.sleep(delay)
        ctx.log(f"step {step}/{steps}")
        ctx.progress(step, steps, message=f"step {step}/{steps}", loss=1.0 / step)
    return {"steps": steps, "process": _process()}


def _process() -> str:
    """How this job's process was started: "fresh" or "forked" (from the preloaded job server)."""
    from workbench.jobs.runner import PROCESS_ENV

    return os.environ.get(PROCESS_ENV, "fresh")
