"""Ingest benchmark: import + thumbnail N synthetic 1024x1024 JPEGs vs. a plain single-threaded PIL loop, and the
Datasets grid page's server-side render time at growing dataset sizes.

    python bench/ingest.py                      # 2,000 images, 2 workers, grid at 200 / 2,000 / 20,000 items
    python bench/ingest.py --images 200 --grid 200,2000

Each phase runs in its own process so peak memory (max RSS, workers included) is per phase. Prints a JSON summary and
a Markdown table for docs/PERFORMANCE.md. Offline; CPU only.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_images(folder: Path, n: int, size: int = 1024) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        blocks = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        im = Image.fromarray(blocks, "RGB").resize((size, size), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        (folder / f"{i:05d}.jpg").write_bytes(buf.getvalue())


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024  # KiB on Linux; own + the largest child (an upper bound of the peak)


def phase_baseline(folder: Path, out: Path) -> dict:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.jpg"))
    t = time.perf_counter()
    for p in files:
        with Image.open(p) as im:
            im.thumbnail((256, 256), Image.Resampling.LANCZOS)
            im.save(out / p.name, "JPEG", quality=85)
    dt = time.perf_counter() - t
    return {"images": len(files), "seconds": dt, "images_per_s": len(files) / dt, "peak_mib": _peak_mib()}


def phase_import(folder: Path, workers: int) -> dict:
    from workbench.data.importer import import_dataset
    from workbench.auth import system_actor

    t = time.perf_counter()
    report = import_dataset(system_actor("bench", role="marketer"), folder, name="bench", workers=workers)
    dt = time.perf_counter() - t
    assert report.added == len(list(folder.glob("*.jpg"))), report.summary()[:500]
    return {"images": report.added, "seconds": dt, "images_per_s": report.added / dt, "peak_mib": _peak_mib(),
            "workers": workers}


def phase_grid(n_items: int, folder: Path) -> dict:
    """Fill a dataset with ``n_items`` rows (sharing 24 real images and thumbnails) and time one grid render."""
    import datetime as dt

    from sqlalchemy import insert
    from streamlit.testing.v1 import AppTest

    from workbench.data.importer import import_dataset
    from workbench.auth import system_actor
    from workbench.data.tables import Item
    from workbench.db import session_scope

    seed = folder.parent / "grid-seed"
    files = sorted(folder.glob("*.jpg"))[:24]
    seed.mkdir(exist_ok=True)
    for p in files:
        (seed / p.name).write_bytes(p.read_bytes())
    report = import_dataset(system_actor("bench", role="marketer"), seed, name="grid", workers=1)
    with session_scope() as s:
        base = s.query(Item).filter(Item.dataset_id == report.dataset_id).all()
        template = [{c: getattr(b, c) for c in ("path", "sha256", "phash", "color", "width", "height", "format",
                                                  "mode", "file_size", "source")} for b in base]
        cats = ["Tshirts", "Jeans", "Dresses", "Caps", "Sneakers", "Jackets", "Hoodies"]
        rows = []
        for i in range(n_items - len(base)):
            t = template[i % len(template)]
            rows.append({**t, "dataset_id": report.dataset_id, "source_key": f"synthetic/{i}.jpg",
                         "caption": f"an image of a {cats[i % 7]} number {i}", "caption_source": "source",
                         "attributes": {"i": i}, "category": cats[i % 7], "brand": "AURELO", "colour": "Red",
                         "split": None, "flags": ["near_duplicate"] if i % 50 == 0 else [], "dup_group": None,
                         "excluded": False, "created_at": dt.datetime(2026, 1, 1)})
        if rows:
            s.execute(insert(Item), rows)
    page = str(ROOT / "pages" / "1_Datasets.py")
    at = AppTest.from_file(page, default_timeout=120).run()  # warm-up: imports, migrations, caches
    times = []
    for _ in range(5):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        assert not at.exception, at.exception
    times.sort()
    return {"items": n_items, "render_ms_median": 1000 * times[2], "render_ms_min": 1000 * times[0]}


def _run_phase(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "_phase", *args], env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"phase {args} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--grid", default="200,2000,20000", help="dataset sizes for the grid render timing")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", HOME=str(tmp / "home"))
        t = time.perf_counter()
        make_images(tmp / "images", a.images)
        gen_s = time.perf_counter() - t
        base = _run_phase(["baseline", str(tmp / "images"), str(tmp / "baseline-out")], env)
        imp = _run_phase(["import", str(tmp / "images"), str(a.workers)],
                         {**env, "WORKBENCH_WORKSPACE": str(tmp / "ws-import")})
        grid = [_run_phase(["grid", n, str(tmp / "images")], {**env, "WORKBENCH_WORKSPACE": str(tmp / f"ws-grid-{n}")})
                for n in a.grid.split(",") if n]
    result = {"cpus": len(os.sched_getaffinity(0)), "generate_s": gen_s, "baseline": base, "import": imp,
              "ratio_import_over_baseline": imp["images_per_s"] / base["images_per_s"], "grid": grid}
    print(json.dumps(result, indent=1))
    print()
    print(f"| {a.images} JPEGs 1024² on {result['cpus']} CPUs | images/s | peak RSS (MiB) |")
    print("|---|---|---|")
    print(f"| plain PIL loop (open, thumbnail 256, save), 1 thread | {base['images_per_s']:.1f} | "
          f"{base['peak_mib']:.0f} |")
    print(f"| `import_dataset` ({imp['workers']} workers: verify, sha256, phash, thumbnail, copy, DB) | "
          f"{imp['images_per_s']:.1f} | {imp['peak_mib']:.0f} |")
    print(f"| ratio import / plain loop | {result['ratio_import_over_baseline']:.2f} | |")
    print()
    print("| grid items | render one page, median of 5 (ms) |")
    print("|---|---|")
    for g in grid:
        print(f"| {g['items']:,} | {g['render_ms_median']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        kind, *rest = sys.argv[2:]
        if kind == "baseline":
            res = phase_baseline(Path(rest[0]), Path(rest[1]))
        elif kind == "import":
            res = phase_import(Path(rest[0]), int(rest[1]))
        else:
            res = phase_grid(int(rest[0]), Path(rest[1]))
        print(json.dumps(res))
    else:
        main()
