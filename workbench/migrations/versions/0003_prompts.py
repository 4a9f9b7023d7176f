"""Prompts: versioned prompts, prompt batches and their members.

Revision ID: 0003
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"  # a branch from the foundation, built beside the other capabilities
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("negative", sa.Text, nullable=False, server_default=""),
        sa.Column("template", sa.String(100), nullable=False, server_default=""),
        sa.Column("scene", sa.String(100), nullable=False, server_default=""),
        sa.Column("slot_values", sa.JSON, nullable=False),
        sa.Column("brand", sa.String(100), nullable=False, server_default=""),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("prompts.id"), index=True),
        sa.Column("root_id", sa.Integer, sa.ForeignKey("prompts.id"), index=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active", index=True),
        sa.Column("token_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("issues", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "prompt_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template", sa.String(100), nullable=False, server_default=""),
        sa.Column("brand", sa.String(100), nullable=False, server_default=""),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("combinations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duplicates_removed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "prompt_batch_items",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("prompt_batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("prompt_batch_items", "prompt_batches", "prompts"):
        op.drop_table(table)
