"""Which model made a shop-the-look link's score (issue #22 item 2: every score records its scorer):
``generation_products.scored_by``, the retrieval index's model reference (``clip:<ref>``, ``clip:tuned:<name>``,
``dino:<ref>``); empty for links made before, and for "generated_for" links (no score).

Chained onto 0017 (the products branch).

Revision ID: 0021
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generation_products") as batch:
        batch.add_column(sa.Column("scored_by", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("generation_products") as batch:
        batch.drop_column("scored_by")
