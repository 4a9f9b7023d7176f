"""Training: the ``loras`` and ``checkpoints`` tables.

Revision ID: 0005
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loras",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("run_id", sa.Integer, index=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(1000), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("lora_alpha", sa.Float, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False, server_default=""),
        sa.Column("step", sa.Integer, nullable=False, server_default="0"),
        sa.Column("final_loss", sa.Float),
        sa.Column("dataset", sa.String(1000), nullable=False, server_default=""),
        sa.Column("manifest_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("text_encoder", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("loss", sa.Float),
        sa.Column("samples", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("run_id", "step", name="uq_checkpoints_run_step"),
    )


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("loras")
