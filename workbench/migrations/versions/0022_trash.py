"""The trash: deleted datasets, training runs and generation batches wait here for their undo window
(``workbench.trash``).

A new capability's table, so it branches from 0001 like the others.

Revision ID: 0022
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trash",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("label", sa.String(300), nullable=False, server_default=""),
        sa.Column("status", sa.String(12), nullable=False, server_default="deleted"),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("deleted_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("deleted_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("restored_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("restored_at", sa.DateTime, nullable=True),
        sa.Column("purged_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("purged_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_trash_kind_key_status", "trash", ["kind", "key", "status"])
    op.create_index("ix_trash_status", "trash", ["status"])


def downgrade() -> None:
    op.drop_index("ix_trash_status", "trash")
    op.drop_index("ix_trash_kind_key_status", "trash")
    op.drop_table("trash")
