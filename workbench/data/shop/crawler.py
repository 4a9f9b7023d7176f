"""Crawling one shop politely, with a record of every URL fetched, so a re-run downloads only what changed and a
killed crawl resumes.

    from workbench.data.shop.crawler import CrawlOptions, crawl_shop
    result = crawl_shop(actor, "https://shop.example/", options=CrawlOptions(max_pages=200))
    result.products        # [ShopProduct] read from the product pages (schema.org Product: JSON-LD, else microdata)
    result.images          # image URL -> the downloaded file (content-addressed under workspace/shops/<id>/files/)
    result.problems        # [Problem(url, reason)]: a page whose product data does not parse, a 404, not an image

What it does, in order: reads ``/robots.txt`` (and obeys it: a disallowed URL is never requested; its Crawl-delay
slows the crawl further; a robots.txt answering 5xx stops the crawl, as Google does), queues the sitemaps robots.txt
names (else ``/sitemap.xml``) and the start URL, then works through the queue in discovery order: pages of the same
site (scheme, host and port of the start URL) up to ``max_pages``, the links they hold (catalog pages, pagination,
product pages), the images of each product (the site's own, plus hosts listed in ``allow_hosts`` such as its CDN).

Polite by default: one site, one request at a time, at most ``rate`` requests per second (1), a ``timeout`` per request
(15 s), retries with back-off on 429/5xx and connection errors (2, honouring Retry-After), a user agent naming the
workbench, at most ``max_pages`` pages (500). Redirects are followed one hop at a time and each hop is checked (same
site, robots.txt).

The record (``shop_fetches``): each URL's last status, ETag and Last-Modified, and what was read from it (links,
products, the image file). The next request for a URL is conditional (If-None-Match / If-Modified-Since): a 304 reuses
what was read, so an unchanged page or image is not downloaded again. The frontier (``shop_crawl_urls``: each URL
pending or done, in discovery order) is committed with every URL, so a crawl killed at any point is picked up by the
next crawl of the same shop, which fetches only the URLs still pending. A file lock per shop keeps two crawls of one
shop from running at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workbench import __version__
from workbench.auth import Actor, require
from workbench.data.shop.fetch import Fetcher, Response
from workbench.data.shop.parse import (ShopProduct, looks_like_page, normalise_url, origin_of, parse_page,
                                       parse_robots, parse_sitemap)
from workbench.data.shop.tables import Shop, ShopCrawl, ShopCrawlUrl, ShopFetch
from workbench.db import session_scope, utcnow
from workbench.files import write_bytes_atomic
from workbench.settings import Settings, get_settings

USER_AGENT = f"BrandWorkbench/{__version__} (Brand Workbench shop import; obeys robots.txt)"
ROBOTS_AGENT = "BrandWorkbench"
MAX_SITEMAPS = 50
MAX_CRAWL_DELAY = 60.0
MAX_PROBLEMS = 2000  # listed per crawl; more are counted (counts["problems_not_listed"])
Progress = Callable[[int, "int | None", str], None]


class CrawlError(ValueError):
    """The crawl cannot start or go on (bad URL or options, robots.txt unreadable, a crawl of the shop running)."""


@dataclass
class CrawlOptions:
    """How politely and how far to crawl; ``check()`` names a bad value. Unknown keys in ``from_dict`` are errors."""

    max_pages: int = 500          # HTML pages per crawl (robots.txt, sitemaps and images are not counted)
    rate: float = 1.0             # requests per second, at most (robots.txt Crawl-delay can slow it further)
    timeout: float = 15.0         # seconds per request (connect and each read)
    retries: int = 2              # on connection errors, 429 and 5xx, with exponential back-off
    max_page_bytes: int = 5_000_000
    max_image_bytes: int = 25_000_000
    allow_hosts: list[str] = field(default_factory=list)  # other hosts images may come from (the shop's CDN)
    render_js: bool = False       # render pages in headless Chromium (Playwright) for JavaScript-only shops
    user_agent: str = USER_AGENT
    # Hosts that resolve to loopback, private, link-local or reserved addresses are refused unless this is on (the
    # CLI's --allow-private, tests and bench on 127.0.0.1): a page or a user must not make the server fetch its own
    # network (a cloud metadata address, an admin port).
    allow_private: bool = False

    def check(self) -> CrawlOptions:
        if not (isinstance(self.max_pages, int) and 1 <= self.max_pages <= 1_000_000):
            raise CrawlError(f"max_pages must be a whole number from 1 to 1,000,000, got {self.max_pages!r}")
        if not (isinstance(self.rate, (int, float)) and 0 < self.rate <= 1000):
            raise CrawlError(f"rate must be above 0 and at most 1000 requests per second, got {self.rate!r}")
        if not (isinstance(self.timeout, (int, float)) and 0 < self.timeout <= 300):
            raise CrawlError(f"timeout must be above 0 and at most 300 seconds, got {self.timeout!r}")
        if not (isinstance(self.retries, int) and 0 <= self.retries <= 10):
            raise CrawlError(f"retries must be from 0 to 10, got {self.retries!r}")
        if not self.user_agent.strip():
            raise CrawlError("user_agent must not be empty: a shop should see who is crawling it")
        self.allow_hosts = [h.strip().lower() for h in self.allow_hosts if h and h.strip()]
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CrawlOptions:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise CrawlError(f"unknown crawl option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**d).check()


@dataclass
class Problem:
    url: str
    reason: str

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


@dataclass
class ImageFile:
    url: str
    sha256: str
    path: Path


@dataclass
class CrawlResult:
    shop_id: int
    crawl_id: int
    origin: str
    status: str                   # crawled | stopped
    resumed: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    products: list[ShopProduct] = field(default_factory=list)
    images: dict[str, ImageFile] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        lines = [f"crawl {self.crawl_id} of {self.origin}{' (resumed)' if self.resumed else ''}: {self.status}; "
                 f"{c.get('requests', 0)} requests, {c.get('downloaded', 0)} downloaded, "
                 f"{c.get('not_modified', 0)} not modified; {c.get('pages', 0)} pages, {c.get('images', 0)} images, "
                 f"{len(self.products)} products in {self.seconds:.1f} s"]
        extra = [f"{c[k]} {label}" for k, label in (("disallowed", "disallowed by robots.txt (not requested)"),
                                                     ("offsite", "on other sites (not requested)"),
                                                     ("over_budget", "over the page limit (not requested)"))
                 if c.get(k)]
        if extra:
            lines.append("; ".join(extra))
        lines.extend(f"problem {p}" for p in self.problems)
        return "\n".join(lines)


def url_key(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest()


# -- the crawl -------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _shop_lock(path: Path, origin: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CrawlError(f"a crawl of {origin} is already running; wait for it (it resumes, it does not "
                             "start over)") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shop_dir(shop_id: int, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("shops", str(shop_id))


def get_or_create_shop(s: Session, start: str, who: str, dataset_name: str, options: CrawlOptions) -> Shop:
    origin = origin_of(start)
    shop = s.scalar(select(Shop).where(Shop.origin == origin))
    now = utcnow()
    if shop is None:
        shop = Shop(origin=origin, start_url=start, dataset_name=dataset_name, options=options.as_dict(),
                    created_by=who, created_at=now, updated_at=now)
        s.add(shop)
        s.flush()
    else:
        shop.start_url, shop.options, shop.updated_at = start, options.as_dict(), now
        if dataset_name:
            shop.dataset_name = dataset_name
    return shop


def _enqueue(s: Session, crawl_id: int, urls: list[tuple[str, str]]) -> None:
    """Add (url, kind) pairs to the frontier, skipping those it already has (unique per crawl)."""
    if not urls:
        return
    keys = {url_key(u): (u, k) for u, k in urls}
    wanted = list(keys)
    have: set[str] = set()
    for i in range(0, len(wanted), 500):  # a sitemap may name 50,000 URLs: keep each IN (...) small
        have.update(s.scalars(select(ShopCrawlUrl.url_key).where(ShopCrawlUrl.crawl_id == crawl_id,
                                                                  ShopCrawlUrl.url_key.in_(wanted[i:i + 500]))))
    for key, (u, kind) in keys.items():
        if key not in have:
            s.add(ShopCrawlUrl(crawl_id=crawl_id, url=u, url_key=key, kind=kind, state="pending"))
            have.add(key)


def _record(s: Session, shop_id: int, url: str, kind: str) -> ShopFetch:
    row = s.scalar(select(ShopFetch).where(ShopFetch.shop_id == shop_id, ShopFetch.url_key == url_key(url)))
    if row is None:
        row = ShopFetch(shop_id=shop_id, url=url, url_key=url_key(url), kind=kind, links=[], products=[])
        s.add(row)
    return row


class _Crawl:
    """The state of one crawl while it runs (see ``crawl_shop``)."""

    def __init__(self, shop_id: int, crawl_id: int, origin: str, options: CrawlOptions, settings: Settings,
                 transport: Any = None):
        self.shop_id, self.crawl_id, self.origin = shop_id, crawl_id, origin
        self.options, self.settings = options, settings
        self.files = shop_dir(shop_id, settings) / "files"
        self.robots = None
        self.fetcher = Fetcher(options, self.why_not, transport, origin)

    def why_not(self, url: str, kind: str = "page") -> str:
        """"" when ``url`` may be requested, else the reason (another site, robots.txt)."""
        host = (urlsplit(url).hostname or "").lower()
        if origin_of(url) != self.origin and not (kind == "image" and host in self.options.allow_hosts):
            return "offsite"
        if self.robots is not None and origin_of(url) == self.origin and \
                not self.robots.can_fetch(url, ROBOTS_AGENT):
            return "disallowed"
        return ""

    def conditional(self, row: ShopFetch) -> dict[str, str]:
        """If-None-Match/If-Modified-Since values, only when what the last 200 gave is still at hand."""
        if row.status not in (200, 304):
            return {}
        if row.kind == "image" and not (row.file and (self.files / row.file).is_file()) and not row.error:
            return {}  # the file is gone: download it again
        return {"etag": row.etag or "", "last_modified": row.last_modified or ""}

    def read_robots(self) -> None:
        url = f"{self.origin}/robots.txt"
        refused = self.fetcher.private(url)
        if refused:
            raise CrawlError(f"{self.origin}: {refused}")
        with session_scope(self.settings) as s:
            row = _record(s, self.shop_id, url, "robots")
            cond = self.conditional(row)
            stored = row.links[0] if row.links and cond else None
        r = self.fetcher.get(url, max_bytes=500_000, accept="text/plain", kind="robots", **cond)
        with session_scope(self.settings) as s:
            row = _record(s, self.shop_id, url, "robots")
            self._bump(s, requests=r.requests)
            if r.status == 304 and stored is not None:
                text = stored
                self._bump(s, not_modified=1)
            elif r.status == 200:
                text = r.body.decode("utf-8", errors="replace")
                self._stored(row, r)
                row.links = [text]
                self._bump(s, downloaded=1)
            elif 400 <= r.status < 500:
                text = ""  # no robots.txt: everything is allowed
                row.status, row.links, row.checked_at = r.status, [], utcnow()
            else:
                raise CrawlError(f"{url}: {r.error or f'HTTP {r.status}'}; a shop whose robots.txt cannot be read "
                                 "is not crawled (try again later)")
            row.status, row.checked_at = r.status, utcnow()
        self.robots = parse_robots(text)
        delay = self.robots.crawl_delay(ROBOTS_AGENT)
        if delay:  # honoured up to a minute per request (a larger one would stall the crawl for days)
            self.fetcher.delay = max(self.fetcher.delay, min(float(delay), MAX_CRAWL_DELAY))

    def seed(self, start: str) -> None:
        sitemaps = [u for u in (normalise_url(x, self.origin + "/") for x in self.robots.sitemaps) if u] \
            if self.robots is not None else []
        with session_scope(self.settings) as s:
            _enqueue(s, self.crawl_id, [(u, "sitemap") for u in sitemaps or [f"{self.origin}/sitemap.xml"]]
                     + [(start, "page")])

    def _stored(self, row: ShopFetch, r: Response) -> None:
        row.etag = (r.headers.get("etag") or "")[:500]
        row.last_modified = (r.headers.get("last-modified") or "")[:100]
        row.content_type = (r.headers.get("content-type") or "")[:200]
        row.size = len(r.body)
        row.sha256 = hashlib.sha256(r.body).hexdigest()
        row.downloads = (row.downloads or 0) + 1
        row.fetched_at = utcnow()
        row.error = ""

    def _bump(self, s: Session, **counts: int) -> None:
        crawl = s.get(ShopCrawl, self.crawl_id)
        c = dict(crawl.counts or {})
        for k, v in counts.items():
            c[k] = c.get(k, 0) + v
        crawl.counts = c

    def _problem(self, s: Session, url: str, reason: str) -> None:
        crawl = s.get(ShopCrawl, self.crawl_id)
        if len(crawl.problems or []) >= MAX_PROBLEMS:  # a broken shop: count the rest
            self._bump(s, problems_not_listed=1)
            return
        crawl.problems = [*(crawl.problems or []), {"url": url, "reason": reason[:500]}]

    def pages_used(self) -> int:
        with session_scope(self.settings) as s:
            return s.scalar(select(func.count()).select_from(ShopCrawlUrl).where(
                ShopCrawlUrl.crawl_id == self.crawl_id, ShopCrawlUrl.kind == "page",
                ShopCrawlUrl.state.in_(("done", "failed")))) or 0

    def next_pending(self) -> tuple[int, str, str, dict[str, str]] | None:
        """The next frontier URL (id, url, kind) and the conditional-request values its record allows."""
        with session_scope(self.settings) as s:
            row = s.execute(select(ShopCrawlUrl.id, ShopCrawlUrl.url, ShopCrawlUrl.kind).where(
                ShopCrawlUrl.crawl_id == self.crawl_id, ShopCrawlUrl.state == "pending")
                .order_by(ShopCrawlUrl.id).limit(1)).first()
            if row is None:
                return None
            fetched = s.scalar(select(ShopFetch).where(ShopFetch.shop_id == self.shop_id,
                                                       ShopFetch.url_key == url_key(row.url)))
            return row.id, row.url, row.kind, self.conditional(fetched) if fetched is not None else {}

    def visit(self, qid: int, url: str, kind: str, cond: dict[str, str], pages_used: int) -> bool:
        """Handle one frontier URL and commit its outcome; True when it was an HTML page request (budget)."""
        why = self.why_not(url, kind)
        if not why and kind == "page" and pages_used >= self.options.max_pages:
            why = "over_budget"
        if why:
            with session_scope(self.settings) as s:
                s.execute(update(ShopCrawlUrl).where(ShopCrawlUrl.id == qid).values(state=why))
                self._bump(s, **{why: 1})
            return False
        if kind == "page" and self.options.render_js:
            r = self.fetcher.render(url)
        else:
            limit = self.options.max_image_bytes if kind == "image" else self.options.max_page_bytes
            accept = {"image": "image/*", "sitemap": "application/xml, text/xml, */*"}.get(
                kind, "text/html, application/xhtml+xml, */*;q=0.5")
            r = self.fetcher.get(url, max_bytes=limit, accept=accept, kind=kind, **cond)
        with session_scope(self.settings) as s:
            row = _record(s, self.shop_id, url, kind)
            row.kind = kind
            self._bump(s, requests=r.requests)
            state, new = "done", []
            if r.error or r.status not in (200, 304):
                reason = r.error or f"HTTP {r.status}"
                row.status, row.error, row.checked_at = r.status, reason, utcnow()
                if not (kind == "sitemap" and r.status in (404, 410) and url == f"{self.origin}/sitemap.xml"):
                    self._problem(s, url, reason)  # (a shop without a sitemap at the usual place is no problem)
                    self._bump(s, failed=1)
                state = "failed"
            elif r.status == 304 and cond:
                row.status, row.checked_at = 304, utcnow()
                self._bump(s, not_modified=1)
                if row.error:  # unchanged, and still unusable (not an image, product data that does not parse)
                    self._problem(s, url, row.error)
                if kind == "image" and not row.file:
                    self._bump(s, failed=1)
                    state = "failed"
                else:
                    self._bump(s, **{f"{kind}s": 1})
                    new = self._follow(row, kind)
            else:
                reason = self._read(row, r, kind)
                if reason and kind == "image":
                    row.error = reason
                    self._problem(s, url, reason)
                    self._bump(s, failed=1)
                    state = "failed"
                else:
                    self._bump(s, downloaded=1, **{f"{kind}s": 1})
                    new = self._follow(row, kind)
                    if row.error:
                        self._problem(s, url, row.error)
                row.status, row.checked_at = 200, utcnow()
            _enqueue(s, self.crawl_id, new)
            s.execute(update(ShopCrawlUrl).where(ShopCrawlUrl.id == qid).values(state=state))
        return kind == "page"

    def _read(self, row: ShopFetch, r: Response, kind: str) -> str:
        """Store what a 200 response holds; returns why an image is unusable ("" when fine)."""
        self._stored(row, r)
        ctype = row.content_type.split(";")[0].strip().lower()
        row.links, row.products = [], []
        if kind == "image":
            fmt = _image_format(r.body)
            if fmt is None:
                row.file = ""
                return f"not an image (Content-Type {ctype or 'missing'}, {len(r.body):,} bytes)"
            name = f"{row.sha256}.{fmt}"
            if not (self.files / name).exists():
                write_bytes_atomic(self.files / name, r.body)
            row.file = name
            return ""
        if kind == "sitemap":
            pages, nested, error = parse_sitemap(r.body, r.url)
            row.links = [["sitemap", u] for u in nested[:MAX_SITEMAPS]] + [["page", u] for u in pages]
            row.error = f"sitemap {error}" if error else ""
            return ""
        if ctype and "html" not in ctype and "xml" not in ctype:
            row.error = f"not an HTML page (Content-Type {ctype})"
            return ""
        page = parse_page(r.body, r.url)
        row.links = [["page", u] for u in page.links]
        row.products = [p.as_dict() for p in page.products]
        row.error = f"product data does not parse: {page.error}" if page.error else ""
        return ""

    def _follow(self, row: ShopFetch, kind: str) -> list[tuple[str, str]]:
        """The URLs a fetched record leads to: its links (same-site pages, nested sitemaps) and product images."""
        out: list[tuple[str, str]] = []
        for entry in row.links or []:
            k, u = entry if isinstance(entry, list) else ("page", entry)
            if k == "sitemap" or looks_like_page(u):
                out.append((u, k))
        for p in row.products or []:
            out.extend((u, "image") for u in p.get("images", []))
        return out

    def run(self, progress: Progress | None, should_stop: Callable[[], bool] | None) -> str:
        used = self.pages_used()
        done = 0
        while True:
            nxt = self.next_pending()
            if nxt is None:
                return "crawled"
            if should_stop and should_stop():
                return "stopped"
            qid, url, kind, cond = nxt
            if self.visit(qid, url, kind, cond, used):
                used += 1
            done += 1
            if progress:
                progress(done, None, f"{kind} {url}")


def _image_format(data: bytes) -> str | None:
    """The file extension of an image Pillow can open (it checks the header and the structure), else None."""
    from PIL import Image, UnidentifiedImageError

    from workbench.data.images import FORMAT_EXT

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return FORMAT_EXT.get(fmt or "")


def crawl_shop(actor: Actor, url: str, *, dataset: str = "", options: CrawlOptions | None = None,
               progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
               job_id: int | None = None, transport: Any = None, settings: Settings | None = None) -> CrawlResult:
    """Crawl the shop at ``url`` (see the module docstring); resumes the shop's unfinished crawl when there is one.
    Needs ``datasets``. Returns the products of every product page the crawl visited, the downloaded images and the
    problems; the crawl is left ``crawled`` (the import marks it done) or ``stopped``. ``transport``: a requests
    adapter mounted for the shop's origin (``localserver.folder_adapter``: the demo shop's shipped files)."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    options = (options or CrawlOptions()).check()
    start = normalise_url(url)
    if start is None:
        raise CrawlError(f"{url!r} is not an http(s) URL")
    started = time.monotonic()
    with session_scope(settings) as s:
        shop = get_or_create_shop(s, start, who.username, dataset, options)
        shop_id, origin = shop.id, shop.origin
    with _shop_lock(shop_dir(shop_id, settings) / "crawl.lock", origin):
        with session_scope(settings) as s:
            crawl = s.scalar(select(ShopCrawl).where(ShopCrawl.shop_id == shop_id, ShopCrawl.status != "done")
                             .order_by(ShopCrawl.id.desc()).limit(1))
            resumed = crawl is not None
            if crawl is None:
                crawl = ShopCrawl(shop_id=shop_id, status="running", dataset_name=dataset or shop.dataset_name,
                                  options=options.as_dict(), counts={}, problems=[], report={},
                                  created_by=who.username, job_id=job_id, started_at=utcnow())
                s.add(crawl)
                s.flush()
            else:
                crawl.resumed, crawl.status = (crawl.resumed or 0) + 1, "running"
                crawl.job_id = job_id or crawl.job_id
                if dataset:
                    crawl.dataset_name = dataset
            crawl_id = crawl.id
        c = _Crawl(shop_id, crawl_id, origin, options, settings, transport)
        try:
            c.read_robots()
            if not resumed:
                c.seed(start)
            status = c.run(progress, should_stop)
        except CrawlError as exc:
            _finish(settings, crawl_id, "failed", str(exc))
            raise
        finally:
            c.fetcher.close()
        _finish(settings, crawl_id, status)
    result = crawl_result(crawl_id, settings)
    result.resumed, result.seconds = resumed, time.monotonic() - started
    return result


