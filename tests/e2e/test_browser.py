"""The whole product in a real browser: the app served by `streamlit run`, driven by Playwright in headless Chromium.

One journey, as a newcomer would walk it: create the demo workspace on Home, open every page, import a small
dataset, launch a tiny training run and watch it reach done, build and save a prompt batch, generate (one prompt,
then the batch as a job), evaluate as an analyst, then as an approver approve one image, request changes on another
and export the approved set. Every page is screenshotted into the test artifacts (./test-artifacts/journey-*.png).

Navigation goes through the sidebar, like a user: the Streamlit session (and the sign-in) survives page changes.
"""
from __future__ import annotations

import re
import zipfile

import pytest

from workbench.browser import login as _login
from workbench.browser import logout as _logout
from workbench.browser import nav as _nav
from workbench.browser import number as _number
from workbench.browser import screenshot
from workbench.browser import see as _see
from workbench.browser import see_while_progressing, workspace_activity
from workbench.browser import select as _select
from workbench.browser import settle as _settle
from workbench.browser import tab as _tab
from workbench.browser import value as _value
from workbench.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

LONG = 300_000  # ms: a step inside the page (one generated image) on 2 busy CPU cores
_WORKSPACE = []  # the journey's workspace: its activity is how the waits for jobs know a job still moves


def _job_end(page, pattern):
    """Wait for a job's end line as long as the job makes progress (demo build, training, batch, evaluation can
    take many minutes on a loaded machine): fails after 5 minutes without any progress, or 40 minutes in all."""
    see_while_progressing(page, pattern, lambda: workspace_activity(_WORKSPACE[-1]))


def _shot(page, artifacts, name):
    screenshot(page, artifacts / f"journey-{name}.png")


@pytest.fixture
def page(browser, artifacts, request):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    yield page
    if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
        page.screenshot(path=str(artifacts / f"failed-{request.node.name}.png"), full_page=True)
    page.close()


@pytest.fixture
def small_dataset(tmp_path):
    """What a user brings: a kohya folder of six product shots with .txt captions."""
    from workbench.data.demo import COLOURS, draw_garment

    folder = tmp_path / "new-shoot"
    folder.mkdir()
    for i, (garment, (colour, rgb)) in enumerate(zip(["t-shirt", "hoodie", "cap"] * 2, COLOURS)):
        draw_garment(garment, rgb, 128).save(folder / f"shot{i}.png")
        caption = f"a photo of a {colour.lower()} {garment} by aurelo, on a white background"
        (folder / f"shot{i}.txt").write_text(caption)
    return folder


@pytest.mark.timeout(3600)  # the job waits bound themselves by progress (_job_end)
def test_journey(app_server, page, artifacts, small_dataset, workspace):
    """The demo build, a training run, a generation batch and an evaluation are real jobs (a few minutes)."""
    errors: list[str] = []
    _WORKSPACE.append(workspace)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for step in JOURNEY:
        step(page, app_server, artifacts, small_dataset)
    assert not errors, errors


def home_demo(page, url, artifacts, data):
    """Home: the empty workspace, then the demo workspace built as a job with progress."""
    page.goto(url)
    _settle(page)
    _see(page, "This workspace is empty")
    _shot(page, artifacts, "01-home-empty")
    page.get_by_role("button", name="Create demo workspace").click()
    _settle(page)
    _job_end(page, re.compile(r"demo workspace — job \d+, (done|failed)"))
    assert not page.get_by_text(re.compile(r"demo workspace — job \d+, failed")).count(), "the demo build failed"
    page.goto(url)
    _settle(page)
    _see(page, "Demo workspace")
    metrics = " | ".join(page.locator("[data-testid='stMetric']").all_inner_texts())
    assert re.search(r"Datasets\s+\d", metrics) and not re.search(r"Datasets\s+0", metrics), metrics
    _shot(page, artifacts, "02-home-demo")


def datasets(page, url, artifacts, data):
    """Datasets (marketer): the demo catalog, then import a new shoot."""
    _nav(page, "Datasets")
    _login(page, "mia", DEMO_PASSWORD)
    _see(page, "items match")
    _shot(page, artifacts, "03-datasets-catalog")
    page.locator("[data-testid='stButtonGroup']").get_by_text("Import", exact=True).click()
    _settle(page)
    page.get_by_label("Path or hub name").fill(str(data))
    page.get_by_label("Dataset name (an existing name adds to it)").fill("new shoot")
    page.get_by_role("button", name="Import", exact=True).last.click()
    _settle(page)
    _see(page, "Last import")
    _see(page, re.compile(r"into dataset 'new shoot' \(id \d+\): 6 added"))
    assert _value(page, "Dataset") == "new shoot (6 items)"  # the picker shows the dataset just imported
    _shot(page, artifacts, "04-datasets-imported")


