"""The shop crawler (issue #22 item 1): ``crawler`` (robots.txt, sitemaps, catalog links, the fetch record and the
resumable frontier: ``crawl_shop``), ``parse`` (schema.org Product from JSON-LD, microdata as the fallback; links,
sitemaps, robots.txt), ``render`` (optional headless Chromium for JavaScript-only shops), ``localserver`` (a folder
served on 127.0.0.1 or as a requests transport: the demo shop, tests, bench), ``tables`` (migration 0014).
``demo_shop/`` is the invented AURELO mini shop the demo workspace crawls (scripts/make_demo_shop.py).

Importing what a crawl found as dataset items linked to products is ``workbench.products.shop`` (a floor above).
"""
