"""The review and sign-up races on PostgreSQL (issue #23 item 1): the same tests that run on SQLite in
test_review_decisions.py and test_review_auth.py, on a fresh PostgreSQL database each (``postgres_db``; skipped,
saying why, when no PostgreSQL is installed; .ci/run provides one). SQLite serialises writers with one database
lock; PostgreSQL lets them run at once, so these are the cases where a lost or duplicated decision, or two first
admins, would show."""
from sqlalchemy import select

from workbench import db
from helpers.review import make_users

# The SQLite tests themselves, run here on PostgreSQL (imported under other names so pytest does not collect twice).
from test_review_auth import test_two_first_admins_at_once_make_one_admin as _two_first_admins
from test_review_decisions import test_twenty_threads_deciding_one_image_have_exactly_one_winner as _one_winner
from test_review_decisions import test_twenty_threads_that_retry_on_conflict_lose_nothing as _lose_nothing


def _on_postgres() -> None:
    assert db.get_engine().dialect.name == "postgresql"


def test_twenty_approvers_at_once_on_postgres_have_exactly_one_winner(postgres_db):
    _on_postgres()
    _one_winner(make_users())


def test_twenty_approvers_retrying_on_postgres_lose_and_duplicate_nothing(postgres_db):
    _on_postgres()
    _lose_nothing(make_users())


def test_two_first_admins_at_once_on_postgres_make_one_admin(postgres_db, workspace, monkeypatch):
    _on_postgres()
    _two_first_admins(workspace, monkeypatch)
    with db.session_scope() as s:
        assert [u.role for u in s.scalars(select(db.User))] == ["admin"]
