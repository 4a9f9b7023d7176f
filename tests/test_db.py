import sqlite3

import pytest
from sqlalchemy import inspect, select, text

from workbench import db


@pytest.mark.empty_workspace
def test_migrations_create_the_core_tables_on_an_empty_database(empty_db_backend):
    engine = db.init_db()
    assert engine.dialect.name == empty_db_backend
    tables = set(inspect(engine).get_table_names())
    assert {"jobs", "model_cache", "users", "audit_log", "alembic_version", "workers"} <= tables
    assert db.current_revisions() == db.head_revisions()


@pytest.mark.empty_workspace
def test_migrations_rerun_idempotently_and_keep_data(workspace):
    db.init_db()
    with db.session_scope() as s:
        s.add(db.User(username="ada", role="admin"))
    db.reset_for_tests()  # a fresh process: the engine and the "already migrated" memo are gone
    db.init_db()
    db.init_db()
    with db.session_scope() as s:
        assert [u.username for u in s.scalars(select(db.User))] == ["ada"]
    assert db.current_revisions() == db.head_revisions()


def test_sqlite_runs_in_wal_mode(workspace):
    db.init_db()
    con = sqlite3.connect(workspace / "workbench.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_session_rolls_back_on_error(workspace):
    db.init_db()
    try:
        with db.session_scope() as s:
            s.add(db.User(username="half", role="marketer"))
            s.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.session_scope() as s:
        assert s.scalars(select(db.User)).all() == []


def test_audit_rows_commit_with_the_change(workspace):
    with db.session_scope() as s:
        user = db.User(username="bo", role="marketer")
        s.add(user)
        s.flush()
        db.audit(s, "admin", "user.create", "user", user.id, after={"role": "marketer"})
    with db.session_scope() as s:
        row = s.scalars(select(db.AuditLog)).one()
        assert (row.actor, row.action, row.entity, row.after) == ("admin", "user.create", "user", {"role": "marketer"})


def test_the_audit_log_refuses_update_and_delete(db_backend):
    """The append-only trigger (migration 0007) on each database: whoever asks, rows are neither changed nor removed."""
    assert db.get_engine().dialect.name == db_backend
    with db.session_scope() as s:
        row = db.audit(s, "ada", "user.create", "user", 1, after={"role": "admin"})
        s.flush()
        row_id = row.id
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only: rows cannot be (updated|deleted)"):
            with db.session_scope() as s:
                s.execute(text(statement))
    with db.session_scope() as s:
        kept = s.get(db.AuditLog, row_id)
        assert (kept.actor, kept.action, kept.after) == ("ada", "user.create", {"role": "admin"})
        assert s.scalar(select(db.AuditLog.id).where(db.AuditLog.actor == "mallory")) is None
