"""Who has which image open on the Review page (``review_presence``): one row per user with the image and the time
they were last seen on it, so approvers working one queue are steered to different images.

Chained onto 0020 (the review branch's head).

Revision ID: 0024
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_presence",
        sa.Column("username", sa.String(100), primary_key=True),
        sa.Column("generation_id", sa.Integer, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_review_presence_generation_id", "review_presence", ["generation_id"])


def downgrade() -> None:
    op.drop_index("ix_review_presence_generation_id", "review_presence")
    op.drop_table("review_presence")
