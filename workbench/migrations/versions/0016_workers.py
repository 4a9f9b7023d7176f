"""Several workers (issue #23 item 2): a ``workers`` row per job consumer with its heartbeat, and on ``jobs`` the
worker that took a job, the job process's own heartbeat and whether the job needs a GPU.

Chained onto 0001 (the jobs table). ``jobs.worker_id`` has no foreign key: adding one to an existing SQLite table
means rebuilding ``jobs``, which other tables point at.

Revision ID: 0016
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("gpu", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False, server_default="alive"),  # alive | stopped | lost
        sa.Column("queues", sa.String(200), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_workers_status", "workers", ["status"])
    op.add_column("jobs", sa.Column("requires_gpu", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("worker_id", sa.Integer))
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("worker_id")
        batch.drop_column("requires_gpu")
    op.drop_index("ix_workers_status", "workers")
    op.drop_table("workers")
