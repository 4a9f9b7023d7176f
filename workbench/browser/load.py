"""Many people on the served app at once (issue #23 item 5): approvers deciding images from the review queue,
marketers queueing small generations, an analyst starting an evaluation, each signed in in a browser context of
its own in one headless Chromium, for a bounded time. Then the database is checked against what the pages said:
every decision a page acknowledged is recorded exactly once, no image is decided twice, every queued generation is
a job that ended, and no page showed an exception or a refusal, nor lost its connection to the server.

    plan = LoadPlan(approvers=20, marketers=5, analysts=1, images=60, seconds=120)
    report = run_load(plan, workspace, log=workspace / "streamlit.log")   # seeds, serves, drives, checks
    report["ok"]                                                          # False on anything lost, doubled, broken

``bench/load_served.py`` runs it at full size and prints the report as JSON; ``tests/test_load_served.py`` runs a
small one in the suite. Streamlit talks over a websocket, so the load comes from a real browser (Playwright's async
API: one task per person), not an HTTP client. A page action's time is click to answer: the acknowledgement (or the
conflict message) shown and the page finished redrawing.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.browser import CHROMIUM_ARGS, find_chromium, serve

PASSWORD = "load test password"
BATCH = "load-test"  # the generations batch of the seeded pending images
SETTLED = ("!document.querySelector('[data-testid=\"stStatusWidget\"]')"
           " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
           " && !document.querySelector('[data-stale=\"true\"]')")
CRASH = "[data-testid='stException']"
DISCONNECTED = "[data-testid='stConnectionStatus']"


@dataclass(frozen=True)
class LoadPlan:
    approvers: int = 20
    marketers: int = 5
    analysts: int = 1
    images: int = 60  # pending images seeded for the approvers
    seconds: float = 120.0  # how long people keep starting actions once all have arrived (``drive``)
    generations_per_marketer: int = 2  # each a one-image job (64 px, ``generation_steps`` steps)
    generation_steps: int = 2
    reject_share: float = 0.3  # the rest are approvals
    spread: bool = True  # approver i first steps i % 4 images into the queue (else all start on the first image)
    ramp: float = 1.0  # seconds between one person's first page load and the next one's
    action_timeout: float = 120.0  # seconds one click may take to be answered on a loaded machine
    jobs_timeout: float = 240.0  # seconds the queued jobs get to end after the people stop
    seed: int = 0


@dataclass
class Action:
    role: str
    user: str
    kind: str  # sign_in, next, approve, reject, set_steps, set_seed, queue, open_tab, evaluate
    seconds: float
    outcome: str  # ok | conflict | error | timeout
    detail: str = ""


@dataclass
class Seeded:
    approvers: list[str]
    marketers: list[str]
    analysts: list[str]
    images: list[int]


@dataclass
class Observed:
    """What the pages showed."""

    actions: list[Action] = field(default_factory=list)
    decisions: list[tuple[int, str, str]] = field(default_factory=list)  # (image, reviewer, status) acknowledged
    unanswered: list[tuple[int, str, str]] = field(default_factory=list)  # clicks with no answer in time
    jobs: list[tuple[str, int]] = field(default_factory=list)  # (marketer, job id) a page showed as queued
    evaluations: list[tuple[str, int]] = field(default_factory=list)  # (analyst, evaluation id)
    errors: list[str] = field(default_factory=list)  # exceptions, error boxes, page errors, dropped websockets
    load: list[float] = field(default_factory=list)  # 1-minute load average, every 5 s
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process kind (``cpu_seconds``)
    warm_up: float = 0.0  # seconds the server took to show its first page (not counted in the page times)
    closing: bool = False


# -- the workspace ----------------------------------------------------------------------------------------------------

def seed_workspace(plan: LoadPlan, password: str = PASSWORD) -> Seeded:
    """In the current settings' workspace: ``plan.approvers`` approvers (ap01, …), marketers (mk01, …) and analysts
    (an01, …), all with ``password``; ``plan.images`` pending images in batch ``BATCH``; and, when marketers or
    analysts take part, the tiny model kit as the workspace's models and a one-prompt saved batch to generate.
    The pending images are flat-colour placeholders recorded with ``record_generation`` and labelled as such (the
    approvers' load does not depend on what the pixels are)."""
    from PIL import Image

    from workbench import auth
    from workbench.db import init_db
    from workbench.generate.sample import GeneratedImage, a1111_parameters, record_generation, write_png
    from workbench.settings import get_settings

    init_db()
    if plan.marketers or plan.analysts:
        _install_tiny_models()
    ops = auth.system_actor("load-test")
    names = {"approver": [f"ap{i + 1:02d}" for i in range(plan.approvers)],
             "marketer": [f"mk{i + 1:02d}" for i in range(plan.marketers)],
             "analyst": [f"an{i + 1:02d}" for i in range(plan.analysts)]}
    old, auth.BCRYPT_ROUNDS = auth.BCRYPT_ROUNDS, 4  # 26 sign-ins should not be a bcrypt benchmark
    try:
        for role, users in names.items():
            for name in users:
                auth.add_user(ops, name, role, password=password)
    finally:
        auth.BCRYPT_ROUNDS = old
    rng = random.Random(plan.seed)
    ids = []
    for i in range(plan.images):
        prompt = f"load test placeholder {i} (a flat colour, not a generated image)"
        prov = {"workbench_version": "load-test", "model": "load test placeholder", "model_revision": "",
                "demo_model": True, "vae": "", "loras": [], "quantization": "none", "dtype": "fp32",
                "scheduler": "none", "prompt": prompt, "negative_prompt": "", "prompt_id": None, "template": "",
                "brand": "", "products": [], "seed": i, "base_seed": i, "steps": 0, "guidance": 0.0, "width": 64,
                "height": 64, "attempt": 1}
        image = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
        path = get_settings().path("generations", BATCH, f"placeholder-{i:04d}.png")
        write_png(path, image, a1111_parameters(prov, "none"), prov)
        ids.append(record_generation("load-test", GeneratedImage(image=image, seed=i, path=path, provenance=prov),
                                     BATCH))
    if plan.marketers:
        from workbench.prompts.expand import BatchSpec, expand_batch
        from workbench.prompts.library import load_library
        from workbench.prompts.store import save_batch

        spec = BatchSpec(template="t-shirt", slots={"color": ["navy"]})
        save_batch(auth.system_actor(names["marketer"][0], role="marketer"), expand_batch(load_library(), spec),
                   "load test")
    return Seeded(names["approver"], names["marketer"], names["analyst"], ids)


def _install_tiny_models() -> None:
    """The tiny kit in ``<workspace>/models`` and ``<workspace>/workbench.toml`` pointing every model setting at it,
    so the served app generates and evaluates offline in well under a second per image."""
    from workbench.models.tiny import kit_model_settings, make_tiny_kit
    from workbench.settings import get_settings, reload_settings, workspace_settings_file

    models = kit_model_settings(make_tiny_kit(get_settings().path("models")))
    path = workspace_settings_file()
    path.write_text("[models]\n" + "".join(f'{k} = "{v}"\n' for k, v in sorted(models.items())))
    reload_settings()


# -- the people -------------------------------------------------------------------------------------------------------

# In the page, polled every 250 ms (cheaper than Playwright's text locators, which scan the whole page on every
# animation frame: with 26 pages on 2 cores that scan was a large share of the machine): the first of ``patterns``
# (regular expressions) that an up-to-date element matching ``selector`` shows, skipping texts that contain one of
# ``exclude``; an exception shown anywhere answers at once (index -1).
FIND = """([selector, patterns, exclude]) => {
  const crash = document.querySelector("[data-testid='stException']");
  if (crash) return {index: -1, text: crash.innerText};
  const shown = [...document.querySelectorAll(selector)].filter(e => !e.closest("[data-stale='true']"))
    .map(e => e.innerText).filter(t => !exclude.some(x => t.includes(x)));
  for (let i = 0; i < patterns.length; i++) {
    const re = new RegExp(patterns[i]);
    const t = shown.find(s => re.test(s));
    if (t !== undefined) return {index: i, text: t};
  }
  return false;
}"""
ALERT = "[data-testid='stAlertContainer']"
MARKDOWN = "[data-testid='stMarkdown']"


class NoAnswer(Exception):
    """A page action got no answer within the plan's ``action_timeout``."""


class _Person:
    """One signed-in user in a browser context: times each action and collects what went wrong on their page."""

    def __init__(self, page, role: str, user: str, seen: Observed, plan: LoadPlan):
        self.page, self.role, self.user, self.seen, self.plan = page, role, user, seen, plan
        self.timeout_ms = plan.action_timeout * 1000
        self.until = 0.0  # when this person stops starting actions (``drive`` and ``sign_in`` set it)
        page.set_default_timeout(self.timeout_ms)
        page.on("pageerror", lambda exc: seen.errors.append(f"{user}: page error: {exc}"))
        page.on("websocket", self._watch_socket)

    def _watch_socket(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("close", lambda _ws: None if self.seen.closing else
                  self.seen.errors.append(f"{self.user}: the app's websocket closed"))

    def record(self, kind: str, start: float, outcome: str, detail: str = "") -> None:
        self.seen.actions.append(Action(self.role, self.user, kind, time.monotonic() - start, outcome, detail))

    async def settled(self) -> None:
        await self.page.wait_for_function(SETTLED, polling=250, timeout=self.timeout_ms)

    async def answer(self, selector: str, patterns: list[str], exclude: list[str] = ()) -> tuple[int, str]:
        """(index of the pattern seen, the element's text); (-1, its text) for an exception on the page."""
        found = await self.page.wait_for_function(FIND, arg=[selector, patterns, list(exclude)], polling=250,
                                                  timeout=self.timeout_ms)
        value = await found.json_value()
        return value["index"], value["text"]

    async def check_page(self, kind: str) -> bool:
        """After an action: an exception or a connection status (reconnecting, offline) on the page is an error."""
        for selector, what in ((CRASH, "an exception"), (DISCONNECTED, "a connection status")):
            found = self.page.locator(selector)
            if await found.count():
                text = (await found.first.inner_text()).strip()[:500]
                self.seen.errors.append(f"{self.user}: {kind}: the page shows {what}: {text}")
                return False
        return True

    async def step(self, kind: str, act, selector: str | None = None, patterns: list[str] = (),
                   exclude: list[str] = (), grace: float = 0.3) -> tuple[str, str]:
        """Do ``act()``; wait for one of ``patterns`` in ``selector`` (or, without them, a short grace for the rerun
        to start) and for the page to settle; record the time. Returns (outcome, the answer's text); the outcome is
        ``ok``, ``error`` (an exception, a lost connection) or ``timeout`` (also listed as an error)."""
        start = time.monotonic()
        text = ""
        try:
            await act()
            if selector:
                index, text = await self.answer(selector, list(patterns), list(exclude))
                if index < 0:
                    self.seen.errors.append(f"{self.user}: {kind}: the page shows an exception: {text[:500]}")
            else:
                await asyncio.sleep(grace)
            await self.settled()
        except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError and its errors on a closed page
            self.record(kind, start, "timeout", str(exc).splitlines()[0][:300])
            self.seen.errors.append(f"{self.user}: {kind}: no answer within {self.plan.action_timeout:.0f} s")
            return "timeout", ""
        ok = await self.check_page(kind) and not (selector and index < 0)
        self.record(kind, start, "ok" if ok else "error")
        return ("ok" if ok else "error"), text

    async def sign_in(self, url: str, path: str) -> bool:
        page = self.page
        opened, _ = await self.step("open_page", lambda: page.goto(f"{url}/{path}"), "[data-testid='stTextInput']",
                                    ["Username"])
        if opened != "ok":
            return False
        await page.get_by_role("textbox", name="Username").fill(self.user)
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        signed, _ = await self.step("sign_in", page.get_by_role("button", name="Sign in", exact=True).click,
                                    "[data-testid='stSidebar']", ["Signed in as"])
        # Everyone works until the last one has arrived plus the plan's time, and at least the plan's time however
        # slow their sign-in was on a busy machine.
        self.until = max(self.until, time.monotonic() + self.plan.seconds)
        return signed == "ok"

    async def tab(self, name: str) -> bool:
        return (await self.step("open_tab", self.page.get_by_role("tab", name=name).click))[0] == "ok"

    async def number(self, kind: str, label: str, value: int) -> bool:
        box = self.page.get_by_label(label, exact=True).filter(visible=True).first

        async def act():
            await box.fill(str(value))
            await box.press("Enter")
        return (await self.step(kind, act))[0] == "ok"


async def _approver(person: _Person, url: str, index: int) -> None:
    """Decides the image the queue shows (approve, or reject with a reason), as fast as the page answers, for the
    plan's time or until the queue is empty. A conflict (someone decided it first) is an answer, not an error."""
    page, seen, plan = person.page, person.seen, person.plan
    rng = random.Random(plan.seed * 1000 + index)
    if not await person.sign_in(url, "Review"):
        return
    if plan.spread:
        for _ in range(index % 4):
            if (await person.step("next", page.get_by_role("button", name="Next").click))[0] != "ok":
                return
    reasons = 0
    while time.monotonic() < person.until:
        where, text = await person.answer(f"{MARKDOWN}, {ALERT}",
                                          [r"^Image \d+ · pending", "Nothing to review with these filters"])
        if where != 0:
            if where < 0:
                seen.errors.append(f"{person.user}: the review page shows an exception: {text[:500]}")
            return  # nothing left to decide (or broken)
        gid = int(re.match(r"Image (\d+)", text).group(1))
        reject = rng.random() < plan.reject_share
        if reject:
            reasons += 1
            await page.get_by_label(re.compile(r"^Comment")).filter(visible=True).first.fill(
                f"load test: reason {reasons} from {person.user}")
        status = "rejected" if reject else "approved"
        button = page.get_by_role("button", name="Reject" if reject else "Approve").filter(visible=True).first
        start = time.monotonic()
        try:
            await button.click()
            where, text = await person.answer(ALERT, [rf"^Image {gid} {status}\.$",
                                                      rf"image {gid} changed while you looked at it",
                                                      r"ay why you reject"])
            await person.settled()
        except Exception as exc:  # noqa: BLE001 - no answer in time (or the page went away)
            person.record(status, start, "timeout", str(exc).splitlines()[0][:300])
            seen.unanswered.append((gid, person.user, status))
            seen.errors.append(f"{person.user}: {status} image {gid}: no answer within {plan.action_timeout:.0f} s")
            return
        outcome = {0: "ok", 1: "conflict"}.get(where, "error")
        if outcome == "ok":
            seen.decisions.append((gid, person.user, status))
        elif outcome == "error":
            seen.errors.append(f"{person.user}: {status} image {gid}: {text.strip()[:500]}")
        if not await person.check_page(status):
            outcome = "error"
        person.record(status, start, outcome, f"image {gid}")
        if outcome == "error":
            return


async def _marketer(person: _Person, url: str, index: int) -> None:
    """Queues ``generations_per_marketer`` one-image jobs from the saved prompt batch (a new first seed each), then
    switches between the Generate tabs while they run."""
    page, seen, plan = person.page, person.seen, person.plan
    if not await person.sign_in(url, "Generate"):
        return
    if not await person.tab("Prompt batch") or not await person.number("set_steps", "Steps", plan.generation_steps):
        return
    mine: list[int] = []
    for k in range(plan.generations_per_marketer):
        if time.monotonic() >= person.until:
            return
        if not await person.number("set_seed", "First seed", 1000 * (index + 1) + k):  # new images each time
            return
        queue = page.get_by_role("button", name=re.compile(r"^Queue \d+ image"))
        queued, text = await person.step("queue", queue.click, MARKDOWN, [r"— job \d+, (queued|running|done|failed)"],
                                         exclude=[f"job {j}," for j in mine])
        if queued != "ok":
            return
        mine.append(int(re.search(r"job (\d+),", text).group(1)))
        seen.jobs.append((person.user, mine[-1]))
        await asyncio.sleep(3)  # looks at the job panel before the next one
    while time.monotonic() < person.until:
        for name in ("One prompt", "Prompt batch"):
            if not await person.tab(name):
                return
            await asyncio.sleep(3)


async def _analyst(person: _Person, url: str, index: int) -> None:
    """Starts one evaluation of the seeded batch (default metrics, no reference set), then reads the tabs."""
    page, seen = person.page, person.seen
    if not await person.sign_in(url, "Evaluate") or not await person.tab("New evaluation"):
        return
    await page.get_by_label("Name", exact=True).filter(visible=True).first.fill(f"load test {person.user}")
    pick = page.get_by_role("combobox", name="Image sets (generation batches)", exact=True).first

    async def choose():
        await pick.click()
        await page.get_by_role("option").filter(has_text=BATCH).first.click()
        await page.keyboard.press("Escape")
    if (await person.step("choose_set", choose))[0] != "ok":
        return
    started, text = await person.step("evaluate", page.get_by_role("button", name="Evaluate", exact=True).click,
                                      ALERT, [r"^Evaluation \d+ queued\.$"])
    if started != "ok":
        return
    seen.evaluations.append((person.user, int(re.search(r"\d+", text).group())))
    while time.monotonic() < person.until:  # reads the results while the evaluation runs
        for name in ("Compare", "Metric cards", "New evaluation"):
            if not await person.tab(name):
                return
            await asyncio.sleep(3)


async def drive(url: str, plan: LoadPlan, seeded: Seeded, chromium: str | None = None) -> Observed:
    """Everyone at once: first page loads staggered by ``plan.ramp`` seconds (a page load costs Chromium ~3 CPU
    seconds here: 26 at once starve everything else on 2 cores), then each person works until the last one has
    arrived plus ``plan.seconds``, and at least ``plan.seconds`` after their own sign-in; the action under way is
    finished. One headless Chromium, one context (own cookies, own Streamlit session) each."""
    from playwright.async_api import async_playwright

    seen = Observed()
    people = ([("approver", u, _approver) for u in seeded.approvers] + [("marketer", u, _marketer)
              for u in seeded.marketers] + [("analyst", u, _analyst) for u in seeded.analysts])
    rng = random.Random(plan.seed)
    rng.shuffle(people)  # the roles arrive mixed, not approvers first
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium or find_chromium(), args=CHROMIUM_ARGS)
        # A server that has run a while has its page modules imported: one page load first, not counted (the first
        # script run imports them, ~9 CPU seconds here).
        started = time.monotonic()
        warm = await browser.new_context()
        page = await warm.new_page()
        await page.goto(f"{url}/Review")
        await page.get_by_role("textbox", name="Username").wait_for(timeout=plan.action_timeout * 1000)
        await warm.close()
        seen.warm_up = time.monotonic() - started
        common_end = time.monotonic() + plan.ramp * len(people) + plan.seconds

        async def one(i: int, role: str, user: str, run) -> None:
            await asyncio.sleep(plan.ramp * i)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            person = _Person(await context.new_page(), role, user, seen, plan)
            person.until = common_end
            index = sorted(u for r, u, _ in people if r == role).index(user)
            try:
                await run(person, url, index)
            except Exception as exc:  # noqa: BLE001 - a person's script broke: say so, keep the others going
                seen.errors.append(f"{user}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")

        async def sample_load() -> None:
            while True:
                seen.load.append(os.getloadavg()[0])
                await asyncio.sleep(5)

        sampler = asyncio.create_task(sample_load())
        try:
            await asyncio.gather(*(one(i, role, user, run) for i, (role, user, run) in enumerate(people)))
            seen.cpu = cpu_seconds()
        finally:
            seen.closing = True
            sampler.cancel()
            await browser.close()
    return seen


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process's descendants, by kind: the Streamlit server, the job worker and its
    jobs, Chromium, Playwright's driver; and this process itself (the people's scripts)."""
    import psutil

    me = psutil.Process()
    used = collections.Counter({"driver (this process)": sum(me.cpu_times()[:2])})
    for proc in me.children(recursive=True):
        try:
            line = " ".join(proc.cmdline())
            t = proc.cpu_times()
        except psutil.Error:
            continue
        kind = ("chromium" if "chrom" in line else "streamlit server" if "streamlit" in line else
                "job worker and jobs" if "workbench" in line else "playwright" if "playwright" in line else "other")
        used[kind] += t.user + t.system + t.children_user + t.children_system
    return {k: round(v, 1) for k, v in used.items()}


# -- what the database says -------------------------------------------------------------------------------------------

def wait_for_jobs(job_ids: list[int], timeout: float) -> dict[int, str]:
    """Each job's status once none is queued or running any more (or ``timeout`` seconds have passed)."""
    from workbench.jobs import get_job

    deadline = time.monotonic() + timeout
    while True:
        status = {j: get_job(j).status for j in job_ids}
        if not any(s in ("queued", "running") for s in status.values()) or time.monotonic() > deadline:
            return status
        time.sleep(1)


