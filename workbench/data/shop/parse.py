"""Reading what a shop serves, without regular expressions over HTML: product data (schema.org ``Product`` from
JSON-LD, microdata as the fallback), the links of a page, sitemaps, robots.txt.

    page = parse_page(html_bytes, "https://shop.example/p/1.html")
    page.products          # [ShopProduct(sku, name, brand, colour, price, currency, url, images, ...)]
    page.links             # same-document links resolved against the page (and its <base href>)
    page.error             # "" or why the product data did not parse (a broken JSON-LD block, a Product without sku)

HTML goes through lxml's HTML parser; JSON-LD blocks are ``<script type="application/ld+json">`` elements found by
that parser and read with ``json``; microdata through extruct's ``MicrodataExtractor`` (lxml based, imported only
when a page has no usable JSON-LD). Sitemaps through lxml's XML parser with entities, DTDs and network access off;
robots.txt through Protego.
"""
from __future__ import annotations

import gzip
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

PRODUCT_TYPES = {"product", "productmodel", "individualproduct"}
GROUP_TYPES = {"productgroup"}
NOT_PAGES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".ico", ".css", ".js", ".pdf", ".zip",
             ".mp4", ".webm", ".woff", ".woff2", ".ttf", ".xml", ".gz", ".json", ".txt")
MAX_IMAGES = 20  # per product: a page listing more is cut (the rest are usually variants' swatches)
MAX_SITEMAP_URLS = 50_000  # the sitemap protocol's own limit per file


@dataclass
class ShopProduct:
    """One product as the shop describes it. ``source`` says where it was read from (json-ld | microdata)."""

    sku: str
    name: str = ""
    brand: str = ""
    colour: str = ""
    price: str = ""
    currency: str = ""
    url: str = ""
    category: str = ""
    images: list[str] = field(default_factory=list)
    source: str = "json-ld"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShopProduct:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class ParsedPage:
    products: list[ShopProduct] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    error: str = ""  # why product data on the page could not be used ("" when there was none or it parsed)


def normalise_url(url: str, base: str = "") -> str | None:
    """An absolute http(s) URL without its fragment, or None (mailto:, javascript:, data:, garbage)."""
    try:
        full = urljoin(base, url.strip()) if base else url.strip()
        full, _ = urldefrag(full)
        parts = urlsplit(full)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc.lower()}{path}{query}"


