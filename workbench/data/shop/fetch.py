"""HTTP for the shop crawl: one requests session with urllib3's retries (429/5xx and connection errors, honouring
Retry-After), a timeout, the crawl's rate limit, size caps while streaming, and redirects followed one hop at a time
with each hop checked (the crawl's ``allowed``: same site, robots.txt) and every host refused when it resolves to a
private, loopback or reserved address. ``Fetcher.render`` gets a page as headless Chromium sees it (``render.py``).
Used by ``workbench.data.shop.crawler``; it never raises for a network problem: the ``Response`` says why.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from workbench.data.shop.parse import normalise_url, origin_of

MAX_REDIRECTS = 5


class FetchOptions(Protocol):
    """What the fetcher reads of the crawl's options (``crawler.CrawlOptions`` has these and more)."""

    rate: float
    timeout: float
    retries: int
    user_agent: str
    allow_private: bool


@dataclass
class Response:
    url: str                      # the final URL (after redirects)
    status: int                   # 0: no response (the reason is in error)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""
    requests: int = 0             # requests this took (redirect hops included; retries are urllib3's)


class Fetcher:
    """One requests session with retries, a timeout, the rate limit and manual, checked redirects."""

    def __init__(self, options: FetchOptions, allowed: Callable[[str, str], str], transport: Any = None,
                 origin: str = ""):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.options = options
        self.allowed = allowed  # (url, kind) -> "" when it may be requested, else why not
        self.delay = 1.0 / options.rate
        self._last = 0.0
        self.session = requests.Session()
        retry = Retry(total=options.retries, connect=options.retries, read=options.retries,
                      status=options.retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET"}), respect_retry_after_header=True,
                      raise_on_status=False, redirect=False)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=1)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.transport_origin = origin if transport is not None else ""
        self._private: dict[str, str] = {}
        if transport is not None:  # files served under the shop's own URL (the demo shop): no socket
            self.session.mount(origin + "/", transport)
        self.session.headers.update({"User-Agent": options.user_agent, "Accept-Encoding": "gzip, deflate"})
        self._renderer = None

    def private(self, url: str) -> str:
        """Why ``url``'s host may not be requested (it resolves to a private address), or ""."""
        if self.options.allow_private or (self.transport_origin and origin_of(url) == self.transport_origin):
            return ""
        host = urlsplit(url).hostname or ""
        if host not in self._private:
            self._private[host] = _private_address(host)
        return self._private[host]

    def close(self) -> None:
        self.session.close()
        if self._renderer is not None:
            self._renderer.close()

    def wait(self) -> None:
        """Sleep until the rate limit allows the next request."""
        now = time.monotonic()
        if self._last and now < self._last + self.delay:
            time.sleep(self._last + self.delay - now)
        self._last = time.monotonic()

    def get(self, url: str, *, etag: str = "", last_modified: str = "", max_bytes: int,
            accept: str = "*/*", kind: str = "page") -> Response:
        import requests

        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        hops = 0
        current = url
        while True:
            refused = self.private(current)
            if refused:
                return Response(current, 0, error=refused, requests=hops)
            self.wait()
            hops += 1
            try:
                with self.session.get(current, headers=headers, timeout=self.options.timeout, stream=True,
                                      allow_redirects=False) as r:
                    if r.is_redirect and r.headers.get("location"):
                        target = normalise_url(r.headers["location"], current)
                        why = "not an http(s) URL" if target is None else self.allowed(target, kind)
                        if why or hops > MAX_REDIRECTS:
                            why = {"offsite": "another site", "disallowed": "disallowed by robots.txt"}.get(why, why)
                            return Response(current, r.status_code, error=f"redirected to {target or '?'}: "
                                            f"{why or f'more than {MAX_REDIRECTS} redirects'}", requests=hops)
                        current = target
                        continue
                    head = {k.lower(): v for k, v in r.headers.items()}
                    body = b""
                    if r.status_code == 200:
                        length = int(head.get("content-length") or 0)
                        if length > max_bytes:
                            return Response(current, r.status_code, head, error=f"{length:,} bytes, over the "
                                            f"{max_bytes:,}-byte limit", requests=hops)
                        chunks, size = [], 0
                        for chunk in r.iter_content(65536):
                            size += len(chunk)
                            if size > max_bytes:
                                return Response(current, r.status_code, head, error=f"over the {max_bytes:,}-byte "
                                                "limit", requests=hops)
                            chunks.append(chunk)
                        body = b"".join(chunks)
                    return Response(current, r.status_code, head, body, requests=hops)
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if isinstance(exc, requests.Timeout):
                    reason = f"timed out after {self.options.timeout:g} s"
                elif isinstance(exc, requests.ConnectionError):
                    reason = "could not connect"
                return Response(current, 0, error=f"{reason} (after {self.options.retries} retries)", requests=hops)

    def render(self, url: str) -> Response:
        """The page as headless Chromium sees it after its scripts ran (``render_js``): see ``render.py``."""
        from workbench.data.shop.render import Renderer

        refused = self.private(url)
        if refused:
            return Response(url, 0, error=refused)
        if self._renderer is None:
            self._renderer = Renderer(self.options.user_agent, self.options.timeout)
        self.wait()
        status, html, error = self._renderer.html(url)
        return Response(url, status, {"content-type": "text/html"}, html, error=error, requests=1)


def _private_address(host: str) -> str:
    """"" when every address ``host`` resolves to is public, else why it is refused. Checked again for each host
    a crawl meets (redirects included); a DNS answer that changes between this check and the connection is not
    caught (see docs/SECURITY.md)."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        return f"the host {host!r} does not resolve ({exc})"
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return (f"the host {host!r} resolves to {ip}, a private, loopback or reserved address; a shop is crawled "
                    "on the internet only (the CLI's --allow-private crawls your own network)")
    return ""
