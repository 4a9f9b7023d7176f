"""Sign-in throttling and the password policy, used by ``workbench.auth`` (``authenticate``, ``hash_password``).

Throttling: every password attempt is counted against the account name (whether or not it exists, so a lockout tells
nothing about which accounts do) and against the client (its IP address in the app, ``"cli"`` for the command line):

    ACCOUNT_LIMIT attempts that failed within WINDOW lock the account name for LOCKOUT (an audit row "user.locked");
    CLIENT_LIMIT failures from one client within WINDOW lock that client (an audit row "signin.client_locked").

While a name or a client is locked, attempts are refused without checking the password and without writing anything,
so one attacker adds at most CLIENT_LIMIT failure rows to the audit log per window. An attempt is counted before its
password is checked (and given back when it was right): parallel attempts cannot slip past the limit. The counters
are one row per key in ``signin_throttle``, expired rows pruned on every attempt, and at most MAX_ROWS rows (the
oldest unlocked ones go first).

Passwords: at least MIN_PASSWORD_LENGTH characters, at most MAX_PASSWORD_BYTES bytes, and not easy to guess: zxcvbn
(a list of common passwords, words, names, keyboard patterns, dates; the user name counts as a known word) must
score it at least MIN_PASSWORD_SCORE of 4; its advice is in the error.

    check_password_strength("correct horse battery", "ana")    # returns the password, or raises AuthError
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import DateTime, Integer, String, delete, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workbench.db import Base, audit, utcnow, write_lock

ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
WINDOW = dt.timedelta(minutes=15)
LOCKOUT = dt.timedelta(minutes=15)
MAX_ROWS = 10_000

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt reads at most 72 bytes; longer would be silently cut, so it is refused
MIN_PASSWORD_SCORE = 2  # zxcvbn: 0 too guessable, 1 very guessable, 2 somewhat guessable (~10^8 guesses), 3, 4

WRONG = "wrong username or password (or the account is deactivated or locked)"


class SigninThrottle(Base):
    """Failed sign-ins per key (``user:<name>`` or ``client:<address>``) in the current window (migration 0009)."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class Attempt:
    """An attempt let through by ``begin``: its keys, to settle with ``succeeded`` or ``failed``."""

    username: str
    client: str

    @property
    def keys(self) -> dict[str, int]:
        return {f"user:{self.username}": ACCOUNT_LIMIT, f"client:{self.client}": CLIENT_LIMIT}


def locked_message(until: dt.datetime, now: dt.datetime) -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return f"wrong username or password, or the account is locked for {minutes} minutes: try again later"


class Locked(Exception):
    """The account name or the client is locked (the message says for how long, not which)."""


def begin(s: Session, username: str, client: str) -> Attempt:
    """Count one attempt for ``username`` from ``client`` in its own transaction, or raise Locked (nothing written)."""
    now = utcnow()
    attempt = Attempt(username[:200], str(client or "unknown")[:200])
    write_lock(s, "signin")
    _prune(s, now)
    rows = {k: s.get(SigninThrottle, k) for k in attempt.keys}
    for key, limit in attempt.keys.items():
        row = rows[key]
        if row is None:
            continue
        if row.locked_until is not None and row.locked_until > now:
            raise Locked(locked_message(row.locked_until, now))
        if row.window_start + WINDOW <= now or row.locked_until is not None:  # a new window (or the lock is over)
            row.failures, row.window_start, row.locked_until = 0, now, None
        if row.failures >= limit:  # attempts still being checked have used up the window
            raise Locked(locked_message(row.window_start + WINDOW, now))
    for key in attempt.keys:
        row = rows[key] or SigninThrottle(key=key, failures=0, window_start=now)
        row.failures += 1
        s.add(row)
    return attempt


def succeeded(s: Session, attempt: Attempt) -> None:
    """The password was right: the account's count starts again; the client's attempt is given back."""
    write_lock(s, "signin")
    s.execute(delete(SigninThrottle).where(SigninThrottle.key == f"user:{attempt.username}"))
    row = s.get(SigninThrottle, f"client:{attempt.client}")
    if row is not None and row.failures > 0:
        row.failures -= 1


def failed(s: Session, attempt: Attempt, user_id: int | str = "") -> None:
    """The attempt failed: lock what reached its limit, with an audit row for the lockout."""
    write_lock(s, "signin")
    now = utcnow()
    for key, limit in attempt.keys.items():
        row = s.get(SigninThrottle, key)
        if row is None or row.failures < limit or row.locked_until is not None:
            continue
        row.locked_until = now + LOCKOUT
        if key.startswith("user:"):
            audit(s, attempt.username or "?", "user.locked", "user", user_id,
                  after={"failures": row.failures, "minutes": int(LOCKOUT.total_seconds() // 60),
                         "client": attempt.client})
        else:
            audit(s, "system", "signin.client_locked", "client", attempt.client,
                  after={"failures": row.failures, "minutes": int(LOCKOUT.total_seconds() // 60)})


def _prune(s: Session, now: dt.datetime) -> None:
    """Drop counters whose window and lock are over; beyond MAX_ROWS, the oldest unlocked ones (then any)."""
    s.execute(delete(SigninThrottle).where(
        SigninThrottle.window_start <= now - WINDOW,
        or_(SigninThrottle.locked_until.is_(None), SigninThrottle.locked_until <= now)))
    excess = (s.scalar(select(func.count()).select_from(SigninThrottle)) or 0) - (MAX_ROWS - 2)
    if excess > 0:
        oldest = select(SigninThrottle.key).order_by(SigninThrottle.locked_until.is_not(None),
                                                     SigninThrottle.window_start).limit(excess)
        s.execute(delete(SigninThrottle).where(SigninThrottle.key.in_(list(s.scalars(oldest)))))


# -- password policy --------------------------------------------------------------------------------------------------

def check_password_strength(password: str, *user_inputs: str) -> str:
    """The password, if it is long enough, fits bcrypt and is not easy to guess; else AuthError with advice."""
    from zxcvbn import zxcvbn

    from workbench.auth import AuthError

    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"password: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise AuthError(f"password: at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)")
    result = zxcvbn(password, user_inputs=[u for u in user_inputs if u])
    if result["score"] < MIN_PASSWORD_SCORE:
        feedback = result.get("feedback") or {}
        advice = " ".join([feedback.get("warning") or ""] + list(feedback.get("suggestions") or [])).strip()
        raise AuthError("password: too easy to guess" + (f" ({advice})" if advice else "")
                        + ": use a few uncommon words, or a longer mix that is not a name, date or keyboard pattern")
    return password
