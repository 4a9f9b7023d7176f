"""Clicks and seconds of each role's main task, driven in headless Chromium like a user would do it (issue #26).

    python bench/role_tasks.py --code . --version after --workspace /tmp/ws-after --repeat 2 --json after.json
    python bench/role_tasks.py --code /work/wt/ux-before --version before --workspace /tmp/ws-before --repeat 2

``--code`` is the checkout whose app is served (``streamlit run Home.py`` there, its own ``workbench`` package on
PYTHONPATH); ``--version`` names the flow the user has to follow in that code's UI:

- ``after``: today's UI. ``before``: the UI at commit 8bb649e, before the issue #26 work, where "Send to Generate"
  only showed a link, Generate opened on its one-prompt tab with a lone "Queue the batch" button in the batch tab,
  the runs had no overlay (open one run, then the other) and each bulk checkbox re-ran the page.

The workspace must be a demo workspace built by that same code (``workbench demo``). The first time, the script
prepares it with that code's CLI (a second training run, so that there are two runs to compare, and enough images
waiting for review) and keeps a copy beside it (``<workspace>.snapshot``); every repetition starts from that copy,
so each measures the same state.

Tasks (each in a fresh browser session; signing in is not counted, it is the same in every version):

- marketer (mia): on Prompts, a 3-prompt batch (two more colours) → named, saved, sent to Generate, queued →
  the generated images shown on the page;
- analyst (ari): on Training, the loss curves of the two runs compared;
- approver (ana): on Review, 10 images approved one at a time (the A shortcut), then 10 more in bulk.

Counted actions: each click, key press and choice a user makes; typing into a field counts as one, opening a list and
picking from it as two. Seconds are wall time from the start page (signed in, loaded) to the task being visibly done:
the machine's waiting only, no human reading time. Prints a table and, with --json, writes every repetition.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workbench.browser import CHROMIUM_ARGS, find_chromium, serve, settle, stop_worker  # noqa: E402

PASSWORD = "aurelo-demo"  # workbench.demo.DEMO_PASSWORD (not imported: --code may be another checkout)
LONG = 3_600_000  # ms: a batch job on a heavily loaded 2-core machine
EXTRA_COLOURS = 2  # the marketer's batch: the brand's t-shirt template, its default colour and two more
REVIEW_N = 10


# -- one version's CLI ---------------------------------------------------------------------------------------------

def cli(code: Path, workspace: Path, user: str, *args: str) -> str:
    """``workbench ARGS`` of the checkout ``code`` as ``user`` (WORKBENCH_CLI_USER: today's CLI acts as a named
    account; the code before #23 item 3 acted as itself and ignores it)."""
    env = dict(os.environ, WORKBENCH_WORKSPACE=str(workspace), PYTHONPATH=str(code), HF_HUB_OFFLINE="1",
               WORKBENCH_CLI_USER=user)
    done = subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=code, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"workbench {' '.join(args)} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return done.stdout


# -- a user who counts -----------------------------------------------------------------------------------------------

class User:
    """Does what a user does on the page and counts it: a click, a key press, a field typed (one each), a choice from
    a list (two: open it, pick)."""

    def __init__(self, page):
        self.page = page
        self.actions = 0
        self.steps: list[str] = []
        self.t0 = 0.0

    def start(self) -> None:
        self.actions, self.steps, self.t0 = 0, [], time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - self.t0

    def _count(self, n: int, what: str) -> None:
        self.actions += n
        self.steps.append(what)

    def click(self, locator, what: str, wait: bool = True) -> None:
        locator.click()
        self._count(1, f"click {what}")
        if wait:
            settle(self.page, timeout=LONG)

    def type(self, locator, text: str, what: str) -> None:
        locator.fill(text)
        self._count(1, f"type {what}")

    def key(self, key: str, wait: bool = True) -> None:
        self.page.keyboard.press(key)
        self._count(1, f"key {key}")
        if wait:
            settle(self.page, timeout=LONG)

    def choose(self, label: str, option: str, close: bool = False) -> None:
        """Open the list named ``label`` and pick the option containing ``option`` (a multiselect stays open after a
        pick: ``close`` presses Escape, counted, as a user would to see the page again)."""
        box = self.page.get_by_role("combobox", name=label, exact=True).first
        box.click()
        choice = self.page.get_by_role("option").filter(has_text=option).first
        choice.wait_for(timeout=10_000)
        choice.click()
        self._count(2, f"choose {label}: {option}")
        if close:
            self.page.keyboard.press("Escape")
            self._count(1, "key Escape")
        settle(self.page, timeout=LONG)


def see(page, text, timeout: float = 60_000) -> None:
    page.get_by_text(text).first.wait_for(state="visible", timeout=timeout)


def open_signed_in(page, url: str, nav_label: str, username: str) -> None:
    """The start of every task: the app, the role's start page from the sidebar, signed in (not counted)."""
    page.goto(url)
    settle(page)
    link = page.locator("[data-testid='stSidebarNav'] a").filter(has_text=re.compile(rf"^\s*{nav_label}\s*$"))
    link.click()
    settle(page)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    settle(page)
    see(page, "Signed in as", timeout=30_000)
    page.get_by_role("heading", name=nav_label).first.wait_for(timeout=30_000)


# -- the tasks ---------------------------------------------------------------------------------------------------------

def marketer(u: User, version: str) -> dict:
    """Prompts: a batch of the brand's template with three colours, saved, sent to Generate, queued, images shown."""
    page = u.page
    see(page, "Tokens")
    template = page.get_by_role("combobox", name="Template", exact=True).first
    if template.input_value() != "T-shirt":  # the brand's template is not the one shown
        u.choose("Template", "T-shirt")
    colour = page.get_by_role("combobox", name="Color", exact=True).first
    for _ in range(EXTRA_COLOURS):  # the first colours not picked yet
        colour.click()
        option = page.get_by_role("option").filter(has_not_text=re.compile(r"^\s*Select all")).first
        option.wait_for(timeout=10_000)
        name = option.inner_text()
        option.click()
        u._count(2, f"choose Color: {name}")
        settle(page)
    page.keyboard.press("Escape")  # close the list to see the batch
    u._count(1, "key Escape")
    settle(page)
    m = re.search(r"([\d,]+) prompts? from", page.locator("[data-testid='stMarkdown']").filter(
        has_text=re.compile(r"prompts? from")).first.inner_text())
    n_prompts = int(m.group(1).replace(",", "")) if m else 0
    assert n_prompts == 1 + EXTRA_COLOURS, f"the batch has {n_prompts} prompts, not {1 + EXTRA_COLOURS}"
    u.type(page.get_by_label("Batch name", exact=True), "role bench batch", "Batch name")
    u.click(page.get_by_role("button", name="Save to prompt library"), "Save to prompt library")
    see(page, re.compile(r"Saved as batch \d+"))
    u.click(page.get_by_role("button", name="Send to Generate"), "Send to Generate")
    if version == "before":  # Send only showed a link; Generate opened on its one-prompt tab
        u.click(page.get_by_role("link", name=re.compile(r"Open Generate with batch \d+")), "the link to Generate")
        see(page, "demo model")
        u.click(page.get_by_role("tab", name=re.compile(r"Prompt batch \d+")), "the Prompt batch tab")
        u.click(page.get_by_role("button", name="Queue the batch"), "Queue the batch")
    else:  # Send opens Generate's batch tab with the batch
        see(page, "Images per prompt")
        u.click(page.get_by_role("button", name=re.compile(r"Queue \d+ images?")), "Queue N images")
    see(page, re.compile(r"generate prompts-\d+ — job \d+, (done|failed)"), timeout=LONG)
    assert not page.get_by_text(re.compile(r"generate prompts-\d+ — job \d+, failed")).count(), "the batch failed"
    settle(page, timeout=LONG)
    shown = page.locator("[data-testid='stImage'] img:visible")
    deadline = time.monotonic() + 120
    while shown.count() < n_prompts and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)
    assert shown.count() >= n_prompts, f"{shown.count()} images shown for a batch of {n_prompts}"
    return {"prompts": n_prompts, "images_shown": shown.count()}


