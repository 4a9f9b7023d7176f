"""Review: decisions (+ tags), automatic check results, per-brand gate policy; the audit log becomes append-only.

Revision ID: 0007
Revises: 0004 (reviews point at generations)
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
# Chained onto the generations migration rather than branched from 0001: reviews point at generations, so the
# table must exist first (PostgreSQL checks foreign keys at CREATE). depends_on="0004" would order it too, but alembic
# then drops 0004 from the recorded heads, and current_revisions() would never equal head_revisions().
down_revision = "0004"
branch_labels = None
depends_on = None

# Updates and deletes of audit rows are refused by the database itself, whoever asks (the app, a script, a shell).
SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be updated'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted'); END",
]
POSTGRES_TRIGGERS = [
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit_log is append-only: rows cannot be %', lower(TG_OP) || 'd'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id"), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("reviewer_role", sa.String(20), nullable=False),
        sa.Column("override_gate", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("prompt_version_id", sa.Integer),  # prompts.id (no FK: 0003 is another branch)
        sa.Column("regen_job_id", sa.Integer, sa.ForeignKey("jobs.id")),
        sa.Column("regen_batch", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("generation_id", "seq", name="uq_reviews_generation_seq"),
    )
    op.create_table(
        "review_tags",
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True, index=True),
    )
    op.create_table(
        "review_checks",
        sa.Column("generation_id", sa.Integer, sa.ForeignKey("generations.id"), primary_key=True),
        sa.Column("check", sa.String(20), primary_key=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("checked_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "review_policies",
        sa.Column("brand", sa.String(100), primary_key=True),
        sa.Column("on_clip_fail", sa.String(8), nullable=False, server_default="flag"),
        sa.Column("on_ocr_fail", sa.String(8), nullable=False, server_default="hold"),
        sa.Column("updated_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("review_policies", "review_checks", "review_tags", "reviews"):
        op.drop_table(table)
