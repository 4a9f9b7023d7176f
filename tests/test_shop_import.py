"""Shop import (issue #22 item 1): a crawl of the mini AURELO shop (workbench/data/shop/demo_shop, copied per test and
served on 127.0.0.1 by http.server in a thread) with robots.txt disallowing /private/, a sitemap, three catalog pages
joined by next links, JSON-LD product pages, one microdata page, one page with broken JSON-LD, a missing image, a file
that is not an image, and two products sharing one image."""
import datetime as dt
import json
import os
import shutil
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from helpers.review import as_role
from workbench import jobs
from workbench.auth import PermissionDenied
from workbench.data.shop.crawler import CrawlError, CrawlOptions
from workbench.data.shop.localserver import serve_folder
from workbench.data.shop.parse import parse_page, parse_sitemap
from workbench.data.store import ItemFilter, query_items
from workbench.products import get_product
from workbench.products.shop import DEMO_SHOP_DIR, enqueue_due_crawls, import_shop, list_shops, start_shop_crawl

# the politeness delay made tiny, so the file runs in seconds; the shop is on 127.0.0.1
FAST = CrawlOptions(rate=1000, allow_private=True)
PUBLIC = {  # sku -> (name, colour, price, images linked to it)
    "AUR-S101": ("AURELO navy wool jacket", "Navy Blue", "149", 2),
    "AUR-S102": ("AURELO red t-shirt", "Red", "29", 1),     # its second image is a 404
    "AUR-S103": ("AURELO olive hoodie", "Olive", "69", 2),  # owns the image it shares with AUR-S104
    "AUR-S104": ("AURELO black trousers", "Black", "79", 1),
    "AUR-S105": ("AURELO mustard dress", "Mustard", "99", 1),   # microdata only
    "AUR-S107": ("AURELO pink cap", "Pink", "25", 1),       # named only by the sitemap; its swatch is not an image
}


