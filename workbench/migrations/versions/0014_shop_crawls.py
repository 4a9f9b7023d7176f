"""Shop import (issue #22 item 1): ``shops``, ``shop_fetches`` (fetched URLs with ETag/Last-Modified and what they
held), ``shop_crawls`` and ``shop_crawl_urls`` (a crawl's frontier, so a killed crawl resumes).
``workbench.data.shop.tables``.

Chained onto 0008 (the datasets chain); other branches share ancestors, which is fine: init_db upgrades every head.

Revision ID: 0014
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("origin", sa.String(300), nullable=False, unique=True),
        sa.Column("start_url", sa.String(2000), nullable=False),
        sa.Column("dataset_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("schedule_hours", sa.Integer, nullable=True),
        sa.Column("next_crawl_at", sa.DateTime, nullable=True, index=True),
        sa.Column("schedule_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "shop_fetches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.Integer, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False, server_default="0"),
        sa.Column("etag", sa.String(500), nullable=False, server_default=""),
        sa.Column("last_modified", sa.String(100), nullable=False, server_default=""),
        sa.Column("content_type", sa.String(200), nullable=False, server_default=""),
        sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("file", sa.String(300), nullable=False, server_default=""),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("downloads", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fetched_at", sa.DateTime, nullable=True),
        sa.Column("checked_at", sa.DateTime, nullable=True),
    )
    op.create_index("uq_shop_fetches_url", "shop_fetches", ["shop_id", "url_key"], unique=True)
    op.create_table(
        "shop_crawls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.Integer, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dataset_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("resumed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "shop_crawl_urls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("crawl_id", sa.Integer, sa.ForeignKey("shop_crawls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("uq_shop_crawl_urls", "shop_crawl_urls", ["crawl_id", "url_key"], unique=True)
    op.create_index("ix_shop_crawl_urls_state", "shop_crawl_urls", ["crawl_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_shop_crawl_urls_state", "shop_crawl_urls")
    op.drop_index("uq_shop_crawl_urls", "shop_crawl_urls")
    op.drop_table("shop_crawl_urls")
    op.drop_table("shop_crawls")
    op.drop_index("uq_shop_fetches_url", "shop_fetches")
    op.drop_table("shop_fetches")
    op.drop_table("shops")