def analyst(u: User, version: str) -> dict:
    """Training: the loss curves of the two runs, compared."""
    page = u.page
    if version == "before":  # no overlay: read one run's curves, then open the other run and read its curves
        u.click(page.get_by_role("tab", name="Runs"), "the Runs tab")
        box = page.get_by_role("combobox", name="Open run", exact=True).first
        first = box.input_value().strip()  # the newest run, open with its curves
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)
        box.click()
        option = page.get_by_role("option").filter(has_not_text=first).first
        option.wait_for(timeout=10_000)
        second = option.inner_text().strip()
        option.click()
        u._count(2, f"choose Open run: {second}")
        settle(page, timeout=LONG)
        other_id = re.match(r"run (\d+)", second).group(1)
        see(page, re.compile(rf"run {other_id}\b.* — "))
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)
        return {"runs_compared": [first, second], "how": "one run's curves, then the other's"}
    u.click(page.get_by_role("tab", name="Runs"), "the Runs tab")
    see(page, "Compare loss curves")
    picker = page.locator("[data-testid='stMultiSelect']").filter(has_text="Runs to overlay").first
    chips = picker.locator("[data-tag]:visible")  # the chosen runs' chips
    with contextlib.suppress(Exception):  # playwright's TimeoutError: nothing picked yet
        chips.nth(1).wait_for(timeout=10_000)
    while chips.count() < 2:  # the overlay starts with the two newest runs; pick until two are there
        u.choose("Runs to overlay", "run ", close=True)
    page.locator("[data-testid='stVegaLiteChart']").last.wait_for(timeout=60_000)
    return {"runs_compared": chips.all_inner_texts(), "how": "one overlay chart"}