@pytest.fixture
def shop(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(DEMO_SHOP_DIR, root)
    with serve_folder(root) as served:
        yield served


def _mia():
    return as_role("marketer")


def test_crawl_imports_public_products_obeys_robots_reports_failures_and_rerun_downloads_nothing(shop):
    result = import_shop(_mia(), shop.url, dataset="aurelo-shop", options=FAST)
    base = shop.url.rstrip("/")

    # every public product, with its fields, its page URL and its images
    assert sorted(p.sku for p in result.crawl.products) == sorted(PUBLIC)
    for sku, (name, colour, price, n_images) in PUBLIC.items():
        p = get_product(sku)
        assert (p.name, p.brand, p.colour, p.price, p.currency) == (name, "AURELO", colour, Decimal(price), "EUR")
        assert p.url == f"{base}/p/{sku.lower()}.html"
        assert len(p.item_ids) == n_images, sku
        assert all(path.is_file() for path in p.images)
    assert get_product("AUR-S105").attributes["data_source"] == "microdata"
    # the shared image: downloaded once, stored once, a photo of the first SKU, named by both
    shared = f"{base}/img/duo-look.jpg"
    assert shop.paths().count("/img/duo-look.jpg") == 1
    assert shared in get_product("AUR-S103").attributes["image_urls"]
    assert shared in get_product("AUR-S104").attributes["image_urls"]
    assert any("duo-look.jpg: linked to AUR-S103, also on AUR-S104" in s for s in result.shared)
    page = query_items(result.dataset_id, ItemFilter(), per_page=50)
    assert page.total == 8
    by_url = {i.attributes["image_url"]: i for i in page.items}
    assert by_url[f"{base}/img/s101-front.jpg"].caption == "AURELO navy wool jacket, Navy Blue"
    assert by_url[f"{base}/img/s101-front.jpg"].attributes["sku"] == "AUR-S101"

    # robots.txt obeyed: the disallowed path (linked from a catalog page, a footer and the sitemap) never requested
    assert not [p for p in shop.paths() if p.startswith("/private/")]
    assert result.crawl.counts["disallowed"] == 2 and result.crawl.counts["offsite"] == 2
    # the three catalog pages were reached through their next links
    assert {"/catalog/page-1.html", "/catalog/page-2.html", "/catalog/page-3.html"} <= set(shop.paths(200))

    # failures reported with their URL and skipped; the crawl went on
    problems = {p.url: p.reason for p in result.crawl.problems}
    assert problems[f"{base}/p/aur-s106.html"].startswith("product data does not parse: JSON-LD")
    assert problems[f"{base}/img/s102-side.jpg"] == "HTTP 404"
    assert problems[f"{base}/img/s107-swatch.jpg"].startswith("not an image")
    assert len(problems) == 3
    with pytest.raises(Exception, match="no product"):
        get_product("AUR-S106")
    summary = result.summary()
    assert f"{base}/img/s102-side.jpg: HTTP 404" in summary and "6 created" in summary

    # a second run downloads no page or image again (conditional requests answered 304), and changes nothing
    first = len(shop.log)
    again = import_shop(_mia(), shop.url, dataset="aurelo-shop", options=FAST)
    second = shop.log[first:]
    assert [p for p, status in second if status == 200] == []
    assert {p for p, status in second if status == 304} >= {"/p/aur-s101.html", "/img/s101-front.jpg",
                                                            "/catalog/page-3.html", "/img/s107-swatch.jpg"}
    assert again.crawl.counts.get("downloaded", 0) == 0 and again.created == [] and again.updated == []
    assert len(again.crawl.problems) == 3  # still reported, from the record

    # a changed page is downloaded again, and only it; the product is updated
    page_file = shop.root / "p" / "aur-s101.html"
    page_file.write_text(page_file.read_text().replace('"149.00"', '"139.00"'))
    os.utime(page_file, (page_file.stat().st_mtime + 5,) * 2)
    first = len(shop.log)
    third = import_shop(_mia(), shop.url, dataset="aurelo-shop", options=FAST)
    assert [p for p, status in shop.log[first:] if status == 200] == ["/p/aur-s101.html"]
    assert third.updated == ["AUR-S101"] and get_product("AUR-S101").price == Decimal("139")
    assert [s.last_status for s in list_shops()] == ["done"] and list_shops()[0].crawls == 3


class Killed(BaseException):
    """What a kill looks like to the crawl: it stops between two URLs, without a chance to clean up."""


def test_a_killed_crawl_resumes_without_refetching_what_it_had(shop):
    seen = []

    def die_after_ten(done, total, message):
        seen.append(message)
        if done == 10:
            raise Killed

    with pytest.raises(Killed):
        import_shop(_mia(), shop.url, dataset="s", options=FAST, progress=die_after_ten)
    fetched_before = [p for p, status in shop.log if status == 200]
    assert 5 < len(fetched_before) < 20  # of the 23 a whole crawl downloads
    with pytest.raises(Exception, match="no product"):
        get_product("AUR-S101")  # nothing imported yet

    resumed = import_shop(_mia(), shop.url, dataset="s", options=FAST)
    assert resumed.crawl.resumed and resumed.crawl.crawl_id == 1
    downloads = [p for p, status in shop.log if status == 200]
    assert len(downloads) == len(set(downloads)), "a page or image was downloaded twice"
    assert sorted(p.sku for p in resumed.crawl.products) == sorted(PUBLIC)
    assert get_product("AUR-S101").item_ids and len(resumed.crawl.problems) == 3


def test_job_schedule_cli_and_options(shop, monkeypatch):
    mia = _mia()
    # a crawl job acting for the user who queued it, with a daily re-crawl
    job_id = start_shop_crawl(mia, shop.url, dataset="shop-job", options=FAST, daily=True)
    assert jobs.run_inline(job_id) == 0
    job = jobs.get_job(job_id)
    assert job.status == "done" and job.result["products"] == 6 and len(job.result["problems"]) == 3
    info = list_shops()[0]
    assert info.schedule_hours == 24 and info.dataset_name == "shop-job"
    assert dt.timedelta(hours=23) < info.next_crawl_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # not due yet: nothing queued; a day later: one job, and the next one moves on a day
    assert enqueue_due_crawls() == []
    later = info.next_crawl_at + dt.timedelta(minutes=1)
    queued = enqueue_due_crawls(now=later)
    assert len(queued) == 1 and jobs.get_job(queued[0]).kind == "shop_crawl"
    assert jobs.get_job(queued[0]).created_by == "mia" and jobs.get_job(queued[0]).config["scheduled"]
    assert enqueue_due_crawls(now=later) == []
    assert list_shops()[0].next_crawl_at == later + dt.timedelta(hours=24)
    # an approver may not import
    with pytest.raises(PermissionDenied):
        start_shop_crawl(as_role("approver"), shop.url)

    # the CLI: workbench data import-shop URL --dataset NAME (a re-run: everything not modified)
    from workbench.cli import app

    out = CliRunner().invoke(app, ["data", "import-shop", shop.url, "--dataset", "shop-job", "--rate", "1000",
                                   "--allow-private"])
    assert out.exit_code == 0, out.output
    assert "0 downloaded" in out.output and "problem" in out.output and "8 already present" in out.output
    bad = CliRunner().invoke(app, ["data", "import-shop", "ftp://x", "--rate", "0"])
    assert bad.exit_code == 2 and "rate must be above 0" in bad.output
    with pytest.raises(CrawlError, match="unknown crawl option"):
        CrawlOptions.from_dict({"max_page": 3})


def test_page_budget_and_product_data_forms():
    # a ProductGroup's variants become products; a listing's ItemList entries are links to follow
    group = {"@context": "https://schema.org", "@type": "ProductGroup", "name": "Tee", "brand": "AURELO",
             "image": "/t.jpg", "hasVariant": [
                 {"@type": "Product", "sku": "T-RED", "color": "Red", "offers": {"price": 10, "priceCurrency": "EUR"}},
                 {"@type": "Product", "sku": "T-BLUE", "color": "Blue",
                  "offers": [{"@type": "AggregateOffer", "lowPrice": "9.5", "priceCurrency": "USD"}]}]}
    listing = {"@type": "ItemList", "itemListElement": [{"@type": "Product", "name": "Cap", "url": "/p/cap"}]}
    html = (f'<html><head><base href="https://s.example/shop/"><script type="application/ld+json">'
            f'{json.dumps([group, listing])}</script></head><body><a href="p/2#top">x</a>'
            f'<a href="mailto:a@b">m</a></body></html>').encode()
    page = parse_page(html, "https://s.example/shop/p/1")
    assert [(p.sku, p.name, p.colour, p.price, p.currency, p.images) for p in page.products] == [
        ("T-RED", "Tee", "Red", "10", "EUR", ["https://s.example/t.jpg"]),
        ("T-BLUE", "Tee", "Blue", "9.5", "USD", ["https://s.example/t.jpg"])]
    assert page.links == ["https://s.example/shop/p/2", "https://s.example/p/cap"] and page.error == ""
    # a sitemap index; XML entities are not expanded
    index = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
             b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>https://s.example/'
             b'a.xml</loc></sitemap><sitemap><loc>&e;</loc></sitemap></sitemapindex>')
    pages, nested, error = parse_sitemap(index, "https://s.example/sitemap.xml")
    assert (pages, nested, error) == ([], ["https://s.example/a.xml"], "")


