"""How long a model job waits before its first step: fresh job processes against forks of the preloaded job server.

    python bench/job_start.py [--jobs 3] [--out job_start.json]

For each way of starting jobs (WORKBENCH_JOBS_PRELOAD=off, then on) it starts a real worker on a fresh workspace and
runs ``--jobs`` generation jobs one after the other (the tiny kit, one 64 px image, 2 steps: well under a second of
work, so the time to done is almost all start-up: process, imports, model load). Per job it records the seconds from
enqueue to the job's first progress report and to done. The first forked job also pays for starting the job server
(its imports), so the median of the later jobs is the figure that matters. Numbers go to
docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run_mode(mode: str, n_jobs: int, tmp: Path) -> list[dict]:
    from workbench import db, jobs
    from workbench.models.tiny import make_tiny_kit
    from workbench.settings import reload_settings

    os.environ["WORKBENCH_WORKSPACE"] = str(tmp / f"ws-{mode}")
    os.environ["WORKBENCH_JOBS_PRELOAD"] = mode
    db.reset_for_tests()
    reload_settings()
    kit = make_tiny_kit(tmp / "kit")
    worker = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        deadline = time.monotonic() + 30
        while not jobs.worker_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(n_jobs):
            config = {"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "batch": f"bench-{i}",
                      "prompts": [{"text": "a red t-shirt on white"}],
                      "params": {"width": 64, "height": 64, "steps": 2, "seed": i, "num_images": 1}}
            t0 = time.monotonic()
            job_id = jobs.enqueue("generate", config)
            first = None
            while True:
                job = jobs.get_job(job_id)
                if first is None and job.progress_total is not None:
                    first = time.monotonic() - t0
                if not job.is_active:
                    break
                time.sleep(0.05)
            if job.status != "done":
                raise SystemExit(f"job {job_id} ended {job.status}: {job.message}\n{jobs.log_tail(job)}")
            rows.append({"mode": mode, "job": i + 1, "first_progress_s": round(first, 2),
                         "done_s": round(time.monotonic() - t0, 2)})
            print(f"{mode:>4}  job {i + 1}: first progress {first:5.1f} s, done {rows[-1]['done_s']:5.1f} s",
                  flush=True)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("off", "on"):
            rows += _run_mode(mode, args.jobs, Path(tmp))
    summary = {}
    for mode in ("off", "on"):
        mine = [r for r in rows if r["mode"] == mode]
        later = mine[1:]
        summary[mode] = {"first_job_done_s": mine[0]["done_s"],
                         "later_jobs_median_done_s": statistics.median(r["done_s"] for r in later) if later else None,
                         "later_jobs_median_first_progress_s":
                             statistics.median(r["first_progress_s"] for r in later) if later else None}
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "date": time.strftime("%Y-%m-%d"), "rows": rows, "summary": summary}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
