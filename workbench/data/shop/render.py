"""Rendering JavaScript-only shops (``CrawlOptions.render_js``, off by default): the page's HTML after its scripts
ran, from headless Chromium through Playwright, the browser the workbench's browser tests use.

Chromium is ``WORKBENCH_CHROMIUM`` or ``/usr/bin/chromium`` (``apt-get install chromium``; ``playwright install``
cannot download here). Conditional requests do not apply to rendered pages: each is loaded again. The browser loads
the page's own scripts, styles and images as a visitor's would, so each page costs more requests than its one
counted in the rate limit.
"""
from __future__ import annotations

import os

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


class Renderer:
    def __init__(self, user_agent: str, timeout: float):
        from playwright.sync_api import sync_playwright

        path = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
        if not os.path.exists(path):
            raise RuntimeError(f"rendering JavaScript needs Chromium at {path} (apt-get install chromium, or set "
                               "WORKBENCH_CHROMIUM)")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        self._context = self._browser.new_context(user_agent=user_agent)
        self._timeout_ms = timeout * 1000

    def html(self, url: str) -> tuple[int, bytes, str]:
        """(status, rendered HTML, error) of ``url``."""
        page = self._context.new_page()
        try:
            response = page.goto(url, wait_until="networkidle", timeout=self._timeout_ms)
            status = response.status if response is not None else 0
            return status, page.content().encode("utf-8"), "" if status else "no response"
        except Exception as exc:  # noqa: BLE001 - a page that fails to render is reported, the crawl goes on
            return 0, b"", f"rendering failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        finally:
            page.close()

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()
