"""`workbench users` and `workbench review`: accounts from the command line, then the queue, a decision and an
export as a signed-in approver; wrong passwords and roles are refused."""
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench import auth
from workbench.auth import authenticate, get_user
from helpers.review import PASSWORD, make_generation

runner = CliRunner()


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


def _run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_users_add_list_set_role_reset_password(workspace):
    assert "no users yet" in _run("users", "list").output
    out = _run("users", "add", "Adam", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")  # the first account
    assert out.exit_code == 0 and "added adam (admin)" in out.output
    out = _run("--as", "adam", "users", "add", "Ana", "--role", "approver", "--display-name", "Ana A.",
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert out.exit_code == 0 and "added ana (approver)" in out.output
    assert _run("--as", "adam", "users", "add", "sso@x.example", "--role", "marketer", "--no-password").exit_code == 0
    listing = _run("--as", "adam", "users", "list").output
    assert "ana" in listing and "approver" in listing and "sso@x.example" in listing and "oidc" in listing
    bad = _run("--as", "adam", "users", "add", "bob", "--role", "owner", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert bad.exit_code == 2 and "role 'owner' is not one of" in bad.output
    assert _run("--as", "adam", "users", "set-role", "ana", "analyst").output.strip() == "ana is now analyst"
    assert get_user("ana").role == "analyst"
    assert _run("--as", "adam", "users", "reset-password", "ana",
                input="another passphrase\nanother passphrase\n").exit_code == 0
    assert authenticate("ana", "another passphrase").username == "ana"
    assert _run("--as", "adam", "users", "set-role", "ghost", "admin").exit_code == 2


def test_once_accounts_exist_the_cli_acts_as_a_named_account_whose_role_is_checked_and_audited(workspace,
                                                                                              monkeypatch):
    """#23 item 3: not an all-powerful system actor once the workspace has accounts."""
    from workbench.db import AuditLog, session_scope
    from workbench.settings import reload_settings

    assert _run("users", "add", "adam", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    anonymous = _run("users", "add", "eve", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert anonymous.exit_code == 2 and "run the command as one of them" in anonymous.output
    assert _run("--as", "adam", "users", "add", "mia", "--role", "marketer",
                input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    as_marketer = _run("--as", "mia", "users", "add", "eve", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert as_marketer.exit_code == 2 and "needs the role admin" in as_marketer.output  # mia's own role is checked
    assert _run("--as", "ghost", "users", "list").exit_code == 2
    monkeypatch.setenv("WORKBENCH_CLI_USER", "adam")  # the environment names the account too
    reload_settings()
    assert _run("users", "set-role", "mia", "analyst").exit_code == 0
    monkeypatch.delenv("WORKBENCH_CLI_USER")
    monkeypatch.setenv("WORKBENCH_CLI_AS_SYSTEM", "true")  # an operator script
    reload_settings()
    assert _run("users", "set-role", "mia", "marketer").exit_code == 0
    with session_scope() as s:
        rows = s.query(AuditLog).filter(AuditLog.action.in_(["user.create", "user.set_role"])).order_by(AuditLog.id)
        actors = [(a.actor, a.action) for a in rows]
    assert [a for a, _ in actors][-3:] == ["adam", "adam", f"cli:{__import__('getpass').getuser()}"]
    assert "eve" not in {u.username for u in auth.list_users("adam")}


def test_review_queue_decide_export_as_a_signed_in_user(workspace):
    _run("users", "add", "ana", "--role", "approver", input=f"{PASSWORD}\n{PASSWORD}\n")
    _run("--as", "ana", "users", "list")
    auth.add_user(auth.system_actor(), "mia", "marketer", password=PASSWORD)
    gen = make_generation(clip_score=0.1)
    queue = _run("review", "queue", "--user", "ana", input=f"{PASSWORD}\n")
    assert queue.exit_code == 0 and f"{gen:>6}  seen=0" in queue.output and "CLIP 0.100 below 0.250" in queue.output
    wrong = _run("review", "decide", str(gen), "approve", "--user", "ana", input="nope nope\n")
    assert wrong.exit_code == 2 and "wrong username or password" in wrong.output
    refused = _run("review", "decide", str(gen), "approve", "--user", "mia", input=f"{PASSWORD}\n")
    assert refused.exit_code == 2 and "'decide' needs the role approver" in refused.output
    ok = runner.invoke(app, ["review", "decide", str(gen), "approve", "--user", "ana", "--tag", "hero"],
                       env={"WORKBENCH_PASSWORD": PASSWORD})
    assert ok.exit_code == 0 and f"image {gen}: approved (decision #1)" in ok.output
    again = _run("review", "decide", str(gen), "reject", "--user", "ana", input=f"{PASSWORD}\n")
    assert again.exit_code == 2 and "it is now approved by ana" in again.output
    export = _run("review", "export", "--user", "ana", "--brand", "northwind", input=f"{PASSWORD}\n")
    assert export.exit_code == 0 and "1 images ->" in export.output and ".zip" in export.output
