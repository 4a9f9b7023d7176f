"""The user guide's screenshots (docs/img/*.png): the app served over a demo workspace, each page opened in headless
Chromium as the role that uses it, shot once its images have loaded.

    python scripts/screenshots.py                          # builds ./demo-workspace first if it is missing (~1 min)
    python scripts/screenshots.py --workspace /tmp/ws --out /tmp/shots

Needs Playwright (requirements-test.txt) and Debian's Chromium (`apt-get install chromium`). It generates two
images on the Generate page (the demo LoRA on a colour-free prompt) and one product scene, so the workspace gains
pending images. Each PNG is written at 1400 px wide and, when over 400 KB, re-encoded with a 256-colour palette
(Pillow): the guide's pictures stay small in the repository.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.browser import (CHROMIUM_ARGS, ROOT, find_chromium, login, logout, nav, screenshot, see, select, serve,
                               settle, tab)
from workbench.demo import DEMO_PASSWORD

WIDTH, HEIGHT, TALLEST = 1400, 1000, 2200
MAX_BYTES = 400_000
LONG = 1_200_000  # ms: images made in the page, on a loaded 2-core machine


def build_demo(workspace: Path) -> None:
    if (workspace / "demo").is_dir():
        return
    print(f"building the demo workspace in {workspace} …", flush=True)
    env = dict(os.environ, WORKBENCH_WORKSPACE=str(workspace))
    subprocess.run([sys.executable, "-m", "workbench.cli", "demo"], env=env, check=True)


def shrink(path: Path, limit: int = MAX_BYTES) -> None:
    """Re-encode a screenshot over ``limit`` bytes with a 256-colour palette (no dithering: flat UI colours stay
    flat), keeping whichever file is smaller."""
    from PIL import Image

    if path.stat().st_size <= limit:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    tmp = path.with_suffix(".tmp.png")
    small.save(tmp, optimize=True)
    if tmp.stat().st_size < path.stat().st_size:
        tmp.replace(path)
    else:
        tmp.unlink()


NAMES = ("datasets", "training", "training_compare", "prompts", "generate", "scene", "evaluate", "review",
         "review_products", "review_bulk", "home")


def take(page, url: str, out: Path, only: set[str] | frozenset[str] = frozenset(NAMES)) -> list[Path]:
    shots: list[Path] = []

    def shot(name: str, window_only: bool = False) -> None:
        if name not in only:
            return
        path = out / f"{name}.png"
        if window_only:  # what the window shows where the page was scrolled to
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
            page.screenshot(path=str(path))
        else:
            screenshot(page, path, max_height=TALLEST)
        shrink(path)
        shots.append(path)
        print(f"  {path} ({path.stat().st_size // 1000} KB)", flush=True)

    page.goto(url)
    settle(page)
    nav(page, "Datasets")
    login(page, "mia", DEMO_PASSWORD)  # marketer
    select(page, "Dataset", "demo-aurelo (")  # the catalog, not the violet variant the demo LoRA trained on
    see(page, "items match")
    shot("datasets")

    nav(page, "Training")
    tab(page, "Runs")
    see(page, "LoRA registered", timeout=30_000)
    shot("training")
    page.get_by_role("heading", name="Compare loss curves").scroll_into_view_if_needed()
    page.locator("[data-testid='stVegaLiteChart']").last.wait_for()
    page.wait_for_timeout(1000)  # the chart draws
    shot("training_compare", window_only=True)  # the loss curves of the runs picked, overlaid

    nav(page, "Prompts")
    see(page, "Tokens")
    shot("prompts")

    nav(page, "Generate")
    see(page, "demo model")
    if "generate" in only:
        select(page, "Trained LoRAs", "LoRA")
        page.get_by_label("Prompt", exact=True).fill("a photo of a hoodie by aurelo, on a white background")
        page.get_by_label("Images", exact=True).fill("2")
        page.get_by_role("button", name="Generate", exact=True).click()
        settle(page, timeout=LONG)
        see(page, "image(s) saved with their provenance", timeout=LONG)
        shot("generate")

    if "scene" in only:
        tab(page, "Product scene")
        scene_preset = page.get_by_role("combobox", name="Scene preset", exact=True)
        scene_preset.wait_for()  # the SKU's photo and its cut-out are shown above it
        select(page, "Scene preset", "Studio")
        page.get_by_role("button", name="Generate scenes").click()
        settle(page, timeout=LONG)  # the scene, with its fidelity verdict, under the form
        shot("scene")

    logout(page)
    nav(page, "Evaluate")
    login(page, "ari", DEMO_PASSWORD)  # analyst
    shot("evaluate")

    logout(page)
    nav(page, "Review")
    login(page, "ana", DEMO_PASSWORD)  # approver
    shot("review")
    select(page, "Batch", "demo-aurelo-products")  # images made for a product: its reference photo beside them
    shot("review_products")
    select(page, "Batch", "(any)")
    tab(page, "Bulk")  # every pending image, with the products in each, in one form
    see(page, "Apply to the selected images")
    settle(page)
    shot("review_bulk")

    nav(page, "Home", heading="Brand Workbench")
    shot("home")
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=ROOT / "demo-workspace")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, of: {', '.join(NAMES)}")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if only - set(NAMES):
        ap.error(f"unknown: {', '.join(sorted(only - set(NAMES)))}")
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if not chromium:
        sys.exit("Chromium is not installed: apt-get install chromium")
    workspace = args.workspace.resolve()
    build_demo(workspace)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, serve(workspace, log=Path(tmp) / "streamlit.log") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(60_000)
            try:
                shots = take(page, url, args.out, only)
            finally:
                browser.close()
    print(f"{len(shots)} screenshots in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
