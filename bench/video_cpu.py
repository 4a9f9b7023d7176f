"""Spin video speed on CPU: seconds per frame of the tiny Stable Video Diffusion pipeline
(``models.tiny.build_tiny_svd``, random weights: the numbers say what the workbench's video path costs around the
model, not what SVD XT costs), and the time to write the MP4 (H.264, PyAV) and the GIF.

    nice python bench/video_cpu.py                      # 16 frames at 64x64, 2 steps, no guidance, 3 runs
    nice python bench/video_cpu.py --size 128 --steps 4 --guidance 3

Timed per run (after one warm-up): the pipeline call, wall and CPU time (denoising ``--steps`` steps over all frames
+ chunked VAE decode, ``decode_chunk_size`` 8), divided by the frame count; then ``write_mp4`` and ``write_gif``.
Prints JSON and a Markdown row for docs/PERFORMANCE.md, labelled with the machine's CPU count, thread count and
1-minute load average (these machines are shared: a busy neighbour slows a run's wall time far more than its CPU
time). The 1024x576 SVD XT figure needs a GPU and the real weights (``workbench models pull video``). Offline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--size", type=int, default=64, help="frame width and height (multiple of 8)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--guidance", type=float, default=1.0, help="max guidance (1.0: no classifier-free guidance)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from workbench.generate.video import write_gif, write_mp4
    from workbench.models.tiny import build_tiny_svd

    pipe = build_tiny_svd(num_frames=args.frames)
    pipe.set_progress_bar_config(disable=True)
    image = Image.new("RGB", (args.size, args.size), (190, 30, 45))

    def call():
        return pipe(image, height=args.size, width=args.size, num_frames=args.frames, num_inference_steps=args.steps,
                    min_guidance_scale=1.0, max_guidance_scale=args.guidance, fps=args.fps, decode_chunk_size=8,
                    generator=torch.Generator().manual_seed(0), output_type="pil").frames[0]

    call()  # warm-up
    gen, cpu, mp4, gif = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            frames = call()
            gen.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)  # CPU seconds of every thread: less sensitive to busy neighbours
            t = time.perf_counter()
            write_mp4(Path(tmp) / "v.mp4", frames, args.fps, {"comment": "{}"})
            mp4.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_gif(Path(tmp) / "v.gif", frames, args.fps)
            gif.append(time.perf_counter() - t)
    per_frame = [g / args.frames for g in gen]
    med = statistics.median
    result = {
        "what": "tiny SVD (random weights), CPU", "frames": args.frames, "size": args.size, "steps": args.steps,
        "guidance": args.guidance, "runs": args.runs, "seconds_per_frame_median": round(med(per_frame), 4),
        "seconds_per_frame_best": round(min(per_frame), 4),
        "cpu_seconds_per_frame_median": round(med(cpu) / args.frames, 4),
        "pipeline_seconds_median": round(med(gen), 3), "mp4_seconds_median": round(med(mp4), 4),
        "gif_seconds_median": round(med(gif), 4), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
        "load_1min": round(os.getloadavg()[0], 1), "python": platform.python_version(), "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    print(f"| tiny SVD, {args.frames} frames {args.size}x{args.size}, {args.steps} steps, guidance {args.guidance:g} "
          f"| {result['seconds_per_frame_median']:.3f} s/frame (best {result['seconds_per_frame_best']:.3f}; "
          f"{result['pipeline_seconds_median']:.2f} s per video; CPU time {result['cpu_seconds_per_frame_median']:.3f} "
          f"s/frame) | MP4 {result['mp4_seconds_median']:.3f} s, GIF "
          f"{result['gif_seconds_median']:.3f} s | {result['cpus']} CPUs, {result['threads']} threads, load "
          f"{result['load_1min']} |")


if __name__ == "__main__":
    main()
