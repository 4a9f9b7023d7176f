"""Shop-the-look retrieval: ``item_embeddings``, one image embedding per (dataset item, embedding model) (issue #20
item 7; ``workbench.products.retrieval``).

Chained onto 0010 (the products migration); 0012 shares that parent on another branch, which is fine: init_db
upgrades every head. ``vector`` holds ``dim`` little-endian float16 values (an L2-normalised embedding).

Revision ID: 0013
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_embeddings",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_ref", sa.String(500), primary_key=True),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    # (model, newest row): the retrieval index's freshness check (count and max per model) reads only this index,
    # not the 20k+ rows of vectors.
    op.create_index("ix_item_embeddings_model_created", "item_embeddings", ["model_ref", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_item_embeddings_model_created", "item_embeddings")
    op.drop_table("item_embeddings")