def _finish(settings: Settings, crawl_id: int, status: str, error: str = "") -> None:
    with session_scope(settings) as s:
        crawl = s.get(ShopCrawl, crawl_id)
        crawl.status = status
        if status != "crawled":
            crawl.finished_at = utcnow()
        if error:
            crawl.report = {**(crawl.report or {}), "error": error}


def crawl_result(crawl_id: int, settings: Settings | None = None) -> CrawlResult:
    """What crawl ``crawl_id`` found so far: products (one per SKU, first page wins, images united), the images
    downloaded or still current, problems and counts."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        crawl = s.get(ShopCrawl, crawl_id)
        if crawl is None:
            raise CrawlError(f"no crawl with id {crawl_id}")
        shop = s.get(Shop, crawl.shop_id)
        result = CrawlResult(shop.id, crawl.id, shop.origin, crawl.status, counts=dict(crawl.counts or {}),
                             problems=[Problem(p["url"], p["reason"]) for p in crawl.problems or []])
        rows = s.execute(select(ShopCrawlUrl.kind, ShopFetch).join(
            ShopFetch, (ShopFetch.shop_id == shop.id) & (ShopFetch.url_key == ShopCrawlUrl.url_key))
            .where(ShopCrawlUrl.crawl_id == crawl_id, ShopCrawlUrl.state == "done").order_by(ShopCrawlUrl.id)).all()
        files = shop_dir(shop.id, settings) / "files"
        by_sku: dict[str, ShopProduct] = {}
        for kind, row in rows:
            if kind == "image" and row.file:
                result.images[row.url] = ImageFile(row.url, row.sha256, files / row.file)
            elif kind == "page":
                for d in row.products or []:
                    p = ShopProduct.from_dict(d)
                    if p.sku in by_sku:
                        first = by_sku[p.sku]
                        first.images += [u for u in p.images if u not in first.images]
                    else:
                        by_sku[p.sku] = p
        result.products = list(by_sku.values())
    return result
