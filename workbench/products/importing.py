"""Products from an import: after ``import_dataset`` writes the photos, each source that names its products gets
product records, and the photos become their reference images.

    from workbench.products.importing import from_import, import_catalog
    report = import_catalog("styles.csv", actor=user, name="ss26")   # import_dataset, then the products it names
    result = from_import(actor, dataset_id)       # the product step alone, for a dataset imported earlier

The dataset importer (``workbench.data``) knows nothing of products: it sits a floor below them. Whoever imports for
a user (the Datasets page, ``workbench data import``, the demo builder) calls ``import_catalog``; the shop import
(``products/shop.py``) calls ``import_dataset`` and then its own product step (every crawled product, photos or not).

What names a product (the item's source attributes, read by ``workbench.data.sources``), first match wins:

* a ``sku`` or ``product_id`` column (imagefolder metadata.jsonl/.csv, any attribute CSV), or a ``sku.txt`` in a
  product's folder: that SKU, with optional name/product_name, price, currency, url/product_url, colour, category,
  brand columns;
* Kaggle's ``styles.csv``: ``id`` -> sku, ``productDisplayName`` -> name, ``baseColour`` -> colour, ``articleType``
  -> category (the other columns become attributes);
* KREAM text ("category, product name, caption", split by the importer): one product per product name, its SKU a slug
  of the name;
* a folder per product (``root/<product description>/<3-5 photos>``, the Stanford seed's scrape layout): the folder
  name is the product's name, its SKU a slug of it (folders named like kohya's ``10_token`` repeats are not products).

An existing SKU is updated with the values the source gives (empty values never overwrite); photos already linked to
another product stay there (counted as conflicts). Everything is written in one transaction, audited per product.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from workbench.data.captions import is_missing
from workbench.data.tables import Item
from workbench.db import audit, session_scope, utcnow
from workbench.products.fields import ProductError, check_sku, slug
from workbench.products.records import TEXT_LIMITS, _apply_source_values, _clean, _state
from workbench.products.tables import Product, ProductItem
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

SKU_KEYS = ("sku", "SKU", "product_id", "productId", "product_sku")
NAME_KEYS = ("name", "product_name", "productDisplayName", "title")
PRICE_KEYS = ("price", "Price")
CURRENCY_KEYS = ("currency", "Currency")
URL_KEYS = ("url", "product_url", "productUrl", "link")
COLOUR_KEYS = ("colour", "color", "baseColour", "baseColor")
CATEGORY_KEYS = ("category", "articleType")
CONSUMED = {*SKU_KEYS, *NAME_KEYS, *PRICE_KEYS, *CURRENCY_KEYS, *URL_KEYS, *COLOUR_KEYS, *CATEGORY_KEYS, "id", "brand",
            "text", "caption", "folder"}
KOHYA_REPEATS = re.compile(r"^\d+_")


@dataclass
class ProductImportResult:
    dataset_id: int
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    linked: int = 0  # photos newly linked to a product
    conflicts: list[str] = field(default_factory=list)  # "item 12 is a photo of X, the source says Y"
    problems: list[str] = field(default_factory=list)  # a field value that could not be stored, and why

    def summary(self) -> str:
        if not (self.created or self.updated or self.linked or self.conflicts or self.problems):
            return ""
        line = (f"products: {len(self.created)} created, {len(self.updated)} updated, {self.linked} photo(s) linked")
        extra = [f"{len(self.conflicts)} photo(s) already belong to another product (left there)"] \
            if self.conflicts else []
        return "; ".join([line, *extra, *self.problems[:10]])


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> str:
    for k in keys:
        value = attrs.get(k)
        if value is not None and not is_missing(value) and str(value).strip():
            return " ".join(str(value).split())
    return ""


def _slug_sku(text: str) -> str:
    """A SKU from a product name or folder name: its slug, or (a name with no ASCII letters) a hash of it."""
    return slug(text) or "p-" + hashlib.sha1(text.encode()).hexdigest()[:10]


def product_key(item: Item) -> tuple[str, dict[str, Any]] | None:
    """(sku, fields) for the product an imported item shows, or None when its source names none."""
    attrs = dict(item.attributes or {})
    sku = _first(attrs, SKU_KEYS)
    name = _first(attrs, NAME_KEYS)
    if not sku and _first(attrs, ("productDisplayName",)) and _first(attrs, ("id",)):
        sku = _first(attrs, ("id",))  # Kaggle styles.csv: one row per product
    if not sku and _first(attrs, ("product_name",)):
        sku = _slug_sku(name)  # KREAM
    folder = _first(attrs, ("folder",))
    if folder and not name:
        name = folder.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if not sku and folder and not KOHYA_REPEATS.match(name):
        sku = _slug_sku(name)
    if not sku:
        return None
    extra = {k: v for k, v in attrs.items() if k not in CONSUMED and isinstance(v, (str, int, float, bool))
             and not is_missing(v)}
    fields = {"name": name, "brand": item.brand or _first(attrs, ("brand",)),
              "category": _first(attrs, CATEGORY_KEYS) or item.category, "colour": item.colour
              or _first(attrs, COLOUR_KEYS), "price": _first(attrs, PRICE_KEYS),
              "currency": _first(attrs, CURRENCY_KEYS),
              "url": _first(attrs, URL_KEYS), "attributes": extra}
    return sku, fields


def _checked(sku: str, fields: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The fields that pass the product checks; each one that does not is left out with a note naming it."""
    out = {}
    for key, value in fields.items():
        if value in ("", None, {}):
            continue
        if key in TEXT_LIMITS:
            value = str(value)[:TEXT_LIMITS[key]]
        try:
            out.update(_clean({key: value}))
        except ProductError as exc:
            problems.append(f"{sku}: {exc} (not stored)")
    return out


