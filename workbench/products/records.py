"""Products (SKUs) as records: create, edit, merge, link reference photos, read.

    from workbench.products import create_product, get_product, update_product, merge_products
    create_product(actor, "AUR-1001", "Aurelo navy wool coat", category="coat", price="249.00", currency="EUR",
                   url="https://shop.aurelo.example/p/AUR-1001", item_ids=[12, 13, 14])
    update_product(actor, "AUR-1001", colour="navy", attributes={"fit": "regular"})
    merge_products(actor, "AUR-1001", ["aurelo-navy-wool-coat"])     # one product from a duplicate
    get_product("AUR-1001").item_ids                                   # -> [12, 13, 14, ...]

Creating, editing, linking and merging need the ``datasets`` permission (marketer, analyst, admin) and write an
audit row in the same transaction; reads need nothing in the library (the pages ask for a signed-in user). An item
(a dataset photo) shows at most one product; items without a product stay valid.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from workbench.data.images import thumb_path
from workbench.data.tables import Item
from workbench.db import audit, session_scope, utcnow
from workbench.products.fields import (
    ProductError,
    check_currency,
    check_lab,
    check_price,
    check_sku,
    check_url,
    lab_to_hex,
)
from workbench.products.tables import (
    GenerationProduct,
    LoraProduct,
    Product,
    ProductItem,
)
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

# update_product's fields (and what create_product takes besides sku and item_ids)
EDITABLE = ("name", "brand", "category", "colour", "colour_lab", "price", "currency", "url", "attributes")
TEXT_LIMITS = {"name": 300, "brand": 200, "category": 200, "colour": 100}
ROLES = ("reference", "detail", "worn")


@dataclass
class ProductInfo:
    id: int
    sku: str
    name: str
    brand: str
    category: str
    colour: str
    colour_lab: tuple[float, float, float] | None
    price: Decimal | None
    currency: str
    url: str
    token: str | None
    attributes: dict[str, Any]
    item_ids: list[int] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)  # the items' image files, in item order
    thumbnails: list[Path] = field(default_factory=list)  # their thumbnails (workspace/thumbs; may need remaking)
    created_by: str = ""
    created_at: dt.datetime | None = None
    updated_by: str = ""
    updated_at: dt.datetime | None = None

    @property
    def swatch(self) -> str | None:
        """"#rrggbb" of the measured colour, or None until measured."""
        return lab_to_hex(self.colour_lab) if self.colour_lab else None

    @property
    def price_label(self) -> str:
        if self.price is None:
            return ""
        return f"{self.price:f} {self.currency}".strip()

    def as_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "brand": self.brand, "category": self.category,
                "colour": self.colour, "colour_lab": list(self.colour_lab) if self.colour_lab else None,
                "price": None if self.price is None else str(self.price), "currency": self.currency,
                "url": self.url, "token": self.token, "attributes": self.attributes, "items": self.item_ids}


def _dec(value: Any) -> Decimal | None:
    """A stored price as the Decimal the user wrote (49.9000 -> 49.9, 100.0000 -> 100)."""
    if value is None:
        return None
    d = Decimal(value)
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def _state(p: Product) -> dict[str, Any]:
    """A product's fields as JSON for the audit log."""
    lab = [p.colour_l, p.colour_a, p.colour_b] if p.colour_l is not None else None
    return {"sku": p.sku, "name": p.name, "brand": p.brand, "category": p.category, "colour": p.colour,
            "colour_lab": lab, "price": None if p.price is None else str(_dec(p.price)), "currency": p.currency,
            "url": p.url, "attributes": dict(p.attributes or {})}


