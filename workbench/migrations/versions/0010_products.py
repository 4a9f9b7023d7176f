"""Products: ``products`` (SKUs), ``product_items`` (their reference photos), ``generation_products`` and
``lora_products`` (issue #20 items 1-2).

Chained onto 0008 (the datasets branch): product_items points at items. generation_products.generation_id has no
foreign key, because generations live on another branch (0004); lora_products.run_id points at jobs (0001).

Revision ID: 0010
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sku", sa.String(100), nullable=False, unique=True),
        sa.Column("name", sa.String(300), nullable=False, server_default=""),
        sa.Column("brand", sa.String(200), nullable=False, server_default=""),
        sa.Column("category", sa.String(200), nullable=False, server_default="", index=True),
        sa.Column("colour", sa.String(100), nullable=False, server_default=""),
        sa.Column("colour_l", sa.Float),
        sa.Column("colour_a", sa.Float),
        sa.Column("colour_b", sa.Float),
        sa.Column("price", sa.Numeric(14, 4)),
        sa.Column("currency", sa.String(3), nullable=False, server_default=""),
        sa.Column("url", sa.String(2000), nullable=False, server_default=""),
        sa.Column("token", sa.String(32), unique=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "product_items",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("role", sa.String(20), nullable=False, server_default="reference"),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "generation_products",
        sa.Column("generation_id", sa.Integer, primary_key=True),  # generations.id (no FK: branch 0004)
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
                  index=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("score", sa.Float),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "lora_products",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True,
                  index=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lora_products")
    op.drop_table("generation_products")
    op.drop_table("product_items")
    op.drop_table("products")
