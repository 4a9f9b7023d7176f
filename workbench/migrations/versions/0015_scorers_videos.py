"""Brand-tuned CLIP scorers (``scorers``) and spin videos (``generation_videos``, one per video generation) (issue #22
items 2 and 3).

Chained onto 0004 (generation_videos points at generations); other branches share that parent, which is fine:
init_db upgrades every head.

Revision ID: 0015
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scorers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("base_ref", sa.String(500), nullable=False),
        sa.Column("dataset_id", sa.Integer),
        sa.Column("job_id", sa.Integer),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "generation_videos",
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("source_generation_id", sa.Integer),
        sa.Column("mp4_path", sa.String(1000), nullable=False),
        sa.Column("gif_path", sa.String(1000), nullable=False),
        sa.Column("sidecar_path", sa.String(1000), nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("fps", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("generation_videos")
    op.drop_table("scorers")
