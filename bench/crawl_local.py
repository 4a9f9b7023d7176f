"""Shop import throughput against a local shop on 127.0.0.1 (no network): the crawl at the default rate limit, the
crawler's own cost with the limit lifted, and a re-run (conditional requests, nothing downloaded).

    nice python bench/crawl_local.py                    # the demo mini shop at the default rate (~30 s), + unthrottled
    nice python bench/crawl_local.py --products 300     # also a generated shop of 300 product pages, unthrottled

Shops: the shipped demo shop (workbench/data/shop/demo_shop: 23 requests: robots.txt, the sitemap, 11 pages, 10 image
URLs of which one is missing and one is not an image) and, with
``--products N``, a generated one: N product pages (JSON-LD, two 256-px JPEGs each) over catalog pages of 24 joined
by next links, plus a sitemap. Each crawl runs ``import_shop`` (crawl, then the dataset import and the product
records) in a fresh temporary workspace; timed: the crawl (requests/s, pages/s), the import, and a second run
(every URL answered 304). The default rate (1 request/s) bounds a polite crawl: the unthrottled figures show what
the crawler itself costs per URL (HTTP, parsing, one SQLite transaction per URL). Prints JSON and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_shop(root: Path, n_products: int) -> None:
    """A generated shop: N product pages with JSON-LD and two images each, catalog pages of 24, a sitemap."""
    from workbench.data.demo import COLOURS, draw_garment

    (root / "p").mkdir(parents=True)
    (root / "img").mkdir()
    (root / "catalog").mkdir()
    garments = ["t-shirt", "hoodie", "jacket", "trousers", "dress", "sneakers", "cap"]
    base = {(g, c): draw_garment(g, rgb, 256, rng=random.Random(0)) for g in garments for c, rgb in COLOURS[:4]}
    for i in range(n_products):
        g, (c, _) = garments[i % 7], COLOURS[(i // 7) % 4]
        for k in range(2):
            im = base[(g, c)].rotate(i % 11 + 7 * k, fillcolor=(255, 255, 255))
            im.save(root / "img" / f"{i}-{k}.jpg", quality=85)
        data = {"@context": "https://schema.org", "@type": "Product", "sku": f"GEN-{i:05d}", "name": f"{c} {g} {i}",
                "brand": "GEN", "color": c, "image": [f"/img/{i}-0.jpg", f"/img/{i}-1.jpg"],
                "offers": {"@type": "Offer", "price": f"{10 + i % 90}.00", "priceCurrency": "EUR"}}
        (root / "p" / f"{i}.html").write_text(f'<html><head><script type="application/ld+json">{json.dumps(data)}'
                                              f'</script></head><body><h1>{c} {g}</h1></body></html>')
    pages = (n_products + 23) // 24
    for n in range(pages):
        links = "".join(f'<a href="/p/{i}.html">{i}</a>' for i in range(n * 24, min(n_products, n * 24 + 24)))
        nxt = f'<a rel="next" href="/catalog/{n + 1}.html">next</a>' if n + 1 < pages else ""
        (root / "catalog" / f"{n}.html").write_text(f"<html><body>{links}{nxt}</body></html>")
    (root / "index.html").write_text('<html><body><a href="/catalog/0.html">shop</a></body></html>')
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (root / "sitemap.xml").write_text('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                                      '<url><loc>/catalog/0.html</loc></url></urlset>')


def crawl_once(folder: Path, rate: float | None) -> dict:
    """import_shop twice on ``folder`` served on 127.0.0.1, in a fresh workspace; the timings of both runs."""
    ws = tempfile.mkdtemp(prefix="bench-crawl-")
    os.environ["WORKBENCH_WORKSPACE"] = ws
    from workbench.auth import system_actor
    from workbench.data.shop.crawler import CrawlOptions
    from workbench.data.shop.localserver import serve_folder
    from workbench.db import dispose_engines, init_db
    from workbench.products.shop import import_shop
    from workbench.settings import reload_settings

    reload_settings()
    init_db()
    options = CrawlOptions(allow_private=True) if rate is None else CrawlOptions(rate=rate, allow_private=True)
    actor = system_actor("bench", role="marketer")
    out = {"rate": options.rate}
    try:
        with serve_folder(folder) as shop:
            for run in ("first", "second"):
                t = time.monotonic()
                result = import_shop(actor, shop.url, dataset="bench", options=options)
                total = time.monotonic() - t
                c = result.crawl.counts
                out[run] = {"seconds": round(total, 2), "crawl_seconds": round(result.crawl.seconds, 2),
                            "import_seconds": round(total - result.crawl.seconds, 2),
                            "requests": c.get("requests", 0), "downloaded": c.get("downloaded", 0),
                            "not_modified": c.get("not_modified", 0), "pages": c.get("pages", 0),
                            "images": c.get("images", 0), "products": len(result.crawl.products),
                            "requests_per_s": round(c.get("requests", 0) / result.crawl.seconds, 2),
                            "pages_per_min": round(60 * c.get("pages", 0) / result.crawl.seconds, 1)}
    finally:
        dispose_engines()
        shutil.rmtree(ws, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=0, help="also crawl a generated shop of N product pages")
    ap.add_argument("--skip-default-rate", action="store_true", help="only the unthrottled runs")
    args = ap.parse_args()
    from workbench.products.shop import DEMO_SHOP_DIR

    load_before = os.getloadavg()
    rows = []
    shops = [("demo shop", DEMO_SHOP_DIR)]
    tmp = None
    if args.products:
        tmp = Path(tempfile.mkdtemp(prefix="bench-shop-"))
        make_shop(tmp / "shop", args.products)
        shops.append((f"generated, {args.products} products", tmp / "shop"))
    try:
        for label, folder in shops:
            rates = [None, 1000.0] if label == "demo shop" and not args.skip_default_rate else [1000.0]
            for rate in rates:
                rows.append({"shop": label, **crawl_once(folder, rate)})
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "load_average_before": load_before, "load_average_after": os.getloadavg(), "runs": rows},
                     indent=1))
    print("\n| shop | rate limit | requests | crawl | requests/s | pages/min | import | re-run (all 304) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        f, s = r["first"], r["second"]
        limit = "default (1/s)" if r["rate"] == 1.0 else f"{r['rate']:g}/s (unthrottled)"
        print(f"| {r['shop']} | {limit} | {f['requests']} ({f['pages']} pages, {f['images']} images) | "
              f"{f['crawl_seconds']} s | {f['requests_per_s']} | {f['pages_per_min']} | {f['import_seconds']} s | "
              f"{s['seconds']} s, {s['downloaded']} downloaded |")


if __name__ == "__main__":
    main()
