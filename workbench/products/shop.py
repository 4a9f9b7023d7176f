"""Shop import (issue #22 item 1): crawl a brand's online shop, import its product photos as dataset items and link
them to product records; as a job, and as a scheduled (daily) re-crawl per shop.

    from workbench.products.shop import import_shop, start_shop_crawl, set_schedule
    result = import_shop(actor, "https://shop.example/", dataset="shop")   # crawl + import, in this process
    print(result.summary())
    job_id = start_shop_crawl(actor, "https://shop.example/", dataset="shop", daily=True)   # the same, as a job

The crawl is ``workbench.data.shop.crawler`` (robots.txt, sitemaps, catalog links, schema.org Product data, the fetch
record that makes a re-run download only what changed, resuming a killed crawl). This module, a floor above the
datasets (which know nothing of products), turns what the crawl found into a dataset and products:

* the downloaded images of every product go through ``import_dataset`` as an imagefolder (``metadata.jsonl`` with the
  product's fields as attributes; the caption is the product's name and colour), so the usual checks, duplicate
  detection and flags apply, and an image already in the dataset is "already present";
* each product (sku, name, brand, colour, price and currency, page URL, category) is created or updated (values the
  shop no longer gives are kept; a value that fails the product checks is left out and named in the report), its
  attributes record the shop, the data source (json-ld | microdata) and every image URL;
* its images become its reference photos. An image two products share is stored once (one item) and linked to the
  first of them in SKU order: an item shows at most one product. The others keep its URL in ``image_urls`` and the
  report names the sharing.

Images are imported as the shop serves them (not padded): ``workbench data preprocess NAME --mode pad`` makes the
square-on-white copies the seed project trained on.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from workbench.auth import Actor, on_behalf_of, require, system_actor
from workbench.data.shop.crawler import (CrawlError, CrawlOptions, CrawlResult, crawl_shop, shop_dir)
from workbench.data.shop.parse import normalise_url, origin_of
from workbench.data.shop.tables import Shop, ShopCrawl
from workbench.data.tables import Dataset, Item
from workbench.db import Job, audit, session_scope, utcnow
from workbench.files import write_text_atomic
from workbench.products.fields import ProductError, check_sku
from workbench.products.importing import _checked
from workbench.products.records import _apply_source_values, _state
from workbench.products.tables import Product, ProductItem
from workbench.settings import Settings, get_settings

JOB_KIND = "shop_crawl"
DEMO_SHOP_ORIGIN = "https://shop.aurelo.example"
DEMO_SHOP_DIR = Path(__file__).resolve().parent.parent / "data" / "shop" / "demo_shop"
DEMO_SHOP_DATASET = "aurelo-shop"


@dataclass
class ShopImportResult:
    crawl: CrawlResult
    dataset_id: int | None = None
    dataset_name: str = ""
    import_summary: str = ""
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    linked: int = 0
    shared: list[str] = field(default_factory=list)     # "image URL: linked to A, also on B"
    problems: list[str] = field(default_factory=list)   # product field values not stored, photos of another product

    def summary(self) -> str:
        lines = [self.crawl.summary()]
        if self.import_summary:
            lines.append(self.import_summary)
        if self.crawl.status == "crawled" or self.created or self.updated:
            lines.append(f"products: {len(self.created)} created, {len(self.updated)} updated, {self.linked} "
                         "photo(s) linked")
        lines += [f"shared image {s}" for s in self.shared] + self.problems
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"crawl_id": self.crawl.crawl_id, "status": self.crawl.status, "counts": self.crawl.counts,
                "problems": [{"url": p.url, "reason": p.reason} for p in self.crawl.problems],
                "products": len(self.crawl.products), "dataset_id": self.dataset_id,
                "dataset_name": self.dataset_name, "created": self.created, "updated": self.updated,
                "linked": self.linked, "shared": self.shared, "notes": self.problems}


def _caption(p) -> str:
    parts = [p.name or p.sku]
    if p.colour and p.colour.lower() not in (p.name or "").lower():
        parts.append(p.colour)
    return ", ".join(parts)


def default_dataset_name(url: str) -> str:
    host = origin_of(url).split("://", 1)[-1]
    return f"shop-{host}"[:200]


def import_shop(actor: Actor, url: str, *, dataset: str = "", options: CrawlOptions | None = None,
                progress: Callable[[int, int | None, str], None] | None = None,
                should_stop: Callable[[], bool] | None = None, job_id: int | None = None, transport: Any = None,
                settings: Settings | None = None) -> ShopImportResult:
    """Crawl ``url`` (resuming the shop's unfinished crawl), then import what it found (module docstring). Needs
    ``datasets``. A stopped crawl imports nothing yet: the next run resumes it and imports everything."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    crawl = crawl_shop(who, url, dataset=dataset, options=options, progress=progress, should_stop=should_stop,
                       job_id=job_id, transport=transport, settings=settings)
    result = ShopImportResult(crawl)
    if crawl.status != "crawled":
        return result
    with session_scope(settings) as s:
        row = s.get(ShopCrawl, crawl.crawl_id)
        name = row.dataset_name or s.get(Shop, crawl.shop_id).dataset_name or default_dataset_name(url)
    result.dataset_name = name
    shas = _import_images(who, crawl, name, result, progress, settings)
    if result.dataset_id is not None or crawl.products:
        _upsert_products(who, crawl, shas, result, settings)
    with session_scope(settings) as s:
        row = s.get(ShopCrawl, crawl.crawl_id)
        row.status, row.finished_at, row.report = "done", utcnow(), result.as_dict()
        shop = s.get(Shop, crawl.shop_id)
        shop.dataset_name = name
    return result


