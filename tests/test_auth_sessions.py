"""Browser sessions (workbench.auth.sessions): issue, resume, idle and absolute expiry, sign-out, deactivation, and
only a hash of the token at rest (issue #26 item 4; the browser side is tests/e2e/test_served_app.py)."""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select, text, update

from helpers.review import make_users
from workbench import auth
from workbench.auth import sessions
from workbench.auth.sessions import AuthSession, end_session, resume_session, start_session
from workbench.db import AuditLog, session_scope
from workbench.settings import reload_settings


def _age(token: str, **ago) -> None:
    """Move a session's clock back (as if it had been idle / started that long ago)."""
    with session_scope() as s:
        row = s.scalar(select(AuthSession).where(AuthSession.token_hash == sessions.token_hash(token)))
        if "idle" in ago:
            row.last_used_at -= ago["idle"]
        if "started" in ago:
            row.created_at -= ago["started"]
            row.expires_at -= ago["started"]


def test_a_session_resumes_its_user_and_keeps_only_a_hash_of_the_token(workspace):
    make_users()
    token = start_session("Ana", client="10.0.0.7")
    other = start_session("ana")
    assert token != other and len(token) >= 43  # 32 random bytes, url-safe base64
    assert resume_session(token) == "ana" and resume_session(other) == "ana"
    assert resume_session(token + "x") is None and resume_session("") is None and resume_session(None) is None
    with session_scope() as s:
        stored = [tuple(r) for r in s.execute(text("SELECT * FROM auth_sessions"))]
    assert token not in repr(stored) and other not in repr(stored)
    assert hashlib.sha256(token.encode()).hexdigest() in repr(stored)
    assert (workspace / "workbench.db").read_bytes().find(token.encode()) == -1


def test_sign_out_ends_the_session_everywhere_and_is_audited(workspace):
    make_users()
    token = start_session("mia")
    assert end_session(token) is True
    assert resume_session(token) is None
    assert end_session(token) is False  # already ended
    with session_scope() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.actor == "mia"))]
    assert "user.logout" in actions


def test_idle_and_absolute_limits_follow_the_settings(workspace, monkeypatch):
    make_users()
    idle = start_session("ari")
    _age(idle, idle=dt.timedelta(hours=7, minutes=59))
    assert resume_session(idle) == "ari"  # 8 h is the default idle limit; using it counts as activity
    _age(idle, idle=dt.timedelta(hours=7, minutes=59))
    assert resume_session(idle) == "ari"  # the previous use reset the clock: ~16 h since sign-in, 8 h idle at most
    _age(idle, idle=dt.timedelta(hours=9))
    assert resume_session(idle) is None

    old = start_session("ari")
    _age(old, started=dt.timedelta(days=7, seconds=1))
    assert resume_session(old) is None  # however busy, a week at most

    monkeypatch.setenv("WORKBENCH_SESSION_IDLE_HOURS", "0.5")
    reload_settings()
    short = start_session("ari")
    _age(short, idle=dt.timedelta(minutes=31))
    assert resume_session(short) is None
    assert sessions.max_age_seconds() == 7 * 24 * 3600


def test_deactivation_and_a_new_password_end_the_users_sessions(workspace):
    make_users()
    admin = auth.system_actor("ops")
    token, kept = start_session("mia"), start_session("ari")
    auth.set_active(admin, "mia", False)
    assert resume_session(token) is None
    auth.set_active(admin, "mia", True)
    assert resume_session(token) is None  # reactivating does not bring an ended session back
    assert resume_session(kept) == "ari"
    old, auth.BCRYPT_ROUNDS = auth.BCRYPT_ROUNDS, 4
    try:
        auth.reset_password(admin, "ari", "another horse battery staple")
    finally:
        auth.BCRYPT_ROUNDS = old
    assert resume_session(kept) is None


def test_a_deleted_account_or_expired_rows_do_not_resume_and_old_rows_are_pruned(workspace):
    make_users()
    gone = start_session("ana")
    with session_scope() as s:
        s.execute(update(AuthSession).values(username="nobody"))
    assert resume_session(gone) is None
    _age(gone, started=dt.timedelta(days=30))
    start_session("ana")  # a new sign-in prunes ended and expired records
    with session_scope() as s:
        assert s.scalar(select(AuthSession).where(AuthSession.token_hash == sessions.token_hash(gone))) is None
