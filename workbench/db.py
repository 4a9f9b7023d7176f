"""Database: SQLAlchemy 2 engine, the core tables, and migrations applied at start-up.

SQLite in WAL mode inside the workspace by default; any SQLAlchemy URL (PostgreSQL for teams) through
``WORKBENCH_DATABASE_URL``. The schema is owned by Alembic migrations in ``workbench/migrations/versions``: each
capability adds its tables with a migration of its own, and ``init_db()`` brings any database to the newest version.

    from workbench.db import init_db, session_scope, Job
    init_db()
    with session_scope() as s:
        s.scalars(select(Job)).all()
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from workbench.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# -- core tables (migration 0001) ------------------------------------------------------------------------------

JOB_STATUSES = ("queued", "running", "done", "failed", "stopped")


class Job(Base):
    """A background job: training, batch generation, captioning, evaluation. Progress lives here so any page can
    poll it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    log_path: Mapped[str] = mapped_column(String(500), default="")
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    resumed_from: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # Several workers (migration 0016): only workers with a GPU take a job that requires one; the consumer that took
    # the job (workers.id); the job process's heartbeat, which other machines judge it by (workbench.jobs.heartbeat).
    requires_gpu: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def fraction(self) -> float | None:
        if not self.progress_total:
            return None
        return max(0.0, min(1.0, self.progress_step / self.progress_total))

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")


class ModelCacheState(Base):
    """Last known availability of each model reference (written by `workbench models list|pull`)."""

    __tablename__ = "model_cache"

    ref: Mapped[str] = mapped_column(String(500), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16))  # available | missing | refused
    reason: Mapped[str] = mapped_column(Text, default="")
    local_path: Mapped[str] = mapped_column(String(1000), default="")
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))  # marketer | analyst | approver | admin
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditLog(Base):
    """Append-only record of who changed what. Rows are only ever inserted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100), index=True)
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


# -- engine, sessions, migrations ------------------------------------------------------------------------------

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer: pages poll while jobs write progress
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# libpq's own defaults wait for ever on a server that accepts the connection and never answers (a hung server, a
# half-open path through a firewall), and notice a dead peer on an idle connection only after the kernel's two hours.
# A worker stuck there would neither fail its job nor hand it on; with these it gets an error that
# ``jobs.store.retry_database`` waits out like a restart. A URL's own query parameters (``?connect_timeout=5``) win.
PG_NETWORK_LIMITS = {
    "connect_timeout": 10,  # seconds for the whole connection start (TCP, TLS, authentication)
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,  # dead idle peer: ~60 s
    "tcp_user_timeout": 60_000,  # ms that sent data may stay unacknowledged before the connection is dropped
}


def _network_limits(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    return {key: value for key, value in PG_NETWORK_LIMITS.items() if key not in parsed.query}


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = settings.db_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                settings.workspace_dir.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, connect_args=_network_limits(url))
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, or after a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


_migrated: set[str] = set()


def init_db(settings: Settings | None = None) -> Engine:
    """Create the workspace if needed and apply every pending migration. Cheap to call again."""
    from alembic import command

    settings = settings or get_settings()
    engine = get_engine(settings)
    key = settings.db_url
    if key in _migrated:
        return engine
    cfg = _alembic_config(engine)
    # The app, a worker and the CLI may start together on a new workspace: migrate one at a time.
    with _migration_lock(settings), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7212001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    _migrated.add(key)
    return engine


@contextlib.contextmanager
def _migration_lock(settings: Settings) -> Iterator[None]:
    """An exclusive file lock in the workspace (SQLite); other databases lock inside the transaction."""
    if not settings.db_url.startswith("sqlite"):
        yield
        return
    import fcntl

    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.path(".migrate.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def current_revisions(settings: Settings | None = None) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with get_engine(settings).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(create_engine("sqlite://"))
    return set(ScriptDirectory.from_config(cfg).get_heads())


@contextlib.contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(bind=init_db(settings), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def write_lock(session: Session, name: str) -> None:
    """Serialise the rest of this transaction with every other one that takes the lock ``name``: a check and the
    write it allows ("no users yet" → insert the first admin) then see each other's commits.

    SQLite: BEGIN IMMEDIATE, the database's one write lock, taken before the check reads (a plain transaction
    starts as a reader, and two readers would both see "no users"); call it before the session writes anything
    (when it already has, it holds that lock). PostgreSQL: a transaction-scoped advisory lock per ``name``."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        if not conn.connection.dbapi_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        import zlib

        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(name.encode()),))


def audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: Any = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one row to the audit log inside the caller's transaction, so the change and its record commit together."""
    row = AuditLog(actor=actor, action=action, entity=entity, entity_id=str(entity_id), before=before, after=after)
    session.add(row)
    return row


def mark_migrated(settings: Settings | None = None) -> None:
    """Tell this process that the database is already at every head (a test workspace copied from a migrated
    one): ``init_db`` then skips the Alembic run."""
    _migrated.add((settings or get_settings()).db_url)


def reset_for_tests() -> None:
    dispose_engines()
    _migrated.clear()
