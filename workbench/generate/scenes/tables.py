"""The stored cut-out mask of a product photo (a dataset item): ``item_masks``, migration ``0017`` (chained onto the
products branch's ``0012``; ``item_id`` points at items, as ``product_items`` does).

One row per item: the soft alpha is an 8-bit greyscale PNG in ``workspace/masks/items/<item_id>.png``; the row says
where it came from (``matting`` or ``segmenter:<ref>``), the threshold that makes the hard mask (the page's
hand-correction slider) and who saved it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from workbench.data import tables as _data_tables  # noqa: F401 - items, the target of item_masks.item_id
from workbench.db import Base, utcnow


class ItemMask(Base):
    __tablename__ = "item_masks"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(500))  # the alpha PNG, relative to the workspace
    source: Mapped[str] = mapped_column(String(300))  # matting | segmenter:<ref>
    threshold: Mapped[float] = mapped_column(Float, default=0.5)  # alpha >= threshold is the product
    sha256: Mapped[str] = mapped_column(String(64))  # of the alpha PNG (provenance names it)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
