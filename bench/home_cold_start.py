"""Cold-start time of the Home page with an empty workspace, in a fresh Python process each time.

    python bench/home_cold_start.py [--runs 5]

Measures what a user waits for on the first page load after `streamlit run Home.py`: importing the page's modules,
migrating a new database and rendering (AppTest runs the script as the server would). Prints one line per run and the
median; numbers go to docs/PERFORMANCE.md.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
t1 = time.perf_counter()
at = AppTest.from_file({home!r}, default_timeout=60).run()
t2 = time.perf_counter()
assert not at.exception, at.exception
print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    page_times = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, WORKBENCH_WORKSPACE=str(Path(tmp) / "ws"), HF_HUB_OFFLINE="1", HOME=tmp)
            out = subprocess.run([sys.executable, "-c", CHILD.format(home=str(ROOT / "Home.py"))], env=env, cwd=tmp,
                                 capture_output=True, text=True, check=True).stdout.split()
            harness, page = map(float, out[-2:])
            page_times.append(page)
            print(f"run {i + 1}: page {page:.2f} s (AppTest harness import {harness:.2f} s, not counted)")
    print(f"median page cold start: {statistics.median(page_times):.2f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
