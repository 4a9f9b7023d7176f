"""Load on the served app (issue #23 item 5): 20 approvers deciding at once, 5 marketers queueing small generations
and 1 analyst starting an evaluation, each a signed-in user in headless Chromium, for a bounded time on loopback
(``--seconds`` of work per person after their sign-in).

    python bench/load_served.py [--seconds 120] [--approvers 20 --marketers 5 --analysts 1 --images 60]
                                [--ramp 1] [--action-timeout 120] [--keep DIR] [--out report.json]

Seeds a fresh workspace (users, pending placeholder images, the tiny model kit, a one-prompt batch), serves it with
`streamlit run Home.py` on a free port (headless, no file watcher) and drives it with workbench.browser.load; then
checks the database: every decision a page acknowledged is recorded exactly once, no image decided twice, every
queued generation a job that ended done, no page with an exception, an error box or a dropped websocket. Prints
the report as JSON (page times p50/p95/max per role and per action, the machine's load average) and exits 1 when
anything was lost, doubled or broken. Numbers go to docs/RELIABILITY.md and docs/PERFORMANCE.md.
Needs Chromium (`apt-get install chromium`) and Playwright (requirements-test.txt).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--approvers", type=int, default=20)
    parser.add_argument("--marketers", type=int, default=5)
    parser.add_argument("--analysts", type=int, default=1)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--generations", type=int, default=2, help="jobs each marketer queues")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds between two people's first page loads")
    parser.add_argument("--action-timeout", type=float, default=120, help="seconds one click may wait for its answer")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="workbench-load-"))
    workspace = args.keep or tmp / "workspace"
    if workspace.exists() and any(workspace.iterdir()):
        parser.error(f"{workspace} is not empty: the bench seeds a fresh workspace")
    # Before workbench reads its settings: this workspace, offline, caches in the temp dir.
    os.environ.update(WORKBENCH_WORKSPACE=str(workspace), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "cache"))
    sys.path.insert(0, str(ROOT))
    from workbench.browser import find_chromium
    from workbench.browser.load import LoadPlan, run_load

    if not find_chromium():
        parser.error("Chromium is not installed: apt-get install chromium")
    plan = LoadPlan(approvers=args.approvers, marketers=args.marketers, analysts=args.analysts, images=args.images,
                    seconds=args.seconds, generations_per_marketer=args.generations, ramp=args.ramp,
                    action_timeout=args.action_timeout)
    try:
        report = run_load(plan, workspace, log=tmp / "streamlit.log")
    finally:
        log = tmp / "streamlit.log"
        if log.exists():
            print(f"server log: {log}", file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if report["ok"] and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
