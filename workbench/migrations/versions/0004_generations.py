"""Generation: the generations table (one row per image, every attempt kept).

Revision ID: 0004
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch", sa.String(100), nullable=False, index=True),
        sa.Column("prompt_id", sa.Integer),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("negative_prompt", sa.Text, nullable=False, server_default=""),
        sa.Column("brand", sa.String(100), nullable=False, server_default=""),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("vae", sa.String(500), nullable=False, server_default=""),
        sa.Column("loras", sa.JSON, nullable=False),
        sa.Column("quantization", sa.String(16), nullable=False, server_default="none"),
        sa.Column("scheduler", sa.String(32), nullable=False),
        sa.Column("dtype", sa.String(8), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("guidance", sa.Float, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("image_path", sa.String(1000), nullable=False),
        sa.Column("clip_score", sa.Float),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("kept", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("demo_model", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("review_status", sa.String(20), nullable=False, server_default="pending", index=True),
        sa.Column("replaces_id", sa.Integer, sa.ForeignKey("generations.id")),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("generations")