def test_max_pages_limits_the_crawl(shop):
    result = import_shop(_mia(), shop.url, dataset="s", options=CrawlOptions(rate=1000, max_pages=3,
                                                                             allow_private=True))
    html_requests = [p for p in shop.paths() if p.endswith(".html") or p == "/"]
    assert len(html_requests) == 3 and result.crawl.counts["over_budget"] > 0


def test_datasets_page_form_queues_a_crawl_job_and_lists_the_shop(shop, monkeypatch):
    from pathlib import Path

    from helpers.review import make_users, page_as
    from workbench import auth

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()
    page = str(Path(__file__).resolve().parent.parent / "pages" / "1_Datasets.py")
    at = page_as(page, timeout=60).run()
    assert not at.exception
    at.text_input(key="datasets_shop_url").input(shop.url)
    at.text_input(key="datasets_shop_dataset").input("from-the-page")
    at.number_input(key="datasets_shop_rate").set_value(10.0)
    at.checkbox(key="datasets_shop_daily").check()
    at.button(key="FormSubmitter:datasets_shop_form-Crawl and import").click().run()
    assert not at.exception, at.exception
    (job,) = jobs.list_jobs(kind="shop_crawl")
    assert job.created_by == "mia" and job.config["dataset"] == "from-the-page"
    assert job.config["options"]["rate"] == 10.0
    # the form cannot reach the server's own network: a shop on 127.0.0.1 is refused before any request
    assert jobs.run_inline(job.id) != 0 and shop.log == []
    failed = jobs.get_job(job.id)
    assert failed.status == "failed" and "resolves to 127.0.0.1, a private, loopback or reserved" in failed.error
    at.run()
    labels = [e.label.replace("\\", "") for e in at.expander]  # labels go through plain(): markdown escaped
    assert any("from-the-page" in label and "every 24 h" in label for label in labels), labels
