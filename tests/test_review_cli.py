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
    out = _run("users", "add", "Ana", "--role", "approver", "--display-name", "Ana A.",
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert out.exit_code == 0 and "added ana (approver)" in out.output
    assert _run("users", "add", "sso@x.example", "--role", "marketer", "--no-password").exit_code == 0
    listing = _run("users", "list").output
    assert "ana" in listing and "approver" in listing and "sso@x.example" in listing and "oidc" in listing
    bad = _run("users", "add", "bob", "--role", "owner", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert bad.exit_code == 2 and "role 'owner' is not one of" in bad.output
    assert _run("users", "set-role", "ana", "analyst").output.strip() == "ana is now analyst"
    assert get_user("ana").role == "analyst"
    assert _run("users", "reset-password", "ana", input="another passphrase\nanother passphrase\n").exit_code == 0
    assert authenticate("ana", "another passphrase").username == "ana"
    assert _run("users", "set-role", "ghost", "admin").exit_code == 2


def test_review_queue_decide_export_as_a_signed_in_user(workspace):
    _run("users", "add", "ana", "--role", "approver", input=f"{PASSWORD}\n{PASSWORD}\n")
    _run("users", "add", "mia", "--role", "marketer", input=f"{PASSWORD}\n{PASSWORD}\n")
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