def check_database(seen: Observed, seeded: Seeded, plan: LoadPlan) -> dict[str, Any]:
    """Acknowledged decisions against the reviews table and the audit log; queued generations and evaluations
    against the jobs (waiting for them to end)."""
    from sqlalchemy import select

    from workbench.db import AuditLog, Job, session_scope
    from workbench.evaluate.tables import Evaluation
    from workbench.review.tables import ReviewRow

    with session_scope() as s:
        rows = [(r.generation_id, r.seq, r.reviewer, r.decision) for r in s.scalars(select(ReviewRow))]
        audited = collections.Counter((int(a.entity_id), a.actor, a.action.removeprefix("review."))
                                      for a in s.scalars(select(AuditLog).where(
                                          AuditLog.action.in_(["review.approve", "review.reject"]))))
        generate_jobs = {j.id: j.created_by for j in s.scalars(select(Job).where(Job.kind == "generate"))}
        evaluations = {e.id: (e.created_by, e.job_id) for e in s.scalars(select(Evaluation))}
    acked = collections.Counter(seen.decisions)
    recorded = collections.Counter((gid, who, decision) for gid, _, who, decision in rows)
    per_image = collections.Counter(gid for gid, *_ in rows)
    per_seq = collections.Counter((gid, seq) for gid, seq, *_ in rows)
    unanswered = collections.Counter(seen.unanswered)
    lost = acked - recorded
    extra = recorded - acked  # recorded without an acknowledgement: fine only for a click that got no answer in time
    phantom = extra - unanswered
    audit_keys = collections.Counter({(g, w, {"approved": "approve", "rejected": "reject"}[d]): n
                                      for (g, w, d), n in recorded.items()})
    queued = {j for _, j in seen.jobs}
    eval_jobs = [evaluations[e][1] for _, e in seen.evaluations if e in evaluations]
    status = wait_for_jobs(sorted(set(generate_jobs) | set(eval_jobs)), plan.jobs_timeout)
    return {
        "decisions": {
            "acknowledged": sum(acked.values()), "recorded": len(rows),
            "conflicts_shown": sum(a.outcome == "conflict" for a in seen.actions),
            "unanswered_clicks": sum(unanswered.values()),
            "lost": sorted(lost.elements()),  # acknowledged, not recorded
            "phantom": sorted(phantom.elements()),  # recorded, never acknowledged, though the click was answered
            "decided_twice": sorted(g for g, n in per_image.items() if n > 1),  # pending-only queue, no undo: 1 each
            "same_seq_twice": sorted(k for k, n in per_seq.items() if n > 1),
            "audit_mismatch": sorted((audit_keys - audited).elements()) + sorted((audited - audit_keys).elements()),
            "images_left_pending": len(set(seeded.images) - set(per_image)),
        },
        "generations": {
            "queued_on_pages": len(queued), "jobs_created": len(generate_jobs),
            "not_shown": sorted(set(generate_jobs) - queued), "not_created": sorted(queued - set(generate_jobs)),
            "ended": dict(collections.Counter(status.get(j, "missing") for j in generate_jobs)),
        },
        "evaluations": {
            "started_on_pages": len(seen.evaluations), "created": len(evaluations),
            "ended": dict(collections.Counter(status.get(j, "missing") for j in eval_jobs)),
        },
    }