def approver(u: User, version: str) -> dict:
    """Review: 10 images approved one at a time with the A key (the Queue tab), then 10 in bulk (the Bulk tab)."""
    page = u.page
    see(page, re.compile(r"Image 1 of \d+"))
    one_start = time.monotonic()
    for _ in range(REVIEW_N):
        u.key("a")
        see(page, re.compile(r"Image \d+ approved"))
    one_s = time.monotonic() - one_start
    one_actions = u.actions
    bulk_start = time.monotonic()
    u.click(page.get_by_role("tab", name="Bulk"), "the Bulk tab")
    boxes = page.locator("[data-testid='stCheckbox']").filter(has_text=re.compile(r"^\s*(Image )?\d+ · "))
    boxes.first.wait_for(timeout=60_000)
    assert boxes.count() >= REVIEW_N, f"only {boxes.count()} images in the bulk view"
    for i in range(REVIEW_N):  # before #26 each tick re-ran the page; now they sit in one form
        u.click(boxes.nth(i).locator("label"), f"tick image {i + 1}", wait=version == "before")
    u.click(page.get_by_role("button", name="Apply to the selected images"), "Apply to the selected images")
    see(page, re.compile(rf"^{REVIEW_N} decided, 0 changed by someone else meanwhile, 0 refused"), timeout=LONG)
    return {"one_at_a_time": {"actions": one_actions, "seconds": round(one_s, 2)},
            "bulk": {"actions": u.actions - one_actions, "seconds": round(time.monotonic() - bulk_start, 2)}}


TASKS = {  # role -> (user, start page, task, what it is)
    "marketer": ("mia", "Prompts", marketer, "prompt batch (3 prompts) to generated images"),
    "analyst": ("ari", "Training", analyst, "compare the loss curves of two training runs"),
    "approver": ("ana", "Review", approver, "review 10 images"),
}


# -- the workspace -----------------------------------------------------------------------------------------------------

def prepare(code: Path, workspace: Path) -> Path:
    """A second training run (the demo has one) and 2 x 10 more images waiting for review, made once with the
    version's own CLI; then the snapshot every repetition starts from."""
    snap = workspace.with_name(workspace.name + ".snapshot")
    if snap.is_dir():
        return snap
    runs = cli(code, workspace, "ari", "runs", "list")
    if len(re.findall(r"^\s*\d+\s", runs, flags=re.M)) < 2:
        cli(code, workspace, "ari", "train", "--config", str(code / "configs" / "tiny_cpu_demo.yaml"),
            "--dataset", "1",  # demo-aurelo, the first dataset the demo imports
            "--max_train_steps", "20", "--checkpointing_steps", "10",
            "--run_name", "second run")  # waits for the run to end
    cli(code, workspace, "mia", "generate", "run", "--prompt",
        "a photo of a hoodie by aurelo, on a white background", "--n", str(2 * REVIEW_N), "--steps", "4",
        "--size", "64", "--no-gate", "--batch", "role-bench-extra")
    stop_worker(workspace)
    shutil.copytree(workspace, snap, symlinks=True)
    return snap


def restore(snap: Path, workspace: Path) -> None:
    stop_worker(workspace)
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.copytree(snap, workspace, symlinks=True)


