"""Product-fidelity benchmark: images/s on this machine's CPUs for each step of ``fidelity_scores`` at 512x512 —
the matting mask, the dominant colour + CIEDE2000, shape IoU, the masked crop, the tiny DINOv2 / open_clip
embeddings and the whole call — plus the segmenter path (tiny SegFormer), the real DINOv2-base and CLIP ViT-L/14
architectures with random weights (what the real models cost; their numbers mean nothing), and CMMD / FD-DINOv2 on
1,000 x 768 features.

    python bench/fidelity.py               # ~2 min on 2 quiet cores
    python bench/fidelity.py --no-full     # tiny models only

Images are the demo catalog's garments drawn in memory (shifted and noised per index), so decoding is not counted.
Tiny-model rates are labelled as such: their embeddings are random-weight toys. Prints a JSON summary with the load
average and a Markdown table for docs/PERFORMANCE.md. Offline.
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

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE = 512


def _images(n: int, size: int = SIZE, start: int = 0):
    import numpy as np
    from PIL import Image

    from workbench.data.demo import COLOURS, GARMENTS, draw_garment

    base = [np.asarray(draw_garment(g, COLOURS[i % len(COLOURS)][1], size)) for i, g in enumerate(GARMENTS)]
    out = []
    for i in range(start, start + n):
        rng = np.random.default_rng(i)
        a = np.roll(base[i % len(base)], shift=(int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        a = np.clip(a.astype(np.int16) + rng.integers(-3, 4, a.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(a))
    return out


def _rate(fn, n: int) -> dict:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return {"images": n, "seconds": round(dt, 3), "images_per_s": round(n / dt, 2)}


def run(n: int, full: bool) -> dict:
    import numpy as np
    import torch

    from workbench.evaluate import distribution as D
    from workbench.fidelity import scores as F
    from workbench.fidelity import masks as M
    from workbench.models import tiny
    from workbench.settings import Settings

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    out: dict = {}
    imgs = _images(n)
    refs = _images(3, start=10_000)[:3]
    tmp = Path(tempfile.mkdtemp(prefix="bench-fidelity-"))
    settings = Settings(models={"dinov2": str(tiny.save_tiny_dinov2(tmp / "dino")),
                                "clip_scorer": str(tiny.save_tiny_open_clip(tmp / "clip"))})
    models = F.load_fidelity_models(settings)
    F.fidelity_scores(imgs[0], refs, models=models)  # warm-up
    masks = []
    out["matting_mask"] = _rate(lambda: masks.extend(M.garment_mask(im) for im in imgs), n)
    out["dominant_colour_and_ciede2000"] = _rate(
        lambda: [F.ciede2000(F.dominant_lab(F.garment_lab_pixels(im, m)), (50, 10, 10)) for im, m in zip(imgs, masks)],
        n)
    out["shape_iou"] = _rate(lambda: [M.shape_iou(masks[0].mask, m.mask) for m in masks], n)
    crops: list = []
    out["masked_crop"] = _rate(lambda: crops.extend(M.masked_crop(im, m) for im, m in zip(imgs, masks)), n)
    out["tiny_dinov2_embedding"] = _rate(lambda: models["dinov2"].embeddings(crops), n)
    out["tiny_clip_embedding"] = _rate(lambda: F.clip_image_embeddings(models["clip_scorer"], crops), n)
    ref = F.prepare_references(refs, models=models)
    out["prepare_references_3_photos"] = _rate(lambda: F.prepare_references(refs, models=models), 3)
    out["fidelity_scores_tiny_models"] = _rate(lambda: [F.fidelity_scores(im, ref, models=models) for im in imgs], n)
    out["fidelity_scores_no_models"] = _rate(lambda: [F.fidelity_scores(im, ref, models={}) for im in imgs], n)

    from workbench.models.segmenter import load_segmenter

    seg = load_segmenter(str(tiny.save_tiny_segmenter(tmp / "seg")))
    M.garment_mask(imgs[0], segmenter=seg)
    out["tiny_segmenter_mask"] = _rate(lambda: [M.garment_mask(im, segmenter=seg) for im in imgs], n)

    if full:  # real architectures, random weights: the cost of the real models, not their numbers
        from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

        from workbench.models.dinov2 import DinoEmbedder

        dino = DinoEmbedder(Dinov2Model(Dinov2Config()).eval(),  # dinov2-base: hidden 768, 12 layers, patch 14
                            BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                              image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]))
        k = min(n, 16)
        dino.embeddings(crops[:2])
        out["dinov2_base_architecture_embedding"] = _rate(lambda: dino.embeddings(crops[:k]), k)
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14", pretrained=None)
        clip = F.ClipImages(model.eval(), preprocess)
        F.clip_image_embeddings(clip, crops[:1])
        k = min(n, 8)
        out["clip_vit_l14_architecture_embedding"] = _rate(lambda: F.clip_image_embeddings(clip, crops[:k]), k)
        del model, clip

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(1000, 768)))
    y = torch.from_numpy(rng.normal(size=(1000, 768)) + 0.1)
    xu, yu = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    t = time.perf_counter()
    D.cmmd(xu, yu)
    out["cmmd_1000x1000_d768_seconds"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    D.fd_dinov2(x, y)
    out["fd_1000x1000_d768_seconds"] = round(time.perf_counter() - t, 3)
    return out


def table(r: dict) -> str:
    rows = [
        ("matting mask (border Lab median, ΔE threshold, clean-up, guided filter; at ≤512 px)", "matting_mask"),
        ("dominant colour (k-means in Lab) + CIEDE2000", "dominant_colour_and_ciede2000"),
        ("shape IoU (boxes aligned, 128² frame)", "shape_iou"),
        ("masked crop (alpha over white, square)", "masked_crop"),
        ("tiny DINOv2 embedding of the crop (toy, random weights)", "tiny_dinov2_embedding"),
        ("tiny open_clip embedding of the crop (toy, random weights)", "tiny_clip_embedding"),
        ("**fidelity_scores, tiny models, references prepared once**", "fidelity_scores_tiny_models"),
        ("fidelity_scores without models (ΔE + shape only)", "fidelity_scores_no_models"),
        ("tiny SegFormer mask (toy; the segmenter path's overhead)", "tiny_segmenter_mask"),
        ("DINOv2-base architecture embedding at 224² (random weights: cost only)",
         "dinov2_base_architecture_embedding"),
        ("CLIP ViT-L/14 architecture embedding at 224² (random weights: cost only)",
         "clip_vit_l14_architecture_embedding"),
    ]
    lines = ["| 512×512, 2 CPUs | images/s | images timed |", "|---|---|---|"]
    for label, key in rows:
        if key in r:
            lines.append(f"| {label} | {r[key]['images_per_s']} | {r[key]['images']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=32, help="images per measurement (default 32)")
    ap.add_argument("--no-full", action="store_true", help="skip the full-size DINOv2 / CLIP architectures")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    results = run(args.n, not args.no_full)
    summary = {"machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
               "omp_threads": os.environ["OMP_NUM_THREADS"], "load_before": round(load_before, 2),
               "load_after": round(os.getloadavg()[0], 2), "results": results}
    print(json.dumps(summary, indent=2))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
