"""Drive the running app in headless Chromium (Playwright): for the browser tests (tests/e2e/) and the user guide's
screenshots (scripts/screenshots.py), so both wait for a page the same way.

    with serve(workspace, log=Path("streamlit.log")) as url:     # `streamlit run Home.py` on a free port
        with sync_playwright() as p:
            page = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS).new_page()
            page.goto(url); settle(page)
            nav(page, "Datasets"); login(page, "mia", password)

Chromium comes from Debian (`apt-get install chromium`): Playwright cannot download its own browser offline.
Playwright is a test requirement (requirements-test.txt), imported only by the caller.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_worker(workspace: Path) -> None:
    """The app starts a detached job worker (jobs outlive the browser by design); stop the workspace's worker."""
    lock = Path(workspace) / "worker.lock"
    pids = [int(p) for p in lock.read_text().split()] if lock.exists() else []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


@contextlib.contextmanager
def serve(workspace: Path, log: Path, start_timeout: float = 60, as_configured: bool = False,
          code: Path = ROOT) -> Iterator[str]:
    """`streamlit run Home.py` on a free localhost port over ``workspace``; yields its URL. On exit the server and
    the workspace's job worker are stopped. Raises RuntimeError with the log's tail when it does not start.
    ``as_configured``: started as a user starts it, with .streamlit/config.toml's address, file watcher and usage
    statistics settings rather than the flags that pin them here. ``code``: the checkout whose app is served (its
    own ``workbench`` package first on the path; bench/role_tasks.py serves an older version beside this one)."""
    port = free_port()
    env = dict(os.environ, WORKBENCH_WORKSPACE=str(workspace))
    if Path(code).resolve() != ROOT:
        env["PYTHONPATH"] = str(code)
    env.pop("WORKBENCH_JOBS_PRELOAD", None)  # the app's own default: model jobs forked from a preloaded server
    env.pop("WORKBENCH_AUTO_WORKER", None)  # the app's own default: queueing a job starts a consumer
    with Path(log).open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(Path(code) / "Home.py"), "--server.headless", "true",
             "--server.port", str(port)] + ([] if as_configured else [
                 "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none"]),
            cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"streamlit did not start: {Path(log).read_text()[-2000:]}") from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            stop_worker(workspace)


def server_process(url: str):
    """The ``streamlit run`` child of this process that ``serve`` started for ``url`` (a psutil.Process). Other
    children that have exited but are not reaped yet (zombies, left by any earlier subprocess) or that vanish while
    they are looked at are passed over."""
    import psutil

    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children():
        try:
            cmdline = child.cmdline()
        except psutil.Error:  # a zombie, or gone meanwhile: not the server
            continue
        if "streamlit" in " ".join(cmdline) and port in cmdline:
            return child
    raise LookupError(f"no streamlit process of this test serves {url}")


# -- waiting for a page ---------------------------------------------------------------------------------------------

def settle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (the running indicator is gone) and lazily loaded
    widgets have arrived (no skeletons); fail if the page shows an exception."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_function("!document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout)
    page.wait_for_timeout(300)
    crashed = page.locator("[data-testid='stException']")
    assert not crashed.count(), f"the page raised: {crashed.first.inner_text()[:2000]}"


def see(page, text, timeout: float = 60_000, exact: bool = False) -> None:
    """Wait for visible text (a string or a compiled regex)."""
    page.get_by_text(text, exact=exact).first.wait_for(state="visible", timeout=timeout)


def workspace_activity(workspace: Path) -> float:
    """The newest modification time among the workspace's database and job logs: it moves whenever a job writes
    progress, a log line or a result (what a wait on a long job watches instead of the clock)."""
    newest = 0.0
    for path in [workspace / "workbench.db", workspace / "workbench.db-wal", *workspace.glob("logs/**/*")]:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            pass
    return newest


def see_while_progressing(page, text, progress: Callable[[], object], stall: float = 300_000,
                          overall: float = 2_400_000, poll: float = 5_000) -> None:
    """Wait for ``text`` like ``see``, for as long as ``progress()`` keeps changing: fail only when nothing moved
    for ``stall`` ms (a hung job) or after ``overall`` ms in all. On a loaded machine a job may take many times its
    usual time; a fixed wall-clock wait would fail it for being slow, not for being stuck (issue #23 item 6)."""
    start = last_move = time.monotonic()
    seen = progress()
    while True:
        try:
            see(page, text, timeout=poll)
            return
        except Exception as exc:  # playwright's TimeoutError: not there yet
            if "Timeout" not in type(exc).__name__ and "Timeout" not in str(exc):
                raise
        now, current = time.monotonic(), progress()
        if current != seen:
            seen, last_move = current, now
        if (now - last_move) * 1000 > stall:
            raise AssertionError(f"waited for {text!r}: nothing progressed for {stall / 1000:.0f} s")
        if (now - start) * 1000 > overall:
            raise AssertionError(f"waited for {text!r}: still running after {overall / 1000:.0f} s")


def screenshot(page, path: Path, max_height: int | None = None, timeout: float = 30_000) -> None:
    """A screenshot once every image has loaded (Streamlit's images are not lazy: they all load where they stand).
    Streamlit scrolls inside its main panel, so a browser "full page" shot is the window only: with ``max_height``
    the window grows to the content's height (up to that) for the shot, then shrinks back."""
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=timeout)
    size = page.viewport_size
    if max_height and size:
        main = "(document.querySelector('[data-testid=\"stMain\"]') || document.scrollingElement)"
        height = int(page.evaluate(f"{main}.scrollHeight"))
        if height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": min(height, max_height)})
            page.wait_for_timeout(500)  # the layout follows the new window
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=timeout)
    page.screenshot(path=str(path), full_page=True)
    if size and page.viewport_size != size:
        page.set_viewport_size(size)


# -- doing what a user does -----------------------------------------------------------------------------------------

def nav(page, label: str, heading: str | None = None) -> None:
    """Open a page from the sidebar (client-side: the session, and so the sign-in, is kept). A click that lands
    while the previous page is still redrawing can be lost (seen once in CI): then it clicks again."""
    link = page.locator("[data-testid='stSidebarNav'] a").filter(has_text=re.compile(rf"^\s*{label}\s*$"))
    title = page.get_by_role("heading", name=heading or label).first
    for attempt in range(3):
        link.click()
        settle(page)
        try:
            title.wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: try the click again
            if attempt == 2:
                raise


def login(page, username: str, password: str) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    settle(page)
    see(page, "Signed in as", timeout=30_000)


def logout(page) -> None:
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="Sign out").click()
    settle(page)


def tab(page, name) -> None:
    page.get_by_role("tab", name=name).click()
    settle(page)


def select(page, label: str, option: str) -> None:
    """A Streamlit selectbox or multiselect (a combobox named by its label): pick the option containing ``option``."""
    box = page.get_by_role("combobox", name=label, exact=True).first
    box.click()
    choice = page.get_by_role("option").filter(has_text=option).first
    try:
        choice.wait_for(timeout=2_000)
    except Exception:  # noqa: BLE001 - a selectbox opens its list from the keyboard
        box.press("ArrowDown")
    choice.click()
    page.keyboard.press("Escape")
    settle(page)


def value(page, label: str) -> str:
    return page.get_by_role("combobox", name=label, exact=True).first.input_value()


def number(page, label: str, to: float) -> None:
    field = page.get_by_label(label, exact=True).first
    field.fill(str(to))
    field.press("Enter")
    settle(page)
