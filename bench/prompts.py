"""Time to expand a 10,000-prompt batch with rule checks and CLIP token counts (the target: under 5 s on 2 cores).

    python bench/prompts.py [--size 10000] [--runs 5]

The batch is a seeded sample from every t-shirt slot value x every scene preset with the example brand's rules, so
each prompt is different, gets its token counts (positive and negative) and its rule checks. Reported separately:
the one-off cost of loading the tokenizer in a fresh process (importing transformers, reading the vocabulary), the
expansion itself (median of ``--runs``, tokenizer already loaded), and saving the batch to a new SQLite workspace.
Numbers go to docs/PERFORMANCE.md.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_WORKSPACE", tempfile.mkdtemp(prefix="bench-prompts-"))

    t0 = time.perf_counter()
    from workbench.prompts import BatchSpec, expand_batch, load_library, save_batch
    from workbench.auth import system_actor
    from workbench.prompts.tokens import clip_tokenizer

    clip_tokenizer()
    load_s = time.perf_counter() - t0

    lib = load_library()
    template = lib.template("t-shirt")
    spec = BatchSpec("t-shirt", slots={name: ["*"] for name in template.slots}, scenes=list(lib.scenes),
                     brand="northwind", mode="sample", sample_size=args.size, seed=0, cap=max(args.size, 10_000))
    times = []
    for i in range(args.runs):
        t = time.perf_counter()
        batch = expand_batch(lib, spec)
        times.append(time.perf_counter() - t)
        print(f"run {i + 1}: {len(batch.prompts):,} prompts from {batch.combinations:,} combinations "
              f"in {times[-1]:.2f} s "
              f"({batch.with_violations} break rules, {batch.truncated} over 77 tokens, "
              f"{batch.duplicates_removed} duplicates)")
    t = time.perf_counter()
    save_batch(system_actor("bench", role="marketer"), batch, "bench")
    save_s = time.perf_counter() - t

    print(f"machine: {os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}")
    print(f"tokenizer load (import transformers + vocabulary, once per process): {load_s:.2f} s")
    print(f"expand {args.size:,} prompts with rule checks and token counts: median {statistics.median(times):.2f} s, "
          f"best {min(times):.2f} s over {args.runs} runs")
    print(f"save the batch to a new SQLite workspace: {save_s:.2f} s")


if __name__ == "__main__":
    main()