def _apply_source_values(s: Any, username: str, p: Product, values: dict[str, Any], now: Any,
                         origin: dict[str, Any]) -> bool:
    """An importer's values onto an existing product (attributes merged, the rest replaced), audited as
    "product.edit" with only the changed fields and ``origin`` (where the values came from). True when it changed."""
    before = _state(p)
    if "attributes" in values:
        values["attributes"] = {**(p.attributes or {}), **values["attributes"]}
    for k, v in values.items():
        setattr(p, k, v)
    after = _state(p)
    if after == before:
        return False
    p.updated_by, p.updated_at = username, now
    changed = sorted(k for k in after if after[k] != before[k])
    audit(s, username, "product.edit", "product", p.sku, before={k: before[k] for k in changed},
          after={**{k: after[k] for k in changed}, **origin})
    return True


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Checked column values for ``fields`` (names from EDITABLE). Unknown names are an error naming them."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise ProductError(f"unknown product field(s) {', '.join(unknown)}; editable: {', '.join(EDITABLE)}")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in TEXT_LIMITS:
            text = " ".join(str(value or "").split())
            if len(text) > TEXT_LIMITS[key]:
                raise ProductError(f"{key} is {len(text)} characters long; at most {TEXT_LIMITS[key]}")
            out[key] = text
        elif key == "price":
            out["price"] = check_price(value)
        elif key == "currency":
            out["currency"] = check_currency(value)
        elif key == "url":
            out["url"] = check_url(value)
        elif key == "colour_lab":
            lab = check_lab(value)
            out["colour_l"], out["colour_a"], out["colour_b"] = lab if lab else (None, None, None)
        elif key == "attributes":
            if not isinstance(value, dict):
                raise ProductError(f"attributes must be a mapping of names to values, got {type(value).__name__}")
            out["attributes"] = {str(k): v for k, v in value.items()}
    return out


def _get(s: Session, sku: str) -> Product:
    row = s.scalar(select(Product).where(Product.sku == str(sku).strip()))
    if row is None:
        raise ProductError(f"no product with sku {sku!r} (see `workbench products list`)")
    return row


def _info(s: Session, p: Product, settings: Settings) -> ProductInfo:
    return _infos(s, [p], settings)[0]


def _infos(s: Session, rows: list[Product], settings: Settings) -> list[ProductInfo]:
    ids = [p.id for p in rows]
    items: dict[int, list[Item]] = {i: [] for i in ids}
    if ids:
        for pid, item in s.execute(select(ProductItem.product_id, Item).join(Item, Item.id == ProductItem.item_id)
                                   .where(ProductItem.product_id.in_(ids)).order_by(Item.id)):
            items[pid].append(item)
    thumbs = settings.path("thumbs")
    out = []
    for p in rows:
        its = items[p.id]
        lab = (p.colour_l, p.colour_a, p.colour_b) if p.colour_l is not None else None
        out.append(ProductInfo(
            id=p.id, sku=p.sku, name=p.name, brand=p.brand, category=p.category, colour=p.colour, colour_lab=lab,
            price=_dec(p.price), currency=p.currency, url=p.url, token=p.token,
            attributes=dict(p.attributes or {}), item_ids=[i.id for i in its],
            images=[settings.path("datasets", str(i.dataset_id), i.path) for i in its],
            thumbnails=[thumb_path(thumbs, i.sha256) for i in its], created_by=p.created_by,
            created_at=p.created_at, updated_by=p.updated_by, updated_at=p.updated_at))
    return out