def _import_images(who, crawl: CrawlResult, name: str, result: ShopImportResult, progress,
                   settings: Settings) -> dict[str, str]:
    """Import the crawl's product images into dataset ``name``; returns image URL -> sha256 of the ones at hand."""
    from workbench.data.importer import import_dataset

    staging = shop_dir(crawl.shop_id, settings) / f"import-{crawl.crawl_id}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "images").mkdir(parents=True)
    shas: dict[str, str] = {}
    owner: dict[str, str] = {}  # sha -> the SKU whose metadata line names the file
    lines = []
    try:
        for p in sorted(crawl.products, key=lambda p: p.sku):
            for url in p.images:
                img = crawl.images.get(url)
                if img is None or not img.path.is_file():
                    continue  # failed (reported by the crawl) or not fetched
                shas[url] = img.sha256
                if img.sha256 in owner:
                    if owner[img.sha256] != p.sku:
                        result.shared.append(f"{url}: linked to {owner[img.sha256]}, also on {p.sku}")
                    continue
                owner[img.sha256] = p.sku
                rel = f"images/{img.path.name}"
                try:
                    os.link(img.path, staging / rel)
                except OSError:
                    shutil.copyfile(img.path, staging / rel)
                lines.append({"file_name": rel, "text": _caption(p), "sku": p.sku, "name": p.name,
                              "brand": p.brand, "colour": p.colour, "category": p.category, "price": p.price,
                              "currency": p.currency, "url": p.url, "image_url": url})
        if not lines:
            return shas
        write_text_atomic(staging / "metadata.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
        report = import_dataset(who, staging, name=name, workers=1,
                                progress=(lambda d, t, m: progress(d, t, f"import: {m}")) if progress else None,
                                settings=settings)
        result.dataset_id, result.dataset_name = report.dataset_id, report.dataset_name
        result.import_summary = report.summary().replace(str(staging), f"{crawl.origin} (crawl {crawl.crawl_id})")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return shas


def _upsert_products(who, crawl: CrawlResult, shas: dict[str, str], result: ShopImportResult,
                     settings: Settings) -> None:
    """Create or update the crawl's products and link their photos, in one transaction (audited per product)."""
    with session_scope(settings) as s:
        item_of: dict[str, int] = {}
        if result.dataset_id is not None:
            item_of = dict(s.execute(select(Item.sha256, Item.id).where(Item.dataset_id == result.dataset_id)).all())
        skus = []
        for p in crawl.products:
            try:
                skus.append(check_sku(p.sku))
            except ProductError as exc:
                result.problems.append(f"{p.url}: {exc}; no product made")
                skus.append("")
        existing = {x.sku: x for x in s.scalars(select(Product).where(Product.sku.in_([k for k in skus if k])))}
        now = utcnow()
        for sku, p in sorted(zip(skus, crawl.products), key=lambda t: t[0]):
            if not sku:
                continue
            values = _checked(sku, {"name": p.name, "brand": p.brand, "colour": p.colour, "price": p.price,
                                    "currency": p.currency, "url": p.url, "category": p.category,
                                    "attributes": {"shop": crawl.origin, "data_source": p.source,
                                                   "image_urls": p.images}}, result.problems)
            row = existing.get(sku)
            if row is None:
                row = Product(sku=sku, created_by=who.username, updated_by=who.username, created_at=now,
                              updated_at=now, **{"attributes": {}, **values})
                s.add(row)
                s.flush()
                existing[sku] = row
                result.created.append(sku)
                audit(s, who.username, "product.create", "product", sku,
                      after={**_state(row), "from_shop": crawl.origin})
            elif _apply_source_values(s, who.username, row, values, now, {"from_shop": crawl.origin}):
                result.updated.append(sku)
            ids = [item_of[shas[u]] for u in p.images if u in shas and shas[u] in item_of]
            if not ids:
                continue
            links = dict(s.execute(select(ProductItem.item_id, ProductItem.product_id)
                                   .where(ProductItem.item_id.in_(ids))).all())
            for i in dict.fromkeys(ids):
                if i not in links:
                    s.add(ProductItem(item_id=i, product_id=row.id, role="reference", created_at=now))
                    s.flush()
                    result.linked += 1
                elif links[i] != row.id and not any(f"also on {sku}" in x for x in result.shared):
                    other = s.scalar(select(Product.sku).where(Product.id == links[i]))
                    result.problems.append(f"item {i} (an image of {sku}) is already a photo of {other}; left there")


# -- jobs and schedules ----------------------------------------------------------------------------------------------

def _check_url(url: str) -> str:
    start = normalise_url(url or "")
    if start is None:
        raise CrawlError(f"{url!r} is not an http(s) URL of a shop")
    return start


def start_shop_crawl(actor: Actor, url: str, *, dataset: str = "", options: CrawlOptions | None = None,
                     daily: bool | None = None, settings: Settings | None = None) -> int:
    """Queue a ``shop_crawl`` job (crawl + import) acting for ``actor``; ``daily=True`` also schedules a re-crawl
    every 24 h, ``False`` removes the schedule, None leaves it. Needs ``datasets``. Returns the job id."""
    from workbench import jobs

    who = require(actor, "datasets", settings=settings)
    start = _check_url(url)
    options = (options or CrawlOptions()).check()
    if daily is not None:
        set_schedule(who, start, 24 if daily else None, dataset=dataset, options=options, settings=settings)
    return jobs.enqueue(JOB_KIND, {"url": start, "dataset": dataset, "options": options.as_dict()},
                        title=f"shop import {origin_of(start)}", created_by=who.username, settings=settings)


def set_schedule(actor: Actor, url: str, hours: int | None, *, dataset: str = "", options: CrawlOptions | None = None,
                 settings: Settings | None = None) -> dt.datetime | None:
    """Re-crawl the shop of ``url`` every ``hours`` (24: daily; None: never) as a job acting for ``actor``; the first
    one ``hours`` from now. Returns when it is due. Needs ``datasets``."""
    who = require(actor, "datasets", settings=settings)
    start = _check_url(url)
    if hours is not None and not (isinstance(hours, int) and 1 <= hours <= 24 * 365):
        raise CrawlError(f"hours must be a whole number from 1 to 8760, got {hours!r}")
    options = (options or CrawlOptions()).check()
    from workbench.data.shop.crawler import get_or_create_shop

    with session_scope(settings) as s:
        shop = get_or_create_shop(s, start, who.username, dataset, options)
        shop.schedule_hours = hours
        shop.next_crawl_at = utcnow() + dt.timedelta(hours=hours) if hours else None
        shop.schedule_by = who.username if hours else ""
        audit(s, who.username, "shop.schedule", "shop", shop.origin, after={"hours": hours})
        return shop.next_crawl_at


def enqueue_due_crawls(settings: Settings | None = None, now: dt.datetime | None = None) -> list[int]:
    """Queue a ``shop_crawl`` job for every shop whose re-crawl is due, and move its next time on by its period.
    Called by every job consumer periodically (``workbench.jobs.store.PERIODIC``). A shop whose crawl job is queued
    or running is skipped; with several consumers, the conditional update lets only one of them queue it."""
    from workbench import jobs

    settings = settings or get_settings()
    now = now or utcnow()
    queued = []
    with session_scope(settings) as s:
        due = list(s.execute(select(Shop.id, Shop.origin, Shop.start_url, Shop.dataset_name, Shop.options,
                                    Shop.schedule_hours, Shop.next_crawl_at, Shop.schedule_by)
                             .where(Shop.schedule_hours.is_not(None), Shop.next_crawl_at <= now)))
        active = {origin_of(str((j.config or {}).get("url", ""))) for j in s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.status.in_(("queued", "running"))))}
    for shop_id, origin, start, dataset, options, hours, due_at, by in due:
        with session_scope(settings) as s:
            moved = s.execute(update(Shop).where(Shop.id == shop_id, Shop.next_crawl_at == due_at)
                              .values(next_crawl_at=now + dt.timedelta(hours=hours))).rowcount
        if not moved or origin in active:
            continue
        queued.append(jobs.enqueue(JOB_KIND, {"url": start, "dataset": dataset, "options": options or {},
                                              "scheduled": True},
                                   title=f"scheduled shop import {origin}", created_by=by or "scheduler",
                                   settings=settings))
    return queued