def training(page, url, artifacts, data):
    """Training: a tiny run on the imported shoot, watched until done."""
    _nav(page, "Training")
    _select(page, "Dataset", "new shoot")
    _number(page, "Steps", 4)
    _number(page, "Checkpoint every", 2)
    page.get_by_label("Run name").fill("e2e shoot LoRA")
    page.get_by_label("Run name").press("Enter")
    _settle(page)
    _shot(page, artifacts, "05-training-form")
    page.get_by_role("button", name="Launch training").click()
    _settle(page)
    _see(page, re.compile(r"Run \d+ queued"))
    _tab(page, "Runs")
    _job_end(page, re.compile(r"run \d+ — e2e shoot LoRA — (done|failed)"))
    assert not page.get_by_text(re.compile(r"e2e shoot LoRA — failed")).count(), "the training run failed"
    _settle(page)
    _see(page, "LoRA registered")
    _shot(page, artifacts, "06-training-done")


def prompts(page, url, artifacts, data):
    """Prompts: build and save a batch for the brand, send it to Generate."""
    _nav(page, "Prompts")
    _see(page, "Tokens")
    page.get_by_label("Batch name", exact=True).fill("e2e batch")
    page.get_by_label("Batch name", exact=True).press("Enter")
    _settle(page)
    page.get_by_role("button", name="Save to prompt library").click()
    _settle(page)
    _see(page, re.compile(r"Saved as batch \d+"))
    page.get_by_role("button", name="Send to Generate").click()
    _settle(page)
    _see(page, "Images per prompt")  # Send goes straight to Generate's batch tab
    _shot(page, artifacts, "07-prompts-saved")


def generate(page, url, artifacts, data):
    """Generate: one prompt in the page, then the batch as a job."""
    _nav(page, "Generate")
    _see(page, "demo model")
    _tab(page, "One prompt")
    _select(page, "Trained LoRAs", "e2e shoot LoRA")
    page.get_by_label("Prompt", exact=True).fill("a photo of a red hoodie by aurelo, on a white background")
    _select(page, "Size", "64")
    _number(page, "Steps", 8)
    page.get_by_role("button", name="Generate", exact=True).click()
    _settle(page, timeout=LONG)
    _see(page, "image(s) saved with their provenance", timeout=LONG)
    _tab(page, "Prompt batch")
    page.get_by_role("button", name=re.compile(r"Queue \d+ images?")).click()
    _settle(page)
    _job_end(page, re.compile(r"generate prompts-\d+ — job \d+, (done|failed)"))
    assert not page.get_by_text(re.compile(r"generate prompts-\d+ — job \d+, failed")).count(), "generation failed"
    _settle(page)
    _shot(page, artifacts, "08-generate-batch")


def evaluate(page, url, artifacts, data):
    """Evaluate (analyst): the new batch against the demo catalog."""
    _logout(page)
    _nav(page, "Evaluate")
    _login(page, "ari", DEMO_PASSWORD)
    _shot(page, artifacts, "09-evaluate-compare")
    _tab(page, "New evaluation")
    page.get_by_label("Name", exact=True).fill("e2e batch vs catalog")
    _select(page, "Image sets (generation batches)", "prompts-")
    _select(page, "Image sets (generation batches)", "demo-aurelo")
    _select(page, "Reference set", "demo")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    _settle(page)
    _see(page, re.compile(r"Evaluation \d+ queued"))
    _job_end(page, re.compile(r"— job \d+, (done|failed)"))
    assert not page.get_by_text(re.compile(r"— job \d+, failed")).count(), "the evaluation failed"
    _tab(page, "Compare")
    _select(page, "Evaluations to compare", "e2e batch vs catalog")
    _shot(page, artifacts, "10-evaluate-done")


def review(page, url, artifacts, data):
    """Review (approver): approve one image, request changes on another, export."""
    _logout(page)
    _nav(page, "Review")
    _login(page, "ana", DEMO_PASSWORD)
    _shot(page, artifacts, "11-review-queue")
    page.get_by_role("button", name="Approve").first.click()
    _settle(page)
    _see(page, re.compile(r"Image \d+ approved"))
    page.get_by_label("Comment").first.fill("Logo too small: make the wordmark bigger and centred.")
    page.get_by_role("button", name="Request changes").first.click()
    _settle(page)
    _see(page, re.compile(r"Changes requested on image \d+"))
    _shot(page, artifacts, "12-review-decided")
    _tab(page, "Export")
    _select(page, "Brand", "aurelo")
    page.get_by_role("button", name=re.compile(r"^Export 1 approved image$")).click()  # the count it will write
    _settle(page)
    _see(page, re.compile(r"^1 images? exported to"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the zip").click()
    path = download.value.path()
    names = zipfile.ZipFile(path).namelist()
    assert sum(n.endswith(".png") for n in names) == 1 and any(n.endswith(".csv") for n in names), names
    _shot(page, artifacts, "13-review-export")


def home_after(page, url, artifacts, data):
    """Home again: the workspace shows what was done."""
    _nav(page, "Home", heading="Brand Workbench")
    _shot(page, artifacts, "14-home-after")


JOURNEY = [home_demo, datasets, training, prompts, generate, evaluate, review, home_after]
