"""The user guide's screenshots (docs/img/*.png): the app served over a demo workspace, each page opened in headless
Chromium as the role that uses it, shot once its images have loaded.

    python scripts/screenshots.py                          # builds ./demo-workspace first if it is missing (~1 min)
    python scripts/screenshots.py --workspace /tmp/ws --out /tmp/shots

Needs Playwright (requirements-test.txt) and Debian's Chromium (`apt-get install chromium`). It generates one
image on the Generate page (the demo LoRA on a colour-free prompt), so the workspace gains one pending image.
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


def build_demo(workspace: Path) -> None:
    if (workspace / "demo").is_dir():
        return
    print(f"building the demo workspace in {workspace} …", flush=True)
    env = dict(os.environ, WORKBENCH_WORKSPACE=str(workspace))
    subprocess.run([sys.executable, "-m", "workbench.cli", "demo"], env=env, check=True)


def take(page, url: str, out: Path) -> list[Path]:
    shots: list[Path] = []

    def shot(name: str) -> None:
        path = out / f"{name}.png"
        screenshot(page, path, max_height=TALLEST)
        shots.append(path)
        print(f"  {path}", flush=True)

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

    nav(page, "Prompts")
    see(page, "Tokens")
    shot("prompts")

    nav(page, "Generate")
    see(page, "demo model")
    select(page, "Trained LoRAs", "LoRA")
    page.get_by_label("Prompt", exact=True).fill("a photo of a hoodie by aurelo, on a white background")
    page.get_by_label("Images", exact=True).fill("4")
    page.get_by_role("button", name="Generate", exact=True).click()
    settle(page, timeout=300_000)
    see(page, "image(s) saved with their provenance", timeout=300_000)
    shot("generate")

    logout(page)
    nav(page, "Evaluate")
    login(page, "ari", DEMO_PASSWORD)  # analyst
    shot("evaluate")

    logout(page)
    nav(page, "Review")
    login(page, "ana", DEMO_PASSWORD)  # approver
    shot("review")

    nav(page, "Home", heading="Brand Workbench")
    shot("home")
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=ROOT / "demo-workspace")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
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
                shots = take(page, url, args.out)
            finally:
                browser.close()
    print(f"{len(shots)} screenshots in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
