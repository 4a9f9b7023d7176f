"""Datasets: the ``datasets`` and ``items`` tables.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.String(1000), nullable=False, server_default=""),
        sa.Column("source_kind", sa.String(32), nullable=False, server_default=""),
        sa.Column("caption_template", sa.Text, nullable=False, server_default=""),
        sa.Column("imports", sa.JSON, nullable=False),
        sa.Column("split_config", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("source_key", sa.String(1000), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(16), nullable=False),
        sa.Column("color", sa.String(7), nullable=False, server_default=""),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False, server_default=""),
        sa.Column("file_size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("caption", sa.Text, nullable=False, server_default=""),
        sa.Column("caption_source", sa.String(32), nullable=False, server_default=""),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("category", sa.String(200), nullable=False, server_default=""),
        sa.Column("brand", sa.String(200), nullable=False, server_default=""),
        sa.Column("colour", sa.String(100), nullable=False, server_default=""),
        sa.Column("source", sa.String(32), nullable=False, server_default=""),
        sa.Column("split", sa.String(8), index=True),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.Column("dup_group", sa.Integer, index=True),
        sa.Column("excluded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_items_dataset_sha", "items", ["dataset_id", "sha256"])
    op.create_index("ix_items_dataset_category", "items", ["dataset_id", "category"])


def downgrade() -> None:
    op.drop_index("ix_items_dataset_category", table_name="items")
    op.drop_index("ix_items_dataset_sha", table_name="items")
    op.drop_table("items")
    op.drop_table("datasets")
