"""Does the demo base model draw what the prompt says? Colour accuracy at 64 px, and the demo LoRA's colour shift.

    nice python bench/demo_colour_accuracy.py --out colour.json --sheet docs/img/demo_base_samples.png

1. Colour accuracy: for every catalog colour x garment x seed, generate "a photo of a <colour> <garment> by aurelo,
   on a white background" with the shipped base model (through the app's pipeline assembly,
   workbench.generate.pipeline.build_pipeline: Euler, 20 steps, guidance 5, 64x64), take the dominant
   non-background colour (workbench.data.demo.dominant_colour: median RGB of pixels with CIELAB Delta E > 15
   from white) and count a hit when the nearest catalog colour (Delta E 1976) is the one the prompt named.
2. LoRA shift: the demo LoRA (trained by the demo's own training step on the AURELO variant in the signature colour;
   by default this builds a fresh demo workspace in a temp folder with ``workbench.demo.build_demo`` and takes its
   LoRA; ``--lora`` measures a given one instead) against the base, on colour-free prompts "a photo of a <garment>
   by aurelo, on a white background": the share of images whose dominant colour is nearest the signature colour
   (palette + signature) and the mean Delta E to the signature colour.
Writes JSON with --out and a contact sheet (base rows, then LoRA rows) with --sheet.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GARMENT_WORDS = {"t-shirt": "t-shirt", "hoodie": "hoodie", "jacket": "jacket", "trousers": "trousers",
                 "dress": "dress", "sneakers": "sneakers", "cap": "cap"}


def colour_prompt(colour: str, garment: str) -> str:
    return f"a photo of a {colour.lower()} {GARMENT_WORDS[garment]} by aurelo, on a white background"


def plain_prompt(garment: str) -> str:
    return f"a photo of a {GARMENT_WORDS[garment]} by aurelo, on a white background"


def generate(assembled, prompts: list[str], seeds: list[int], steps: int, guidance: float, px: int,
             batch: int = 24):
    """One image per (prompt, seed), prompt-major; a generator per image (seeded) makes each reproducible whatever
    the batch. Batched because at 64 px the per-call overhead, not the maths, dominates on a CPU."""
    import torch

    jobs = [(p, s) for p in prompts for s in seeds]
    images = []
    for i in range(0, len(jobs), batch):
        chunk = jobs[i:i + batch]
        images += assembled.pipe(prompt=[p for p, _ in chunk], negative_prompt=[""] * len(chunk), width=px,
                                 height=px, num_inference_steps=steps, guidance_scale=guidance,
                                 generator=[torch.Generator("cpu").manual_seed(s) for _, s in chunk]).images
    return images


def demo_lora(work: Path, train_steps: int | None) -> tuple[str, float]:
    """Build a demo workspace under ``work`` (the real `workbench demo` steps) and return its LoRA folder and the
    build time in seconds."""
    os.environ["WORKBENCH_WORKSPACE"] = str(work)
    os.environ.setdefault("WORKBENCH_DEVICE", "cpu")
    from workbench.demo import DEMO_TRAIN_STEPS, build_demo
    from workbench.settings import reload_settings
    from workbench.train.runs import lora_of

    reload_settings()
    t0 = time.time()
    report = build_demo(progress=lambda i, n, msg: print(f"  demo {i}/{n} {msg}", flush=True),
                        train_steps=train_steps or DEMO_TRAIN_STEPS)
    seconds = time.time() - t0
    lora = lora_of(int(report.ids["training"]))
    if lora is None:
        raise SystemExit(f"the demo training run {report.ids['training']} left no LoRA")
    return lora.path, seconds


def sheet(rows: list[list], labels: list[str], path: Path, px: int) -> None:
    from PIL import Image, ImageDraw

    scale, label_w = 2, 150
    w, h = label_w + len(rows[0]) * px * scale, len(rows) * px * scale
    out = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for r, (row, label) in enumerate(zip(rows, labels)):
        d.text((4, r * px * scale + px * scale // 2 - 6), label, fill=(0, 0, 0))
        for c, im in enumerate(row):
            out.paste(im.resize((px * scale, px * scale)), (label_w + c * px * scale, r * px * scale))
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="diffusers folder (default: the shipped demo base model)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per (colour, garment)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--lora", default=None, help="LoRA folder to measure (default: build a demo workspace, use its)")
    ap.add_argument("--train-steps", type=int, default=None,
                    help="demo LoRA steps when building one (default: the demo's, workbench.demo.DEMO_TRAIN_STEPS)")
    ap.add_argument("--no-lora", action="store_true", help="colour accuracy only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the results as JSON")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet PNG (base, then LoRA)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from workbench.data.demo import GARMENTS
    from workbench.generate.pipeline import LoraSpec, PipelineSpec, build_pipeline
    from workbench.data.demo import SIGNATURE, delta_e, demo_palette, dominant_colour, nearest_colour
    from workbench.models.demo_base import shipped_demo_base

    model = args.model or str(shipped_demo_base())
    palette = demo_palette()
    seeds = list(range(args.seeds))
    result: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"torch {torch.__version__}, {args.threads} threads", "model": model, "px": args.px,
                    "steps": args.steps, "guidance": args.guidance, "seeds": seeds,
                    "palette": {name: "#{:02X}{:02X}{:02X}".format(*rgb) for name, rgb in palette},
                    "method": "foreground = pixels with CIELAB Delta E 1976 > 15 from white; dominant colour = "
                              "per-channel median RGB of the foreground; nearest = smallest Delta E 1976"}

    # 1. colour accuracy with the base model
    t0 = time.time()
    base = build_pipeline(PipelineSpec(model=model, device="cpu"))
    per_colour: dict[str, list[int]] = {}
    confusions: list[dict] = []
    sheet_rows, sheet_labels = [], []
    for name, _ in palette:
        images = generate(base, [colour_prompt(name, g) for g in GARMENTS], seeds, args.steps, args.guidance,
                          args.px)
        jobs = [(g, s) for g in GARMENTS for s in seeds]
        for (garment, seed), im in zip(jobs, images):
            got = nearest_colour(dominant_colour(im), palette)
            per_colour.setdefault(name, []).append(int(got == name))
            if got != name:
                confusions.append({"colour": name, "garment": garment, "seed": seed, "nearest": got,
                                   "dominant": dominant_colour(im)})
        sheet_rows.append(images[::len(seeds)])
        sheet_labels.append(f"base: {name.lower()}")
        print(f"{name:10s} {sum(per_colour[name])}/{len(per_colour[name])}", flush=True)
    hits = sum(sum(v) for v in per_colour.values())
    total = sum(len(v) for v in per_colour.values())
    result["colour_accuracy"] = {"overall": hits / total, "hits": hits, "images": total,
                                 "per_colour": {k: sum(v) / len(v) for k, v in per_colour.items()},
                                 "misses": confusions, "seconds": round(time.time() - t0, 1)}
    print(f"colour accuracy {hits}/{total} = {hits / total:.1%}", flush=True)

    # 2. the demo LoRA's shift toward the signature colour
    if not args.no_lora:
        if args.lora:
            lora_path, build_s = args.lora, None
        else:
            work = Path(tempfile.mkdtemp(prefix="demo-colour-")) / "workspace"
            lora_path, build_s = demo_lora(work, args.train_steps)
            result["demo_build_seconds"] = round(build_s, 1)
        with_lora = build_pipeline(PipelineSpec(model=model, device="cpu", loras=(LoraSpec(lora_path, 1.0),)))
        ext = palette + [SIGNATURE]
        shift = {}
        for label, assembled in (("base", base), ("lora", with_lora)):
            images = generate(assembled, [plain_prompt(g) for g in GARMENTS], seeds, args.steps, args.guidance,
                              args.px)
            doms = [dominant_colour(im) for im in images]
            near = [nearest_colour(d, ext) for d in doms]
            dists = [float(delta_e(d, SIGNATURE[1])) for d in doms if d is not None]
            shift[label] = {"share_nearest_signature": float(np.mean([n == SIGNATURE[0] for n in near])),
                            "mean_delta_e_to_signature": float(np.mean(dists)) if dists else None,
                            "images": len(images)}
            sheet_rows.append(images[::len(seeds)])
            sheet_labels.append(f"{label}: by aurelo")
            print(f"{label}: {shift[label]}", flush=True)
        signature_hex = "#{:02X}{:02X}{:02X}".format(*SIGNATURE[1])
        result["lora_shift"] = {"signature": {SIGNATURE[0]: signature_hex}, "lora": lora_path,
                                "prompt": "a photo of a <garment> by aurelo, on a white background", **shift}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.sheet:
        sheet(sheet_rows, sheet_labels, args.sheet, args.px)
    print(json.dumps({k: v for k, v in result.items() if k != "colour_accuracy"} |
                     {"colour_accuracy": {k: v for k, v in result["colour_accuracy"].items() if k != "misses"}},
                     indent=2))


if __name__ == "__main__":
    main()
