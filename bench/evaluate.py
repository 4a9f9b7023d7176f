"""Evaluation benchmark: images/s on this machine's CPUs for SSIM, PSNR, the OCR logo check (RapidOCR) and FID
feature extraction (clean-fid resize to 299 + the tiny kit's extractor), all at 512x512; and peak memory of a
streaming FID + KID + PSNR + SSIM pass over 200 and 2,000 images (each count in a fresh process).

    python bench/evaluate.py                          # throughput + memory at 200 and 2,000 images
    python bench/evaluate.py --skip-memory --ocr 20   # quicker

Images are made in memory (eight catalog shots with the wordmark, shifted and noised per index), so the numbers are
the metrics' cost, not PNG decoding. Prints a JSON summary and a Markdown table for docs/PERFORMANCE.md. Offline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = dict(os.environ)  # for the memory runs: cv2 (RapidOCR) prepends its own libs to LD_LIBRARY_PATH on import
SIZE = 512


def _images(n: int, size: int = SIZE, start: int = 0):
    """n deterministic 512x512 catalog-like images (yielded in order; nothing kept)."""
    import numpy as np
    from PIL import Image

    from workbench.data.demo import COLOURS, GARMENTS, draw_garment

    base = [np.asarray(draw_garment(g, COLOURS[i % len(COLOURS)][1], size)) for i, g in enumerate(GARMENTS)]
    base.append(np.asarray(draw_garment("hoodie", COLOURS[4][1], size)))
    for i in range(start, start + n):
        rng = np.random.default_rng(i)
        a = np.roll(base[i % len(base)], shift=(int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        noise = rng.integers(-6, 7, a.shape, dtype=np.int16)
        yield Image.fromarray(np.clip(a.astype(np.int16) + noise, 0, 255).astype(np.uint8))


def _rate(fn, n: int) -> dict:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return {"images": n, "seconds": round(dt, 2), "images_per_s": round(n / dt, 2)}


def throughput(n_pixel: int, n_ocr: int, n_fid: int) -> dict:
    import torch

    from workbench.evaluate import metrics as M
    from workbench.evaluate.ocr import check_logo, load_ocr
    from workbench.models import tiny

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    out = {}
    imgs = list(_images(n_pixel))
    refs = list(_images(n_pixel, start=10_000))
    gen_t = torch.stack([M.paired_tensor(im, SIZE) for im in imgs])
    ref_t = torch.stack([M.paired_tensor(im, SIZE) for im in refs])

    def batched(metric):
        for i in range(0, n_pixel, 8):
            metric.update(gen_t[i:i + 8], ref_t[i:i + 8])

    M.Ssim().update(gen_t[:2], ref_t[:2])  # warm-up
    out["ssim"] = _rate(lambda: batched(M.Ssim()), n_pixel)
    out["psnr"] = _rate(lambda: batched(M.Psnr()), n_pixel)
    out["paired_tensor"] = _rate(lambda: [M.paired_tensor(im, SIZE) for im in imgs], n_pixel)

    engine = load_ocr("rapidocr")
    ocr_imgs = imgs[:n_ocr]
    check_logo(engine, ocr_imgs[0], "AURELO")  # warm-up (session start)
    results = []
    out["ocr_rapidocr"] = _rate(lambda: results.extend(check_logo(engine, im, "AURELO") for im in ocr_imgs), n_ocr)
    out["ocr_rapidocr"]["passed"] = sum(r.passed for r in results)
    out["ocr_rapidocr"]["backend"] = results[0].backend

    with tempfile.TemporaryDirectory() as tmp:
        extractor = tiny.TinyFeatureExtractor.from_pretrained(tiny.save_tiny_feature_extractor(Path(tmp) / "fid"))
    fid_imgs = list(_images(n_fid, start=20_000))
    feats = M.SharedFeatures(extractor)

    def extract():
        for i in range(0, n_fid, 16):
            feats(M.fid_batch(fid_imgs[i:i + 16]))

    out["fid_features_tiny"] = _rate(extract, n_fid)
    out["fid_clean_resize_only"] = _rate(lambda: [M.clean_resize(im) for im in fid_imgs], n_fid)
    return out


def memory_child(n: int, paired_px: int) -> dict:
    """One streaming pass over n images, as a run does: FID + KID features (tiny extractor), PSNR and SSIM. The
    peak RSS includes the interpreter with torch and torchmetrics imported (~750 MiB with the CUDA build of torch)."""
    import torch

    from workbench.evaluate import metrics as M
    from workbench.models import tiny

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as tmp:
        extractor = tiny.TinyFeatureExtractor.from_pretrained(tiny.save_tiny_feature_extractor(Path(tmp) / "fid"))
    dist = M.GenerativeDistances(extractor, fid_bootstrap=0, kid_subsets=10)
    psnr, ssim = M.Psnr(), M.Ssim()
    t = time.perf_counter()
    batch = 16
    refs = list(_images(batch, start=50_000))
    ref_t = torch.stack([M.paired_tensor(im, paired_px) for im in refs])
    dist.update(refs, real=True)
    dist.update(list(_images(batch, start=60_000)), real=True)
    it = _images(n)
    rss_at = {}
    done = 0
    while done < n:
        chunk = [next(it) for _ in range(min(batch, n - done))]
        dist.update(chunk, real=False)
        g = torch.stack([M.paired_tensor(im, paired_px) for im in chunk])
        psnr.update(g, ref_t[:len(chunk)])
        ssim.update(g, ref_t[:len(chunk)])
        done += len(chunk)
        if done >= n // 2 and "half" not in rss_at:
            rss_at["half"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_at["end"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r = dist.compute()
    return {"images": n, "seconds": round(time.perf_counter() - t, 1), "peak_rss_mib": round(rss_at["end"], 1),
            "peak_rss_mib_at_half": round(rss_at["half"], 1), "fid": r.fid, "kid": r.kid,
            "psnr_mean": float(psnr.compute()), "ssim_mean": float(ssim.compute()), "paired_px": paired_px}


def machine() -> str:
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{len(os.sched_getaffinity(0))} CPUs ({model}), {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixel", type=int, default=64, help="images for SSIM / PSNR")
    ap.add_argument("--ocr", type=int, default=40, help="images for OCR")
    ap.add_argument("--fid", type=int, default=128, help="images for FID feature extraction")
    ap.add_argument("--memory", default="200,2000", help="image counts for the memory runs")
    ap.add_argument("--paired-px", type=int, default=256, help="SSIM/PSNR size in the memory runs")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(memory_child(args.child, args.paired_px)))
        return
    summary = {"machine": machine(), "threads": os.environ["OMP_NUM_THREADS"], "date": time.strftime("%Y-%m-%d"),
               "load_before": os.getloadavg()[0], "memory": [],
               "throughput": {} if args.skip_throughput else throughput(args.pixel, args.ocr, args.fid)}
    if not args.skip_memory:
        for n in [int(x) for x in args.memory.split(",")]:
            out = subprocess.run([sys.executable, __file__, "--child", str(n), "--paired-px", str(args.paired_px)],
                                 capture_output=True, text=True, cwd=ROOT, env=CLEAN_ENV)
            if out.returncode:
                sys.exit(f"memory run with {n} images failed:\n{out.stderr[-3000:]}")
            summary["memory"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary["load_after"] = os.getloadavg()[0]  # 1-minute load: other work on the machine slows every number
    print(json.dumps(summary, indent=2))
    t = summary["throughput"]
    print("\n| 512×512, CPU | images/s | images | seconds |\n|---|---|---|---|")
    for key, label in [] if not t else (("ssim", "SSIM (torchmetrics map, reference crop), batch 8"),
                       ("psnr", "PSNR per image, batch 8"),
                       ("ocr_rapidocr", f"OCR logo check ({t['ocr_rapidocr']['backend']})"),
                       ("fid_features_tiny", "FID features: clean-fid resize to 299 + tiny extractor, batch 16"),
                       ("fid_clean_resize_only", "… of which the clean-fid resize alone")):
        print(f"| {label} | {t[key]['images_per_s']} | {t[key]['images']} | {t[key]['seconds']} |")
    if summary["memory"]:
        print("\n| streaming FID+KID+PSNR+SSIM | seconds | peak RSS at half (MiB) | peak RSS at end (MiB) |\n"
              "|---|---|---|---|")
        for m in summary["memory"]:
            print(f"| {m['images']:,} images (SSIM/PSNR at {m['paired_px']}²) | {m['seconds']} | "
                  f"{m['peak_rss_mib_at_half']} | {m['peak_rss_mib']} |")


if __name__ == "__main__":
    main()