def import_catalog(actor: Actor, source: Any, **options: Any) -> Any:
    """``workbench.data.import_dataset(actor, source, **options)``, then the products its items name
    (``from_import``), whose summary joins the report's notes. Returns the ImportReport."""
    from workbench.data.importer import import_dataset

    report = import_dataset(actor, source, **options)
    from_import(actor, report.dataset_id, report, settings=options.get("settings"))
    return report


def from_import(actor: Actor, dataset_id: int, report: Any = None, *,
                settings: Settings | None = None) -> ProductImportResult:
    """Create or update the products that dataset ``dataset_id``'s items name, and link the items to them (see the
    module docstring). With an ``ImportReport``, its notes get the summary. Needs ``datasets``."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    result = ProductImportResult(dataset_id)
    with session_scope(settings) as s:
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for item in s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)):
            found = product_key(item)
            if found is None:
                continue
            sku, fields = found
            try:
                sku = check_sku(sku)
            except ProductError as exc:
                result.problems.append(f"item {item.id}: {exc}; no product made")
                continue
            if sku in groups:  # later photos fill what the first one left empty
                first, ids = groups[sku]
                for k, v in fields.items():
                    if k == "attributes":
                        first[k] = {**v, **first[k]}
                    elif not first.get(k) and v:
                        first[k] = v
                ids.append(item.id)
            else:
                groups[sku] = (fields, [item.id])
        if not groups:
            return _noted(result, report)
        existing = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_(list(groups))))}
        all_ids = [i for _, ids in groups.values() for i in ids]
        links = dict(s.execute(select(ProductItem.item_id, ProductItem.product_id)
                               .where(ProductItem.item_id.in_(all_ids))).all())
        skus_by_id = dict(s.execute(select(Product.id, Product.sku).where(Product.id.in_(set(links.values())))).all()) \
            if links else {}
        now = utcnow()
        for sku, (fields, ids) in groups.items():
            values = _checked(sku, fields, result.problems)
            p = existing.get(sku)
            if p is None:
                p = Product(sku=sku, created_by=who.username, updated_by=who.username, created_at=now,
                            updated_at=now, **{"attributes": {}, **values})
                s.add(p)
                s.flush()
                result.created.append(sku)
                audit(s, who.username, "product.create", "product", sku,
                      after={**_state(p), "from_import": dataset_id})
            elif _apply_source_values(s, who.username, p, values, now, {"from_import": dataset_id}):
                result.updated.append(sku)
            for i in ids:
                owner = links.get(i)
                if owner is None:
                    s.add(ProductItem(item_id=i, product_id=p.id, role="reference", created_at=now))
                    result.linked += 1
                elif owner != p.id:
                    result.conflicts.append(f"item {i} is a photo of {skus_by_id.get(owner)}, the source says {sku}")
    return _noted(result, report)


def _noted(result: ProductImportResult, report: Any) -> ProductImportResult:
    if report is not None and hasattr(report, "notes"):
        if result.summary():  # a source that names no products adds no line
            report.notes.append(result.summary())
        if hasattr(report, "products"):
            report.products = {"created": len(result.created), "updated": len(result.updated),
                               "linked": result.linked, "conflicts": len(result.conflicts)}
    return result
