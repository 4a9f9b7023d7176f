"""A product's logo region: where the brand's logo goes on the garment in one of its reference photos, recorded once
and used by every logo placement of that product (issue #21 item 4).

    set_logo_region(actor, "AUR-1001", [(0.3, 0.4), (0.7, 0.4), (0.7, 0.52), (0.3, 0.52)])   # the first photo's
    set_logo_region(actor, "AUR-1001", corners, item_id=14)                                  # ... or a given one
    r = logo_region("AUR-1001")            # the first photo (item order) that has one, or None
    r.pixels(1024, 1024)                   # its corners in an image of the photo's framing at that size
    workbench products logo-region AUR-1001 --corners 40,30,90,34,88,52,38,48     # pixels of the photo

The corners are top-left, top-right, bottom-right, bottom-left of the logo, in the photo's normalised coordinates
(x / width, y / height, each in 0..1), so the region does not depend on the size a photo is shown or resized at.
They are stored with the photo's link to the product (``product_items.logo_region``, migration 0023): a photo moved
to another product, or merged, keeps its region; an unlinked photo loses it. Setting or clearing a region needs the
``datasets`` permission (as editing the product) and writes an audit row (``product.logo_region``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from workbench.auth import Actor, require
from workbench.data.tables import Item
from workbench.db import audit, session_scope, utcnow
from workbench.products.fields import ProductError
from workbench.products.tables import Product, ProductItem
from workbench.settings import Settings, get_settings

Corners = list[tuple[float, float]]


@dataclass(frozen=True)
class LogoRegion:
    sku: str
    item_id: int
    corners: tuple[tuple[float, float], ...]  # normalised: top-left, top-right, bottom-right, bottom-left

    def pixels(self, width: float, height: float) -> Corners:
        """The corners in an image of the photo's framing that is ``width`` x ``height`` pixels."""
        return [(x * width, y * height) for x, y in self.corners]

    def as_dict(self) -> dict:
        return {"sku": self.sku, "item_id": self.item_id, "corners": [list(p) for p in self.corners]}


def check_region(corners) -> Corners:
    """Four (x, y) points in 0..1 forming a convex quadrilateral in order (either turn); else ProductError."""
    try:
        pts = [(float(x), float(y)) for x, y in corners]
    except (TypeError, ValueError):
        raise ProductError(f"logo region {corners!r}: four (x, y) corners expected") from None
    if len(pts) != 4:
        raise ProductError(f"logo region: four corners expected (top-left, top-right, bottom-right, bottom-left), "
                           f"got {len(pts)}")
    if any(not (0.0 <= v <= 1.0) for p in pts for v in p):
        raise ProductError(f"logo region {pts}: normalised corners must lie in 0..1 (x / width, y / height)")
    cross = []
    for i in range(4):
        (ax, ay), (bx, by), (cx, cy) = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
        cross.append((bx - ax) * (cy - by) - (by - ay) * (cx - bx))
    if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)):
        raise ProductError("logo region: the four corners must form a convex quadrilateral in order: top-left, "
                           "top-right, bottom-right, bottom-left")
    return pts


def normalise(corners, width: float, height: float) -> Corners:
    """Pixel corners of a ``width`` x ``height`` photo as normalised ones."""
    if width <= 0 or height <= 0:
        raise ProductError(f"image size {width}x{height} must be positive")
    return [(float(x) / width, float(y) / height) for x, y in corners]


def _product_id(s, sku: str) -> int:
    pid = s.scalar(select(Product.id).where(Product.sku == str(sku).strip()))
    if pid is None:
        raise ProductError(f"no product with sku {sku!r}")
    return pid


def _row(s, sku: str, item_id: int | None) -> ProductItem:
    pid = _product_id(s, sku)
    q = select(ProductItem).where(ProductItem.product_id == pid)
    if item_id is not None:
        row = s.scalar(q.where(ProductItem.item_id == int(item_id)))
        if row is None:
            raise ProductError(f"item {item_id} is not a photo of {sku}: link it first (Datasets page, "
                               "`workbench products link`)")
        return row
    row = s.scalar(q.order_by(ProductItem.item_id).limit(1))
    if row is None:
        raise ProductError(f"{sku} has no photos: a logo region belongs to a photo; link one first")
    return row


def set_logo_region(actor: Actor, sku: str, corners, *, item_id: int | None = None,
                    settings: Settings | None = None) -> LogoRegion:
    """Record ``corners`` (normalised, see the module docstring) as the logo region of ``sku``'s photo ``item_id``
    (default: its first photo), as ``actor`` (``datasets``), audited."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    pts = check_region(corners)
    with session_scope(settings) as s:
        row = _row(s, sku, item_id)
        before = row.logo_region
        row.logo_region = [[round(x, 6), round(y, 6)] for x, y in pts]
        p = s.get(Product, row.product_id)
        p.updated_by, p.updated_at = who.username, utcnow()
        audit(s, who.username, "product.logo_region", "product", p.sku,
              before={"item_id": row.item_id, "corners": before},
              after={"item_id": row.item_id, "corners": row.logo_region})
        return LogoRegion(p.sku, row.item_id, tuple((x, y) for x, y in row.logo_region))


def clear_logo_region(actor: Actor, sku: str, *, item_id: int | None = None,
                      settings: Settings | None = None) -> bool:
    """Forget the logo region of ``sku``'s photo ``item_id`` (default: every photo of it). True if one was there."""
    who = require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    with session_scope(settings) as s:
        rows = [_row(s, sku, item_id)] if item_id is not None else list(
            s.scalars(select(ProductItem).where(ProductItem.product_id == _product_id(s, sku))))
        had = {r.item_id: r.logo_region for r in rows if r.logo_region is not None}
        for r in rows:
            r.logo_region = None
        if had:
            audit(s, who.username, "product.logo_region", "product", str(sku).strip(),
                  before={"items": {str(k): v for k, v in had.items()}}, after=None)
        return bool(had)


def logo_region(sku: str, item_id: int | None = None, settings: Settings | None = None) -> LogoRegion | None:
    """The logo region of ``sku``'s photo ``item_id``, or (no item given) of its first photo that has one; None when
    there is none. An unknown SKU is a ProductError."""
    with session_scope(settings) as s:
        pid = _product_id(s, sku)
        q = select(ProductItem).where(ProductItem.product_id == pid, ProductItem.logo_region.is_not(None))
        if item_id is not None:
            q = q.where(ProductItem.item_id == int(item_id))
        row = s.scalar(q.order_by(ProductItem.item_id).limit(1))
        if row is None or not row.logo_region:
            return None
        return LogoRegion(str(sku).strip(), row.item_id, tuple((float(x), float(y)) for x, y in row.logo_region))


def photo_size(item_id: int, settings: Settings | None = None) -> tuple[int, int]:
    """(width, height) of a product photo (dataset item) as its image file has it."""
    from PIL import Image

    settings = settings or get_settings()
    with session_scope(settings) as s:
        item = s.get(Item, int(item_id))
        if item is None:
            raise ProductError(f"no item with id {item_id}")
        path = settings.path("datasets", str(item.dataset_id), item.path)
    with Image.open(path) as im:
        return im.size
