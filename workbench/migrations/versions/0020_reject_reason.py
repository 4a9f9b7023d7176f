"""A brand's review policy says whether rejecting an image needs a reason (``review_policies.reject_reason``:
"required", the default, or "optional").

Revision ID: 0020
Revises: 0011 (the reviews branch)
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_policies") as batch:
        batch.add_column(sa.Column("reject_reason", sa.String(8), nullable=False, server_default="required"))


def downgrade() -> None:
    with op.batch_alter_table("review_policies") as batch:
        batch.drop_column("reject_reason")
