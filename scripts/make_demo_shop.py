"""Write the demo mini shop shipped in ``workbench/data/shop/demo_shop/`` (run once; the files are committed).

    python scripts/make_demo_shop.py [OUT]      # default: workbench/data/shop/demo_shop

An invented AURELO shop that shows everything the shop import handles: robots.txt with a disallowed path and a
sitemap, three catalog pages joined by "next" links, product pages with JSON-LD (a Brand node, an Offer, an
@graph), one with microdata only, one with broken JSON-LD, a missing image (404), a file that is not an image, two
products sharing one image, a link to another site and one page only the sitemap names. The demo workspace and
tests/test_shop_import.py crawl it on 127.0.0.1 (``workbench.data.shop.localserver``).
"""
from __future__ import annotations

import html
import json
import random
import sys
from pathlib import Path

from PIL import Image

from workbench.data.demo import COLOURS, draw_garment

SIZE = 256
# sku -> (name, garment, colour name, price, page, images); page: catalog page number (0: only in the sitemap)
PRODUCTS = {
    "AUR-S101": ("AURELO navy wool jacket", "jacket", "Navy Blue", "149.00", 1, ["s101-front.jpg", "s101-back.jpg"]),
    "AUR-S102": ("AURELO red t-shirt", "t-shirt", "Red", "29.00", 1, ["s102.jpg", "s102-side.jpg"]),
    "AUR-S103": ("AURELO olive hoodie", "hoodie", "Olive", "69.00", 2, ["s103.jpg", "duo-look.jpg"]),
    "AUR-S104": ("AURELO black trousers", "trousers", "Black", "79.00", 2, ["s104.jpg", "duo-look.jpg"]),
    "AUR-S105": ("AURELO mustard dress", "dress", "Mustard", "99.00", 3, ["s105.jpg"]),
    "AUR-S106": ("AURELO teal sneakers", "sneakers", "Teal", "119.00", 3, ["s106.jpg"]),
    "AUR-S107": ("AURELO pink cap", "cap", "Pink", "25.00", 0, ["s107.jpg", "s107-swatch.jpg"]),
}
MISSING = {"s102-side.jpg"}       # named by its page, not on the server: a 404
NOT_IMAGE = {"s107-swatch.jpg"}   # served, but HTML, not an image
BROKEN = "AUR-S106"               # its JSON-LD does not parse (and it has no microdata)
MICRODATA = "AUR-S105"            # microdata only


def page(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'{head}</head>\n<body><header><a href="/">AURELO</a> · <a href="/catalog/page-1.html">Shop</a>'
            f'</header>\n{body}\n<footer><a href="https://elsewhere.example/">Our partner</a> · '
            f'<a href="/private/orders.html">My orders</a></footer></body></html>\n')


def product_page(sku: str) -> str:
    name, garment, colour, price, _, images = PRODUCTS[sku]
    imgs = "".join(f'<img src="/img/{i}" alt="{html.escape(name)}">' for i in images)
    data = {"@context": "https://schema.org", "@type": "Product", "sku": sku, "name": name,
            "brand": {"@type": "Brand", "name": "AURELO"}, "color": colour, "category": garment,
            "image": [f"/img/{i}" for i in images],
            "offers": {"@type": "Offer", "price": price, "priceCurrency": "EUR",
                       "availability": "https://schema.org/InStock"}}
    if sku == "AUR-S107":  # a @graph with a breadcrumb beside the product
        data = {"@context": "https://schema.org", "@graph": [
            {"@type": "BreadcrumbList", "itemListElement": [{"@type": "ListItem", "position": 1, "name": "Caps"}]},
            {k: v for k, v in data.items() if k != "@context"}]}
    if sku == MICRODATA:
        body = (f'<main itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">{html.escape(name)}</h1>'
                f'<meta itemprop="sku" content="{sku}"><span itemprop="brand" itemscope '
                f'itemtype="https://schema.org/Brand"><meta itemprop="name" content="AURELO"></span>'
                f'<p>Colour: <span itemprop="color">{colour}</span></p>'
                + "".join(f'<img itemprop="image" src="/img/{i}" alt="">' for i in images)
                + f'<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
                f'<span itemprop="price" content="{price}">€{price}</span>'
                f'<meta itemprop="priceCurrency" content="EUR"></div></main>')
        return page(name, body)
    text = json.dumps(data, indent=1)
    if sku == BROKEN:
        text = text.rstrip().rstrip("}") + ',\n "description": "Our best seller"\n'  # a cut-off block
    head = f'<script type="application/ld+json">\n{text}\n</script>'
    body = f"<main><h1>{html.escape(name)}</h1><p>{colour} · €{price}</p>{imgs}</main>"
    return page(name, body, head)


def catalog_page(n: int) -> str:
    items = "".join(f'<li><a href="/p/{sku.lower()}.html">{html.escape(v[0])}</a></li>'
                    for sku, v in PRODUCTS.items() if v[4] == n)
    nav = f'<a rel="next" href="page-{n + 1}.html">Next page</a>' if n < 3 else \
        '<a href="/private/p/aur-s900.html">Staff preview</a>'
    head = f'<link rel="next" href="page-{n + 1}.html">' if n < 3 else ""
    return page(f"Shop · page {n}", f"<main><ul>{items}</ul><nav>{nav}</nav></main>", head)


def write(out: Path) -> None:
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "p").mkdir(exist_ok=True)
    (out / "catalog").mkdir(exist_ok=True)
    (out / "private" / "p").mkdir(parents=True, exist_ok=True)
    rgb = dict(COLOURS)
    for sku, (name, garment, colour, _, _, images) in PRODUCTS.items():
        for i, img in enumerate(images):
            if img in MISSING:
                continue
            path = out / "img" / img
            if img in NOT_IMAGE:
                path.write_text("<!doctype html><p>Swatch coming soon</p>\n")
            elif img == "duo-look.jpg":  # the hoodie and the trousers photographed together
                a = draw_garment("hoodie", rgb["Olive"], SIZE, rng=random.Random(3))
                b = draw_garment("trousers", rgb["Black"], SIZE, rng=random.Random(4))
                both = Image.new("RGB", (SIZE * 2, SIZE), (255, 255, 255))
                both.paste(a, (0, 0))
                both.paste(b, (SIZE, 0))
                both.save(path, quality=85)
            else:
                im = draw_garment(garment, rgb[colour], SIZE, rng=random.Random(i))
                (im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i else im).save(path, quality=85)
        (out / "p" / f"{sku.lower()}.html").write_text(product_page(sku))
    for n in (1, 2, 3):
        (out / "catalog" / f"page-{n}.html").write_text(catalog_page(n))
    (out / "index.html").write_text(page("AURELO (demo shop)", '<main><p>The invented AURELO shop.</p>'
                                         '<a href="/catalog/page-1.html">Shop all</a></main>'))
    (out / "private" / "p" / "aur-s900.html").write_text(page("Staff only", "<main>not for crawlers</main>"))
    (out / "private" / "orders.html").write_text(page("Orders", "<main>sign in</main>"))
    (out / "robots.txt").write_text("# AURELO demo shop\nUser-agent: *\nDisallow: /private/\n\n"
                                    "Sitemap: /sitemap.xml\n")
    locs = ["/catalog/page-1.html", "/p/aur-s101.html", "/p/aur-s107.html", "/private/p/aur-s900.html",
            "https://elsewhere.example/p/x.html"]
    (out / "sitemap.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                                     '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                                     + "".join(f"  <url><loc>{u}</loc></url>\n" for u in locs) + "</urlset>\n")


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "workbench/data/shop/demo_shop"))