def origin_of(url: str) -> str:
    """scheme://host[:port] of ``url`` (lower case, default ports dropped): what "one site" means here."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def looks_like_page(url: str) -> bool:
    return not urlsplit(url).path.lower().endswith(NOT_PAGES)


# -- JSON-LD / microdata -> products ---------------------------------------------------------------------------------

def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("@type", node.get("type", []))
    values = t if isinstance(t, list) else [t]
    out = set()
    for v in values:
        if isinstance(v, str):
            out.add(v.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower())
    return out


def _text(value: Any) -> str:
    """A scalar property as text: the first of a list, the ``name`` of a node (Brand, Organization)."""
    if isinstance(value, list):
        value = next((v for v in value if v not in (None, "")), "")
    if isinstance(value, dict):
        value = value.get("name", value.get("@value", value.get("value", "")))
        if isinstance(value, (list, dict)):
            return _text(value)
    if value is None or isinstance(value, bool):
        return ""
    return " ".join(str(value).split())


def _images(value: Any, base: str) -> list[str]:
    out: list[str] = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dict):
            v = v.get("contentUrl") or v.get("url") or ""
            if isinstance(v, list):
                v = v[0] if v else ""
        if isinstance(v, str) and v.strip():
            url = normalise_url(v, base)
            if url and url not in out:
                out.append(url)
    return out[:MAX_IMAGES]


def _offer(value: Any) -> tuple[str, str]:
    """(price, currency) of the first offer that has a price: Offer, AggregateOffer (lowPrice), priceSpecification."""
    for offer in value if isinstance(value, list) else [value]:
        if not isinstance(offer, dict):
            continue
        spec = offer.get("priceSpecification")
        spec = spec[0] if isinstance(spec, list) and spec else spec
        spec = spec if isinstance(spec, dict) else {}
        price = _text(offer.get("price", offer.get("lowPrice", spec.get("price", ""))))
        currency = _text(offer.get("priceCurrency", spec.get("priceCurrency", "")))
        if price:
            return price, currency
    return "", ""


def _sku(node: dict[str, Any], page_url: str) -> str:
    for key in ("sku", "mpn", "productID", "gtin13", "gtin14", "gtin12", "gtin8", "gtin"):
        text = _text(node.get(key))
        if text:
            return text
    return ""


def product_from_node(node: dict[str, Any], page_url: str, source: str,
                      inherit: dict[str, Any] | None = None) -> ShopProduct | None:
    """A ShopProduct from one schema.org Product node (``inherit``: its ProductGroup's properties for a variant)."""
    merged = {**(inherit or {}), **node}
    name = _text(merged.get("name"))
    sku = _sku(node, page_url) or (_sku(inherit, page_url) if inherit and not inherit.get("hasVariant") else "")
    if not sku and not name:
        return None
    price, currency = _offer(merged.get("offers"))
    url = normalise_url(_text(merged.get("url")), page_url) if _text(merged.get("url")) else None
    return ShopProduct(sku=sku, name=name, brand=_text(merged.get("brand")),
                       colour=_text(merged.get("color", merged.get("colour"))), price=price, currency=currency,
                       url=url or normalise_url(page_url) or page_url, category=_text(merged.get("category")),
                       images=_images(merged.get("image", []), page_url), source=source)


def _walk(value: Any):
    """Every dict inside a JSON-LD value (lists, @graph, nested properties such as mainEntity)."""
    stack = [value]
    while stack:
        v = stack.pop(0)
        if isinstance(v, list):
            stack[:0] = v
        elif isinstance(v, dict):
            yield v
            stack.extend(x for k, x in v.items() if isinstance(x, (list, dict)) and k not in ("offers", "brand"))


def products_from_nodes(roots: list[Any], page_url: str, source: str) -> tuple[list[ShopProduct], list[str]]:
    """(products of this page, links to other products' pages) from parsed JSON-LD or microdata. A Product whose
    ``url`` points at another page (a listing's ItemList) is a link to follow, not a product of this page."""
    products: list[ShopProduct] = []
    links: list[str] = []
    here = normalise_url(page_url)
    seen_variants: set[int] = set()
    for node in _walk(roots):
        types = _types(node)
        if types & GROUP_TYPES and isinstance(node.get("hasVariant"), list):
            group = {k: v for k, v in node.items() if k != "hasVariant"}
            for variant in node["hasVariant"]:
                if isinstance(variant, dict):
                    seen_variants.add(id(variant))
                    p = product_from_node(variant, page_url, source, inherit=group)
                    if p:
                        products.append(p)
            continue
        if not types & PRODUCT_TYPES or id(node) in seen_variants:
            continue
        own_url = normalise_url(_text(node.get("url")), page_url) if _text(node.get("url")) else None
        if own_url and own_url != here and len(node) <= 4:  # a listing's entry: just a name and a link
            links.append(own_url)
            continue
        p = product_from_node(node, page_url, source)
        if p:
            products.append(p)
    return products, links


def _microdata_nodes(item: Any) -> Any:
    """extruct's microdata shape ({"type", "properties"}) as JSON-LD-like nodes ({"@type", ...})."""
    if isinstance(item, list):
        return [_microdata_nodes(i) for i in item]
    if isinstance(item, dict) and "properties" in item:
        return {"@type": item.get("type", ""), **{k: _microdata_nodes(v) for k, v in item["properties"].items()}}
    return item


# -- pages -----------------------------------------------------------------------------------------------------------

def parse_html(data: bytes, url: str):
    """The lxml document of a page (links made absolute, honouring <base href>), or None for an empty one."""
    import lxml.html
    from lxml.etree import ParserError

    try:
        doc = lxml.html.document_fromstring(data, base_url=url)
    except (ParserError, ValueError):
        return None
    try:
        doc.make_links_absolute(url, resolve_base_href=True, handle_failures="discard")
    except ValueError:
        pass
    return doc


def parse_page(data: bytes, url: str) -> ParsedPage:
    """Products, links and product-data errors of one HTML page (see the module docstring)."""
    page = ParsedPage()
    doc = parse_html(data, url)
    if doc is None:
        return page
    links: list[str] = []
    for el in doc.iter("a", "link"):
        href = el.get("href")
        rel = (el.get("rel") or "").lower().split()
        if not href or (el.tag == "link" and "next" not in rel and "prev" not in rel):
            continue
        target = normalise_url(href, url)
        if target and looks_like_page(target) and target not in links:
            links.append(target)
    blocks: list[Any] = []
    broken: list[str] = []
    for n, script in enumerate(doc.iter("script"), 1):
        if (script.get("type") or "").split(";")[0].strip().lower() != "application/ld+json":
            continue
        text = script.text or ""
        if not text.strip():
            continue
        try:
            blocks.append(json.loads(text))
        except (json.JSONDecodeError, RecursionError) as exc:
            where = f"line {script.sourceline}" if script.sourceline else f"block {n}"
            broken.append(f"JSON-LD at {where} does not parse ({getattr(exc, 'msg', 'nested too deeply')})")
    products, listed = products_from_nodes(blocks, url, "json-ld")
    if not products and doc.xpath("boolean(//*[@itemscope])"):  # extruct loads in ~0.5 s: only when needed
        from extruct.w3cmicrodata import MicrodataExtractor

        try:
            items = MicrodataExtractor().extract_items(doc, url)
            micro = _microdata_nodes(list(items))
        except Exception as exc:  # noqa: BLE001 - a malformed page must not stop the crawl; it is reported
            micro, broken = [], [*broken, f"microdata could not be read ({type(exc).__name__})"]
        found, more = products_from_nodes(micro, url, "microdata")
        products, listed = found, listed + more
    page.links = links + [u for u in listed if u not in links]
    unnamed = [p for p in products if not p.sku]
    page.products = [p for p in products if p.sku]
    if broken and not page.products:
        page.error = "; ".join(broken)
    elif unnamed and not page.products:
        page.error = f"a Product without sku, mpn, gtin or productID ({unnamed[0].name!r})"
    return page


# -- sitemaps and robots ---------------------------------------------------------------------------------------------

def parse_sitemap(data: bytes, url: str) -> tuple[list[str], list[str], str]:
    """(page URLs, nested sitemap URLs, error) of a sitemap or sitemap index (gzip allowed). Locations are resolved
    against the sitemap's URL (the protocol asks for absolute ones; relative ones are read too)."""
    from lxml import etree

    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
                data = f.read(50 * 1024 * 1024)
        except OSError as exc:
            return [], [], f"not a gzip file ({exc})"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [], [], f"not valid XML ({exc.msg})"
    if root is None:
        return [], [], "empty"
    local = etree.QName(root).localname.lower()
    pages: list[str] = []
    nested: list[str] = []
    target = nested if local == "sitemapindex" else pages
    if local not in ("urlset", "sitemapindex"):
        return [], [], f"not a sitemap (root element <{etree.QName(root).localname}>)"
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el).localname != "loc" or not el.text:
            continue
        u = normalise_url(el.text, url)
        if u:
            target.append(u)
        if len(target) >= MAX_SITEMAP_URLS:
            break
    return pages, nested, ""


def parse_robots(text: str):
    """A Protego parser for robots.txt ``text`` (``can_fetch(url, agent)``, ``crawl_delay(agent)``, ``sitemaps``)."""
    from protego import Protego

    return Protego.parse(text)