# -- the whole run ----------------------------------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p95, max (nearest rank) in seconds."""
    if not values:
        return {"n": 0}
    v = sorted(values)

    def rank(q: float) -> float:
        return round(v[max(0, math.ceil(q * len(v)) - 1)], 2)
    return {"n": len(v), "p50": rank(0.5), "p95": rank(0.95), "max": round(v[-1], 2)}


def run_load(plan: LoadPlan, workspace: Path, log: Path, chromium: str | None = None) -> dict[str, Any]:
    """Seed the current settings' workspace (``workspace``), serve it, drive it, check it: the report as a dict.
    ``report["ok"]``: nothing lost, doubled or phantom, no error on any page, every job ended done."""
    started = time.monotonic()
    load_before = os.getloadavg()
    seeded = seed_workspace(plan)
    seeding = time.monotonic() - started
    with serve(workspace, log=log) as url:
        served = time.monotonic()
        seen = asyncio.run(drive(url, plan, seeded, chromium))
        driven = time.monotonic() - served
        checks = check_database(seen, seeded, plan)
    d, g, e = checks["decisions"], checks["generations"], checks["evaluations"]
    problems = (d["lost"] or d["phantom"] or d["decided_twice"] or d["same_seq_twice"] or d["audit_mismatch"]
                or g["not_shown"] or g["not_created"] or set(g["ended"]) - {"done"} or set(e["ended"]) - {"done"}
                or e["created"] != e["started_on_pages"])
    actions = [a for a in seen.actions if a.outcome in ("ok", "conflict")]
    by_role = {role: percentiles([a.seconds for a in actions if a.role == role])
               for role in dict.fromkeys(a.role for a in seen.actions)}
    by_action = {kind: percentiles([a.seconds for a in actions if a.kind == kind])
                 for kind in dict.fromkeys(a.kind for a in seen.actions)}
    return {
        "ok": not problems and not seen.errors,
        "plan": asdict(plan),
        "machine": {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                    "load_during_mean": round(sum(seen.load) / len(seen.load), 2) if seen.load else None,
                    "load_during_max": round(max(seen.load), 2) if seen.load else None,
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "seconds": {"seeding": round(seeding, 1), "first_page_warm_up": round(seen.warm_up, 1),
                    "people": round(driven, 1),
                    "total": round(time.monotonic() - started, 1)},
        "cpu_s": seen.cpu,
        "page_time_s": {"by_role": by_role, "by_action": by_action},  # answered actions (ok or conflict)
        "actions": dict(collections.Counter(f"{a.kind}:{a.outcome}" for a in seen.actions)),
        **checks,
        "errors": seen.errors,
    }
