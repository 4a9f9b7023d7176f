"""A product photo's logo region (issue #21 item 4): ``product_items.logo_region``, the four corners (top-left,
top-right, bottom-right, bottom-left) of where the brand's logo goes on the garment, in the photo's normalised
coordinates (x / width, y / height); NULL when none was recorded. Set on the Generate page (Place logo) or with
``workbench products logo-region SKU --corners ...``.

Chained onto 0021 (the products branch's head).

Revision ID: 0023
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("product_items") as batch:
        batch.add_column(sa.Column("logo_region", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_items") as batch:
        batch.drop_column("logo_region")
