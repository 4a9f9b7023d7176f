"""Evaluation: evaluation runs, their aggregate results and per-image scores.

Revision ID: 0006
Revises: 0004 (per-image rows point at generations)
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
# Chained onto the generations migration (like 0007): evaluation_images.generation_id is a foreign key to it, and
# PostgreSQL checks foreign keys at CREATE.
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued", index=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("reference", sa.JSON, nullable=False),
        sa.Column("backbones", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_table(
        "evaluation_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("image_set", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(50), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer, nullable=False, server_default="0"),
        sa.Column("value", sa.Float),
        sa.Column("ci_low", sa.Float),
        sa.Column("ci_high", sa.Float),
        sa.Column("median", sa.Float),
        sa.Column("top5", sa.Float),
        sa.Column("reliable", sa.Boolean),
        sa.Column("step", sa.Integer),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.UniqueConstraint("evaluation_id", "image_set", "metric", name="uq_evaluation_results"),
    )
    op.create_table(
        "evaluation_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("image_set", sa.String(200), nullable=False),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="SET NULL"), index=True),
        sa.Column("image_path", sa.String(1000), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False, server_default=""),
        sa.Column("reference_path", sa.String(1000), nullable=False, server_default=""),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("ocr", sa.JSON),
        sa.Column("provenance", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("evaluation_images")
    op.drop_table("evaluation_results")
    op.drop_table("evaluations")
