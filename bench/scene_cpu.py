"""Product-scene benchmark on this machine's CPUs, with the TINY demo-kit SDXL (random weights): seconds per scene
image through ``generate_scene`` and each of its steps — cut-out (matting), placement, the inpainting call, the
composite with shadow, the PNG write + DB record — plus the logo path (SVG check + render + warp + shading) and the
OCR read-back (RapidOCR).

    python bench/scene_cpu.py                 # ~1 min on 2 cores
    python bench/scene_cpu.py --size 128 --steps 4 --n 5

These are the tiny model's numbers, not SDXL's: they show the overhead the scene path adds around the model (cut-out,
composite, provenance), which is the same at any model size. A 1024 px scene with real SDXL weights needs a GPU
(issue #21's bench); none was lent to this session. Prints a JSON summary with the load average. Offline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


CPU_S: dict[str, float] = {}  # process CPU seconds (all threads) per measurement: less sensitive to a busy machine


def _timed(fn, repeat: int, name: str = ""):
    times, cpu = [], []
    out = None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    times.sort()
    cpu.sort()
    if name:
        CPU_S[name] = round(cpu[len(cpu) // 2], 4)
    return out, times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="scene side in px (the tiny model is built for 64)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--n", type=int, default=5, help="repeats per measurement (median reported)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scene-"))
    os.environ["WORKBENCH_WORKSPACE"] = str(tmp / "workspace")
    os.chdir(tmp)

    from sqlalchemy import select

    from workbench.auth import system_actor
    from workbench.data.demo import draw_garment
    from workbench.data.tables import Item
    from workbench.db import init_db, session_scope
    from workbench.evaluate.ocr import load_ocr
    from workbench.evaluate.placement import DEMO_CORNERS, DEMO_LOGO_SVG
    from workbench.generate.pipeline import PipelineSpec, build_pipeline
    from workbench.generate.scenes.compose import composite, place
    from workbench.generate.scenes.cutout import cutout
    from workbench.generate.scenes.logo import place_logo
    from workbench.generate.scenes.scene import BACKGROUND, SceneRequest, generate_scene, scene_pipeline
    from workbench.models.tiny import save_tiny_sdxl
    from workbench.products import create_product
    from workbench.products.importing import import_catalog

    init_db()
    curator = system_actor("bench", role="marketer")
    (tmp / "photos").mkdir()
    photo = draw_garment("jacket", (176, 38, 52), args.size, rng=random.Random(1))
    photo.save(tmp / "photos" / "1.png")
    report = import_catalog(curator, tmp / "photos", workers=1)
    with session_scope() as s:
        ids = list(s.scalars(select(Item.id).where(Item.dataset_id == report.dataset_id)))
    create_product(curator, "AUR-1001", "Aurelo Red Jacket", item_ids=ids, category="Jackets", colour="Red")
    model = save_tiny_sdxl(tmp / "tiny-sdxl")
    t = time.perf_counter()
    sp = scene_pipeline(build_pipeline(PipelineSpec(model=str(model))))
    load_s = time.perf_counter() - t

    c, cut_s = _timed(lambda: cutout(photo), args.n)
    placed, place_s = _timed(lambda: place(photo, c.alpha, c.threshold, args.size, args.size), args.n)
    import torch

    init, repaint = placed.init_image(BACKGROUND), placed.repaint_mask()

    def inpaint():
        return sp.pipe(prompt="a jacket on a cafe table, golden hour", image=init, mask_image=repaint,
                       width=args.size, height=args.size, num_inference_steps=args.steps, strength=1.0,
                       generator=torch.Generator().manual_seed(0)).images[0]

    inpaint()  # warm-up
    generated, inpaint_s = _timed(inpaint, args.n, "inpaint_call")
    _, comp_s = _timed(lambda: composite(generated, placed, 0.45), args.n)
    req = SceneRequest(sku="AUR-1001", scene="golden-hour", width=args.size, height=args.size, steps=args.steps)
    generate_scene(curator, sp, req, check=False)  # warm-up (stores the cut-out)
    _, scene_s = _timed(lambda: generate_scene(curator, sp, req, check=False), args.n, "scene_image")
    _, scene_checked_s = _timed(lambda: generate_scene(curator, sp, req, models={}), args.n)

    tee = draw_garment("t-shirt", (226, 226, 230), 256, brand="")
    place_logo(tee, DEMO_LOGO_SVG, DEMO_CORNERS)  # warm-up (imports)
    placed_logo, logo_s = _timed(lambda: place_logo(tee, DEMO_LOGO_SVG, DEMO_CORNERS), args.n, "logo_place")
    engine = load_ocr("rapidocr")
    engine.read(placed_logo.image)
    lines, ocr_s = _timed(lambda: engine.read(placed_logo.image), args.n, "ocr_read")
    summary = {
        "model": "tiny demo-kit SDXL (random weights) — NOT SDXL", "device": "cpu", "size": args.size,
        "steps": args.steps, "cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_avg": os.getloadavg(), "python": platform.python_version(),
        "pipeline_load_s": round(load_s, 3), "cutout_s": round(cut_s, 4), "place_s": round(place_s, 4),
        "inpaint_call_s": round(inpaint_s, 4), "composite_shadow_s": round(comp_s, 4),
        "scene_image_s (generate_scene, no fidelity)": round(scene_s, 4),
        "scene_image_s (with fidelity gate, no DINO/CLIP)": round(scene_checked_s, 4),
        "logo_place_s (check+render+warp+shade, 256 px)": round(logo_s, 4),
        "ocr_read_s (256 px)": round(ocr_s, 4), "ocr_text": " | ".join(l.text for l in lines),
        "cpu_seconds (process time, median)": CPU_S,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