def _link(s: Session, product: Product, item_ids: Iterable[int], role: str, move: bool) -> list[int]:
    """Link items to ``product`` inside the caller's transaction; returns the ids newly linked (or moved)."""
    if role not in ROLES:
        raise ProductError(f"role {role!r}: one of {', '.join(ROLES)}")
    wanted = sorted({int(i) for i in item_ids})
    if not wanted:
        return []
    found = set(s.scalars(select(Item.id).where(Item.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ProductError(f"no item(s) with id {', '.join(map(str, missing))}; nothing was linked")
    current = {pi.item_id: pi for pi in s.scalars(select(ProductItem).where(ProductItem.item_id.in_(wanted)))}
    elsewhere = {i: pi.product_id for i, pi in current.items() if pi.product_id != product.id}
    if elsewhere and not move:
        skus = dict(s.execute(select(Product.id, Product.sku).where(Product.id.in_(set(elsewhere.values())))).all())
        shown = ", ".join(f"item {i} (sku {skus[pid]})" for i, pid in sorted(elsewhere.items())[:10])
        raise ProductError(f"an item shows at most one product, and these already belong to another: {shown}. Unlink "
                           "them first, move them (move=True, --move) or merge the products")
    changed = []
    for i in wanted:
        row = current.get(i)
        if row is None:
            s.add(ProductItem(item_id=i, product_id=product.id, role=role, created_at=utcnow()))
            changed.append(i)
        elif row.product_id != product.id or row.role != role:
            row.product_id, row.role = product.id, role
            changed.append(i)
    return changed


# -- writes --------------------------------------------------------------------------------------------------------

def create_product(actor: Actor, sku: str, name: str = "", *, item_ids: Iterable[int] = (), role: str = "reference",
                   settings: Settings | None = None, **fields: Any) -> ProductInfo:
    """A new product ``sku`` (unique in the workspace) with ``fields`` (see EDITABLE) and its reference items.
    Items that already belong to another product are an error (link them with ``move=True`` instead)."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    sku = check_sku(sku)
    values = _clean({"name": name, **fields})
    with session_scope(settings) as s:
        if s.scalar(select(Product.id).where(Product.sku == sku)) is not None:
            raise ProductError(f"sku {sku!r} exists already: edit it (update_product, `workbench products edit`)")
        now = utcnow()
        p = Product(sku=sku, created_by=who.username, updated_by=who.username, created_at=now, updated_at=now,
                    **{"attributes": {}, **values})
        s.add(p)
        s.flush()
        linked = _link(s, p, item_ids, role, move=False)
        audit(s, who.username, "product.create", "product", sku, after={**_state(p), "items": linked})
        return _info(s, p, settings)


def update_product(actor: Actor, sku: str, *, settings: Settings | None = None, **fields: Any) -> ProductInfo:
    """Change fields of ``sku`` (names from EDITABLE; any other name is an error naming it). ``attributes`` is merged
    into the stored ones, and a key given as None is removed; ``colour_lab=None`` clears the measurement."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    values = _clean(fields)
    with session_scope(settings) as s:
        p = _get(s, sku)
        before = _state(p)
        if "attributes" in values:
            merged = {**(p.attributes or {}), **values["attributes"]}
            values["attributes"] = {k: v for k, v in merged.items() if v is not None}
        for key, value in values.items():
            setattr(p, key, value)
        after = _state(p)
        if after != before:
            p.updated_by, p.updated_at = who.username, utcnow()
            changed = sorted(k for k in after if after[k] != before[k])
            audit(s, who.username, "product.edit", "product", p.sku, before={k: before[k] for k in changed},
                  after={k: after[k] for k in changed})
        return _info(s, p, settings)


def link_items(actor: Actor, sku: str, item_ids: Iterable[int], *, role: str = "reference", move: bool = False,
               settings: Settings | None = None) -> ProductInfo:
    """Make dataset items reference photos of ``sku``. An item of another product is an error unless ``move``."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    with session_scope(settings) as s:
        p = _get(s, sku)
        changed = _link(s, p, item_ids, role, move)
        if changed:
            p.updated_by, p.updated_at = who.username, utcnow()
            audit(s, who.username, "product.link_items", "product", p.sku, after={"items": changed, "role": role})
        return _info(s, p, settings)


def unlink_items(actor: Actor, sku: str, item_ids: Iterable[int], *, settings: Settings | None = None) -> ProductInfo:
    """The items stop being photos of ``sku`` (they stay in their dataset)."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    ids = sorted({int(i) for i in item_ids})
    with session_scope(settings) as s:
        p = _get(s, sku)
        gone = list(s.scalars(select(ProductItem.item_id).where(ProductItem.product_id == p.id,
                                                                 ProductItem.item_id.in_(ids))))
        if gone:
            s.execute(delete(ProductItem).where(ProductItem.product_id == p.id, ProductItem.item_id.in_(gone)))
            p.updated_by, p.updated_at = who.username, utcnow()
            audit(s, who.username, "product.unlink_items", "product", p.sku, before={"items": sorted(gone)})
        return _info(s, p, settings)


def merge_products(actor: Actor, keep_sku: str, other_skus: Iterable[str], *,
                   settings: Settings | None = None) -> ProductInfo:
    """Fold ``other_skus`` into ``keep_sku`` in one transaction: their items, generation links and LoRA links move to
    the kept product; its fields stay, and an empty one takes the first other's non-empty value; attributes are
    united (the kept product's win) and ``attributes["merged_from"]`` lists the merged SKUs. The others are deleted."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    others_wanted = [str(x).strip() for x in other_skus if str(x).strip() != str(keep_sku).strip()]
    if not others_wanted:
        raise ProductError("merge needs at least one other sku than the one kept")
    with session_scope(settings) as s:
        keep = _get(s, keep_sku)
        others = [_get(s, sku) for sku in dict.fromkeys(others_wanted)]
        before = {"kept": _state(keep), "merged": [_state(o) for o in others]}
        moved_items: list[int] = []
        token = keep.token
        merged_from = list((keep.attributes or {}).get("merged_from") or [])
        attributes = {}
        for o in others:
            for key in ("name", "brand", "category", "colour", "currency", "url"):
                if not getattr(keep, key) and getattr(o, key):
                    setattr(keep, key, getattr(o, key))
            if keep.price is None and o.price is not None:
                keep.price = o.price
            if keep.colour_l is None and o.colour_l is not None:
                keep.colour_l, keep.colour_a, keep.colour_b = o.colour_l, o.colour_a, o.colour_b
            token = token or o.token
            attributes = {**(o.attributes or {}), **attributes}
            merged_from += [o.sku, *((o.attributes or {}).get("merged_from") or [])]
            for pi in s.scalars(select(ProductItem).where(ProductItem.product_id == o.id)):
                pi.product_id = keep.id
                moved_items.append(pi.item_id)
            for model, key in ((GenerationProduct, ("generation_id", "source")), (LoraProduct, ("run_id",))):
                for row in s.scalars(select(model).where(model.product_id == o.id)):
                    clash = s.scalar(select(model).where(model.product_id == keep.id,
                                                         *[getattr(model, k) == getattr(row, k) for k in key]))
                    if clash is None:
                        row.product_id = keep.id
        s.flush()
        for o in others:
            s.delete(o)
        s.flush()  # the others' tokens are free before the kept product takes one
        keep.token = token
        keep.attributes = {**attributes, **(keep.attributes or {}), "merged_from": list(dict.fromkeys(merged_from))}
        keep.updated_by, keep.updated_at = who.username, utcnow()
        audit(s, who.username, "product.merge", "product", keep.sku, before=before,
              after={**_state(keep), "items_moved": sorted(moved_items)})
        return _info(s, keep, settings)


# -- reads ---------------------------------------------------------------------------------------------------------

def get_product(sku: str, settings: Settings | None = None) -> ProductInfo:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        return _info(s, _get(s, sku), settings)


def list_products(text: str = "", category: str = "", *, dataset_id: int | None = None, skus: Iterable[str] = (),
                  limit: int = 200, offset: int = 0, settings: Settings | None = None) -> list[ProductInfo]:
    """Products by sku, filtered: ``text`` in sku/name/colour/brand (case-insensitive), exact ``category``, with a
    photo in ``dataset_id``, or among ``skus``."""
    settings = settings or get_settings()
    q = select(Product)
    if text.strip():
        like = f"%{text.strip().lower()}%"
        q = q.where(or_(*[func.lower(c).like(like) for c in (Product.sku, Product.name, Product.colour,
                                                              Product.brand)]))
    if category:
        q = q.where(Product.category == category)
    if dataset_id is not None:
        q = q.where(Product.id.in_(select(ProductItem.product_id).join(Item, Item.id == ProductItem.item_id)
                                   .where(Item.dataset_id == dataset_id)))
    wanted = [str(x) for x in skus]
    if wanted:
        q = q.where(Product.sku.in_(wanted))
    with session_scope(settings) as s:
        rows = list(s.scalars(q.order_by(Product.sku).limit(limit).offset(offset)))
        return _infos(s, rows, settings)


def count_products(settings: Settings | None = None) -> int:
    with session_scope(settings) as s:
        return s.scalar(select(func.count()).select_from(Product)) or 0


def categories(settings: Settings | None = None) -> list[str]:
    with session_scope(settings) as s:
        return [c for c in s.scalars(select(Product.category).distinct().order_by(Product.category)) if c]


def products_of_items(item_ids: Iterable[int], settings: Settings | None = None) -> dict[int, str]:
    """{item id: sku} for the items that show a product (the others are left out)."""
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        return {}
    with session_scope(settings) as s:
        return dict(s.execute(select(ProductItem.item_id, Product.sku).join(Product)
                              .where(ProductItem.item_id.in_(ids))).all())
