"""Sign-in throttling (one counter row per account and per client), and the audit log closed against REPLACE.

Revision ID: 0009
Revises: 0007 (the append-only triggers this one completes)
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

# SQLite's REPLACE (and INSERT OR REPLACE) resolves a primary-key conflict by deleting the old row, and that delete
# fires no DELETE trigger (recursive_triggers is off by default, and it is a per-connection setting any client may
# leave off): so an insert that names an existing id is refused before it gets there.
SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be replaced'); END",
]
# PostgreSQL has no REPLACE; INSERT … ON CONFLICT DO UPDATE fires the row-level UPDATE trigger of 0007. TRUNCATE
# fires no row triggers at all: a statement trigger refuses it (the 0007 function names the operation).
POSTGRES_TRIGGERS = [
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "signin_throttle",
        # "user:<name>" (whether or not the account exists, so a lockout tells nothing) or "client:<address>"
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_start", sa.DateTime, nullable=False, index=True),
        sa.Column("locked_until", sa.DateTime, nullable=True),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_table("signin_throttle")
