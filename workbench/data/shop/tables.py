"""Tables of the shop crawler (migration ``0014_shop_crawls``): ``shops`` (one site, its options and re-crawl
schedule), ``shop_fetches`` (every URL fetched from it, with ETag/Last-Modified, what the page held), ``shop_crawls``
(one crawl: status, counts, problems) and ``shop_crawl_urls`` (a crawl's frontier: each URL pending or done, so a
killed crawl resumes where it stopped).

Chained onto ``0008`` (the datasets chain): a shop names the dataset it imports into.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, utcnow


class Shop(Base):
    """A shop (one origin: scheme, host, port). ``options`` are the crawl options the last crawl used
    (``CrawlOptions.as_dict``); ``schedule_hours`` set (24: daily) means a re-crawl job is queued at
    ``next_crawl_at``."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(300), unique=True)
    start_url: Mapped[str] = mapped_column(String(2000))
    dataset_name: Mapped[str] = mapped_column(String(200), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedule_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_crawl_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    schedule_by: Mapped[str] = mapped_column(String(100), default="")  # whom a scheduled crawl acts for
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ShopFetch(Base):
    """The last response for one URL of a shop. ``url_key`` is the sha1 of the URL (a short unique key for URLs of
    any length). Pages keep what was read from them (``links``, ``products``, ``error``) so a 304 reuses it; images
    keep the content-addressed ``file`` under ``workspace/shops/<shop id>/files/``."""

    __tablename__ = "shop_fetches"
    __table_args__ = (Index("uq_shop_fetches_url", "shop_id", "url_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # robots | sitemap | page | image
    status: Mapped[int] = mapped_column(Integer, default=0)  # last HTTP status (0: no response)
    etag: Mapped[str] = mapped_column(String(500), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    file: Mapped[str] = mapped_column(String(300), default="")
    links: Mapped[list[Any]] = mapped_column(JSON, default=list)
    products: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    downloads: Mapped[int] = mapped_column(Integer, default=0)  # bodies downloaded (200s) over all crawls
    fetched_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # last 200
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # last request


class ShopCrawl(Base):
    """One crawl of a shop. status: running -> crawled (fetching done) -> done (imported) | failed | stopped; a crawl
    that is not done is resumed by the next crawl of its shop."""

    __tablename__ = "shop_crawls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    dataset_name: Mapped[str] = mapped_column(String(200), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    problems: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"url": ..., "reason": ...}]
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the import's summary
    resumed: Mapped[int] = mapped_column(Integer, default=0)  # how many times it was picked up again
    created_by: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ShopCrawlUrl(Base):
    """One URL of a crawl's frontier, in discovery order (``id``). state: pending | done | failed | disallowed |
    offsite | over_budget."""

    __tablename__ = "shop_crawl_urls"
    __table_args__ = (Index("uq_shop_crawl_urls", "crawl_id", "url_key", unique=True),
                      Index("ix_shop_crawl_urls_state", "crawl_id", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("shop_crawls.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # sitemap | page | image
    state: Mapped[str] = mapped_column(String(16), default="pending")
