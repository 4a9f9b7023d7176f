"""Tables of the Products capability: ``products`` (one SKU), ``product_items`` (its reference photos: dataset
items), ``generation_products`` (the SKUs a generated image depicts or was matched to) and ``lora_products`` (the
products, and their instance tokens, a training run's LoRA knows).

``item_embeddings`` (one image embedding per reference photo and embedding model, for shop-the-look retrieval) is
migration ``0013_item_embeddings``.

Created by migration ``0010_products`` (chained onto ``0008``: product_items points at items); ``0012`` adds the
fidelity columns of ``generation_products``; ``0023`` the logo region of a product photo
(``product_items.logo_region``). ``generation_id`` has no
foreign key: the generations table lives on another migration branch (``0004``), as 0007 notes for prompts.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.data import tables as _data_tables  # noqa: F401 - items, the target of product_items.item_id
from workbench.db import Base, utcnow

# Prices keep 4 decimals: every ISO 4217 currency has at most 4 minor-unit digits (CLF), most have 2, JPY has 0.
PRICE = Numeric(14, 4, asdecimal=True)


class Product(Base):
    """One SKU of the brand's catalog. ``colour_l/a/b`` is the measured CIE Lab colour of the garment region in its
    reference photos (None until measured); ``colour`` is the colour name the source gave."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    brand: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(200), default="", index=True)
    colour: Mapped[str] = mapped_column(String(100), default="")
    colour_l: Mapped[float | None] = mapped_column(Float, nullable=True)
    colour_a: Mapped[float | None] = mapped_column(Float, nullable=True)
    colour_b: Mapped[float | None] = mapped_column(Float, nullable=True)
    price: Mapped[Decimal | None] = mapped_column(PRICE, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="")
    url: Mapped[str] = mapped_column(String(2000), default="")
    token: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)  # DreamBooth instance token
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ProductItem(Base):
    """A dataset item that shows a product. An item belongs to at most one product (``item_id`` is the key)."""

    __tablename__ = "product_items"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="reference")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # where the logo goes on the garment in this photo (migration 0023): [[x, y], ...] top-left, top-right,
    # bottom-right, bottom-left, normalised to the photo (x / width, y / height); None: none recorded
    logo_region: Mapped[list[list[float]] | None] = mapped_column(JSON, nullable=True)


class GenerationProduct(Base):
    """A generated image tied to a product: it was generated for it, or retrieval found the product in it."""

    __tablename__ = "generation_products"

    generation_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # generations.id (no FK: another branch)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)  # generated_for | retrieved
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # retrieval similarity
    scored_by: Mapped[str] = mapped_column(String(300), default="")  # the index's model that made it (0021)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Product fidelity of the image against this product's reference photos (migration 0012): the scores
    # (FidelityResult.as_dict()), the brand gate's verdict (None: not checked) and its reason.
    fidelity: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fidelity_passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    fidelity_reason: Mapped[str] = mapped_column(Text, default="")
    fidelity_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class LoraProduct(Base):
    """A product (and its instance token) that a training run's LoRA was trained on. ``run_id`` is the run's first
    job (``workbench.train.runs``); the ``loras`` row of that run is the adapter."""

    __tablename__ = "lora_products"

    run_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    token: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[str] = mapped_column(Text, default="")  # "a photo of <token> <category>"
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ItemEmbedding(Base):
    """The embedding of one reference photo (dataset item) by one model: ``dim`` little-endian float16 values,
    L2-normalised, of the garment crop (or the whole photo when no garment stands out). Written once per (item,
    model) by ``workbench.products.retrieval.build_index``; migration ``0013``."""

    __tablename__ = "item_embeddings"
    __table_args__ = (Index("ix_item_embeddings_model_created", "model_ref", "created_at"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    model_ref: Mapped[str] = mapped_column(String(500), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