def run_once(code: Path, version: str, workspace: Path, roles: list[str], chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as tmp, serve(workspace, Path(tmp) / "streamlit.log", start_timeout=120,
                                                         code=code) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                for role in roles:
                    username, start_page, task, _ = TASKS[role]
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(60_000)
                    open_signed_in(page, url, start_page, username)
                    u = User(page)
                    u.start()
                    try:
                        detail = task(u, version)
                    except Exception as exc:  # noqa: BLE001 - report it, measure the other roles
                        shot = Path(tempfile.gettempdir()) / f"role-bench-{version}-{role}-failed.png"
                        page.screenshot(path=str(shot), full_page=True)
                        results[role] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "screenshot": str(shot),
                                         "steps": u.steps}
                        print(f"  {version} {role}: FAILED after {u.steps}: {exc}", flush=True)
                        context.close()
                        continue
                    results[role] = {"actions": u.actions, "seconds": round(u.seconds(), 2), "steps": u.steps,
                                     **detail}
                    print(f"  {version} {role}: {u.actions} actions, {u.seconds():.1f} s", flush=True)
                    context.close()
            finally:
                browser.close()
    return results


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def table(paths: list[Path]) -> str:
    """The before/after markdown table from the --json files of several invocations (medians over all their runs)."""
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    loads = []
    for path in paths:
        data = json.loads(path.read_text())
        for r in data["runs"]:
            runs[data["version"]].append(r["results"])
            loads += [r["load_before"].split()[0], r["load_after"].split()[0]]

    def cell(version: str, role: str, part: str | None = None) -> str:
        ok = [r[role] for r in runs[version] if role in r and "error" not in r[role]]
        if part:
            ok = [r[part] for r in ok]
        if not ok:
            return "— | —"
        clicks = statistics.median(x["actions"] for x in ok)
        secs = statistics.median(x["seconds"] for x in ok)
        return f"{clicks:g} | {secs:.1f} s (n={len(ok)})"

    rows = ["| role | task | before: clicks | before: seconds | after: clicks | after: seconds |",
            "|---|---|---|---|---|---|",
            f"| marketer | {TASKS['marketer'][3]} | {cell('before', 'marketer')} | {cell('after', 'marketer')} |",
            f"| analyst | {TASKS['analyst'][3]} | {cell('before', 'analyst')} | {cell('after', 'analyst')} |"]
    for part, words in (("one_at_a_time", "review 10 images one at a time (A key)"),
                        ("bulk", "review 10 images in bulk (tick 10, apply)")):
        rows.append(f"| approver | {words} | {cell('before', 'approver', part)} | {cell('after', 'approver', part)} |")
    rows.append(f"\n1-minute load average at the start and end of the runs: {', '.join(loads)}")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--version", choices=["before", "after"], default="after")
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--roles", default="marketer,analyst,approver")
    ap.add_argument("--repeat", type=int, default=2, help="0: only prepare the workspace and its snapshot")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--table", type=Path, nargs="+", help="print the before/after table of these --json files, only")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the served app too: nothing is downloaded while it is timed
    if args.table:
        print(table(args.table))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the server and its worker stop too
    chromium = find_chromium()
    if not chromium:
        sys.exit("Chromium is not installed: apt-get install chromium")
    if args.workspace is None:
        ap.error("--workspace is needed")
    code, workspace = args.code.resolve(), args.workspace.resolve()
    roles = args.roles.split(",")
    snap = prepare(code, workspace)
    if args.repeat < 1:  # --repeat 0: prepare the workspace only
        return
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    runs = []
    for i in range(args.repeat):
        restore(snap, workspace)
        before_load = load()
        result = run_once(code, args.version, workspace, roles, chromium)
        runs.append({"repeat": i + 1, "load_before": before_load, "load_after": load(), "results": result})
    summary = {}
    for role in roles:
        ok = [r["results"][role] for r in runs if "error" not in r["results"][role]]
        summary[role] = {"actions": statistics.median(x["actions"] for x in ok),
                         "seconds": round(statistics.median(x["seconds"] for x in ok), 1), "of_runs": len(ok),
                         **({"one_at_a_time": {k: statistics.median(x["one_at_a_time"][k] for x in ok)
                                               for k in ("actions", "seconds")},
                             "bulk": {k: statistics.median(x["bulk"][k] for x in ok) for k in ("actions", "seconds")}}
                            if role == "approver" and ok else {})} if ok else {"error": "every run failed"}
    out = {"version": args.version, "commit": commit, "machine": f"{platform.node()} · {os.cpu_count()} CPUs",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs, "median": summary}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
