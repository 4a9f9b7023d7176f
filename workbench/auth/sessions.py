"""Browser sessions that survive a reload, a new tab and a bookmark: a random token in a cookie, its record here.

A sign-in (password, first admin) starts a session: ``start_session(user, client)`` returns a fresh token of 256
random bits, and only its SHA-256 is stored (``auth_sessions``), so a copy of the database holds nothing that signs
anyone in. The page sets the token as a cookie; on a reload the cookie comes back with the request, and
``resume_session(token)`` returns the user while the session is alive:

    not revoked     ``end_session(token)`` (sign-out) and ``end_user_sessions(username)`` (deactivation, a new
                    password) revoke the record, so signing out in one tab signs out every tab and device using it;
    not idle        last used within ``Settings.session_idle_hours`` (default 8 h), checked on every page run;
    not too old     started within ``Settings.session_max_days`` (default 7 days), however busy;
    a live account  the user still exists and is active (the role is read fresh, as everywhere).

The token is an opaque reference, not a signed claim: everything that decides is in the record, so ending a session
takes effect at the next page run in every tab. Expired and revoked records are pruned at each new sign-in.

    token = start_session(user, client="10.1.2.3")
    name = resume_session(token)          # "ana", or None (unknown, revoked, idle, too old, account gone)
    end_session(token)
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import DateTime, Integer, String, delete, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workbench.db import Base, User, audit, session_scope, utcnow
from workbench.settings import Settings, get_settings

COOKIE = "workbench_session"
TOKEN_BYTES = 32
# How often last_used_at is written while a session is in use (each page run would be a write per click).
TOUCH_EVERY = dt.timedelta(minutes=1)


class AuthSession(Base):
    """One signed-in browser (migration 0018). ``token_hash``: SHA-256 of the cookie's token, never the token."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    client: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _limits(settings: Settings | None) -> tuple[dt.timedelta, dt.timedelta]:
    s = settings or get_settings()
    return dt.timedelta(hours=s.session_idle_hours), dt.timedelta(days=s.session_max_days)


def max_age_seconds(settings: Settings | None = None) -> int:
    """The cookie's lifetime: the session's absolute limit (the browser drops it then; the record decides earlier)."""
    return int(_limits(settings)[1].total_seconds())


def start_session(username: str, client: str = "", settings: Settings | None = None) -> str:
    """A new session for ``username`` (who has just proved who they are); returns the token for the cookie."""
    idle, longest = _limits(settings)
    now = utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with session_scope(settings) as s:
        s.execute(delete(AuthSession).where(or_(AuthSession.expires_at <= now, AuthSession.revoked_at.is_not(None),
                                                AuthSession.last_used_at <= now - idle)))
        s.add(AuthSession(token_hash=token_hash(token), username=username.strip().lower(), client=str(client)[:200],
                          created_at=now, last_used_at=now, expires_at=now + longest))
    return token


def resume_session(token: str | None, settings: Settings | None = None) -> str | None:
    """The username of a live session with an active account, or None. Using it counts as activity for the idle
    limit."""
    if not token or len(token) > 200:
        return None
    idle, _ = _limits(settings)
    now = utcnow()
    with session_scope(settings) as s:
        row = s.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
        if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_used_at <= now - idle:
            return None
        user = s.scalar(select(User).where(User.username == row.username))
        if user is None or not user.active:
            return None
        if now - row.last_used_at >= TOUCH_EVERY:
            row.last_used_at = now
        return user.username


def end_session(token: str | None, settings: Settings | None = None) -> bool:
    """Sign-out: revoke the session of ``token`` (every tab using it is signed out at its next run)."""
    if not token:
        return False
    with session_scope(settings) as s:
        row = s.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token),
                                                 AuthSession.revoked_at.is_(None)))
        if row is None:
            return False
        row.revoked_at = utcnow()
        audit(s, row.username, "user.logout", "user", row.username, after={"client": row.client})
        return True


def end_user_sessions(username: str, settings: Settings | None = None, session: Session | None = None) -> int:
    """Revoke every live session of ``username`` (all their browsers), in ``session``'s transaction when given;
    returns how many."""
    statement = update(AuthSession).where(AuthSession.username == username.strip().lower(),
                                          AuthSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    if session is not None:
        return session.execute(statement).rowcount or 0
    with session_scope(settings) as s:
        return s.execute(statement).rowcount or 0