def crawl_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``shop_crawl``): crawl + import for the user who queued it (or set the schedule)."""
    cfg = ctx.config
    actor = on_behalf_of(ctx.created_by or "scheduler", "datasets")
    ctx.log(f"crawling {cfg['url']} (options {cfg.get('options') or 'default'})")
    result = import_shop(actor, cfg["url"], dataset=cfg.get("dataset", ""),
                         options=CrawlOptions.from_dict(cfg.get("options")),
                         progress=lambda d, t, m: ctx.progress(d, t, m), should_stop=ctx.should_stop,
                         job_id=ctx.job_id)
    ctx.log(result.summary())
    if result.crawl.status == "stopped":
        ctx.check_stop()
    return result.as_dict()


# -- reading -------------------------------------------------------------------------------------------------------

@dataclass
class ShopInfo:
    origin: str
    start_url: str
    dataset_name: str
    schedule_hours: int | None
    next_crawl_at: dt.datetime | None
    last_status: str = ""
    last_counts: dict[str, Any] = field(default_factory=dict)
    last_problems: list[dict[str, str]] = field(default_factory=list)
    last_finished_at: dt.datetime | None = None
    crawls: int = 0


def list_shops(settings: Settings | None = None) -> list[ShopInfo]:
    """Every shop with its schedule and its latest crawl (status, counts, problems)."""
    out = []
    with session_scope(settings) as s:
        for shop in s.scalars(select(Shop).order_by(Shop.origin)):
            crawls = list(s.scalars(select(ShopCrawl).where(ShopCrawl.shop_id == shop.id)
                                    .order_by(ShopCrawl.id.desc()).limit(1)))
            info = ShopInfo(shop.origin, shop.start_url, shop.dataset_name, shop.schedule_hours, shop.next_crawl_at,
                            crawls=s.scalar(select(func.count()).select_from(ShopCrawl)
                                            .where(ShopCrawl.shop_id == shop.id)) or 0)
            if crawls:
                c = crawls[0]
                info.last_status, info.last_counts = c.status, dict(c.counts or {})
                info.last_problems, info.last_finished_at = list(c.problems or []), c.finished_at
            out.append(info)
    return out


# -- the demo ------------------------------------------------------------------------------------------------------

def build_demo_shop(settings: Settings | None = None) -> dict[str, Any]:
    """The demo workspace's crawled mini shop: the shipped AURELO shop (``data/shop/demo_shop``, made by
    scripts/make_demo_shop.py) crawled under its own URL through a file-backed transport (no socket, no network),
    imported as dataset ``aurelo-shop``."""
    from workbench.data.shop.localserver import folder_adapter

    started = time.monotonic()
    result = import_shop(system_actor("demo", role="marketer"), DEMO_SHOP_ORIGIN + "/", dataset=DEMO_SHOP_DATASET,
                         options=CrawlOptions(rate=1000), transport=folder_adapter(DEMO_SHOP_DIR),
                         settings=settings)
    return {"dataset_id": result.dataset_id, "products": len(result.crawl.products),
            "problems": len(result.crawl.problems), "seconds": round(time.monotonic() - started, 2)}


def dataset_of_shop(url: str, settings: Settings | None = None) -> int | None:
    """The id of the dataset the shop of ``url`` imports into, if it exists."""
    with session_scope(settings) as s:
        name = s.scalar(select(Shop.dataset_name).where(Shop.origin == origin_of(url)))
        return s.scalar(select(Dataset.id).where(Dataset.name == name)) if name else None


def stop_shop_crawl(actor: Actor, job_id: int):
    """Ask a ``shop_crawl`` job to stop (it stops between two URLs; the next crawl of the shop resumes it)."""
    from workbench import jobs

    require(actor, "datasets")
    if jobs.get_job(job_id).kind != JOB_KIND:
        raise CrawlError(f"job {job_id} is not a shop import")
    return jobs.request_stop(job_id)
