"""Review auth: the role x action matrix through the library, password hashing and sign-in, the first admin, user
management with its audit rows, the OIDC role mapping, and the append-only audit log."""
import pytest
from sqlalchemy import select, text

from workbench import db
from workbench.review import (AuthError, OidcRoleMap, PermissionDenied, QueueFilter, add_user, audit_trail,
                              authenticate, bulk_decide, create_first_admin, decide, export_approved, hash_password,
                              list_queue, list_users, needs_first_admin, oidc_sign_in, record_check, request_changes,
                              require, reset_password, set_active, set_policy, set_role, system_actor,
                              verify_password)
from workbench.review import auth
from workbench.review.testing import PASSWORD, make_generation, make_users

OPS = system_actor("test")

# Written out by hand (not read from PERMISSIONS): which role may do what.
ALLOWED = {
    "add_user": {"admin"},
    "set_policy": {"admin"},
    "decide": {"approver"},
    "bulk_decide": {"approver"},
    "request_changes": {"approver"},
    "export": {"approver"},
    "record_check": {"analyst"},
    "full_queue": {"analyst", "approver", "admin"},
    "audit_trail": {"analyst", "approver", "admin"},
}


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


def _actions(gen_id: int):
    n = iter(range(1000))
    return {
        "add_user": lambda u: add_user(u, f"new{next(n)}", "marketer", password=PASSWORD),
        "set_policy": lambda u: set_policy(u, "northwind", on_clip_fail="hold"),
        "decide": lambda u: decide(u, make_generation(), "reject", comment="no"),
        "bulk_decide": lambda u: _ok_bulk(bulk_decide(u, {make_generation(): 0}, "approve")),
        "request_changes": lambda u: request_changes(u, make_generation(), "bigger logo"),
        "export": lambda u: export_approved(u, brand="northwind"),
        "record_check": lambda u: record_check(u, gen_id, "ocr", True, {"read": "NORTHWIND"}),
        "full_queue": lambda u: _full(list_queue(u, QueueFilter(status=None))),
        "audit_trail": lambda u: audit_trail(u),
    }


def _ok_bulk(result):
    assert len(result.decided) == 1, result.summary


def _full(items):
    if not any(i.created_by == "someone-else" for i in items):  # a marketer's list holds their own images only
        raise PermissionDenied("own images only")


def test_role_action_matrix_through_the_library(workspace):
    users = make_users()
    approved = make_generation(created_by="someone-else")
    decide(users["approver"], approved, "approve")  # so export has something to zip
    actions = _actions(approved)
    for role, name in users.items():
        for action, call in actions.items():
            if role in ALLOWED[action]:
                call(name)
            else:
                with pytest.raises(PermissionDenied):
                    call(name)


def test_a_role_change_or_deactivation_counts_on_the_next_call(workspace):
    users = make_users()
    gen = make_generation()
    set_role(OPS, "ana", "analyst")
    with pytest.raises(PermissionDenied, match="ana is a analyst: 'decide' needs the role approver"):
        decide("ana", gen, "approve")
    set_role(OPS, "ana", "approver")
    set_active(OPS, "ana", False)
    with pytest.raises(AuthError, match="deactivated"):
        decide("ana", gen, "approve")
    with pytest.raises(AuthError, match="sign in first"):
        require("", "decide")
    with pytest.raises(AuthError, match="'ghost' does not exist"):
        require("ghost", "decide")
    with pytest.raises(ValueError, match="permission 'fly'"):
        require(users["admin"], "fly")


def test_password_hashing(monkeypatch):
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$2b$04$") and "s3cret" not in hashed
    assert verify_password("s3cret-enough", hashed)
    assert not verify_password("s3cret-enougH", hashed)
    assert not verify_password("s3cret-enough", "not-a-hash") and not verify_password("", hashed)
    assert hash_password("s3cret-enough") != hashed  # salted
    with pytest.raises(AuthError, match="at least 8"):
        hash_password("short")
    with pytest.raises(AuthError, match="at most 72 bytes"):
        hash_password("é" * 40)


def test_sign_in_and_its_audit_rows(workspace):
    make_users()
    assert authenticate("ANA", PASSWORD).role == "approver"  # usernames are case-insensitive
    for name, pw in (("ana", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(AuthError, match="wrong username or password"):
            authenticate(name, pw)
    set_active(OPS, "ana", False)
    with pytest.raises(AuthError):
        authenticate("ana", PASSWORD)
    reset_password(OPS, "mia", "a new passphrase")
    assert authenticate("mia", "a new passphrase").username == "mia"
    with pytest.raises(AuthError):
        authenticate("mia", PASSWORD)
    actions = [(e.actor, e.action) for e in reversed(audit_trail("adam", entity="user"))]
    assert actions[4:] == [("ana", "user.login"), ("ana", "user.login_failed"), ("nobody", "user.login_failed"),
                           ("test", "user.deactivate"), ("ana", "user.login_failed"), ("test", "user.reset_password"),
                           ("mia", "user.login"), ("mia", "user.login_failed")]
    with db.session_scope() as s:
        rows = s.scalars(select(db.AuditLog).where(db.AuditLog.action == "user.reset_password")).all()
        assert len(rows) == 1 and rows[0].before is None and rows[0].after is None  # never a hash in the log


def test_first_run_creates_one_admin_then_refuses(workspace):
    assert needs_first_admin()
    admin = create_first_admin("Boss", "first admin pw", display_name="The Boss")
    assert (admin.username, admin.role) == ("boss", "admin") and not needs_first_admin()
    with pytest.raises(PermissionDenied, match="already has users"):
        create_first_admin("eve", "another pw 123")
    assert [u.username for u in list_users("boss")] == ["boss"]


def test_no_first_run_form_once_anyone_exists(workspace):
    add_user(OPS, "ana", "approver")  # the CLI made an approver, no admin yet
    assert not needs_first_admin()
    with pytest.raises(PermissionDenied):
        create_first_admin("eve", "i am the admin now")


def test_user_management_values_and_the_last_admin(workspace):
    make_users()
    with pytest.raises(AuthError, match="username 'x y'"):
        add_user(OPS, "x y", "marketer", password=PASSWORD)
    with pytest.raises(AuthError, match="role 'boss' is not one of"):
        add_user(OPS, "bob", "boss", password=PASSWORD)
    with pytest.raises(AuthError, match="'ana' is taken"):
        add_user(OPS, "Ana", "marketer", password=PASSWORD)
    with pytest.raises(AuthError, match="last active admin"):
        set_role(OPS, "adam", "approver")
    with pytest.raises(AuthError, match="last active admin"):
        set_active(OPS, "adam", False)
    set_role(OPS, "ana", "admin")
    assert set_role(OPS, "adam", "approver").role == "approver"
    with db.session_scope() as s:
        row = s.scalars(select(db.AuditLog).where(db.AuditLog.action == "user.set_role")).all()[-1]
        assert (row.before, row.after) == ({"role": "admin"}, {"role": "approver"})


def test_oidc_identities_map_to_roles_and_then_the_database_decides(workspace):
    role_map = OidcRoleMap.from_config({"ana@northwind.example": "approver", "@northwind.example": "marketer"})
    ana = oidc_sign_in({"email": "Ana@Northwind.example", "email_verified": True, "name": "Ana"}, role_map)
    assert (ana.username, ana.role, ana.source, ana.display_name) == ("ana@northwind.example", "approver", "oidc",
                                                                      "Ana")
    assert oidc_sign_in({"email": "tom@northwind.example"}, role_map).role == "marketer"
    with pytest.raises(AuthError, match="no role in this workspace"):
        oidc_sign_in({"email": "eve@elsewhere.example"}, role_map)
    with pytest.raises(AuthError, match="not verified"):
        oidc_sign_in({"email": "x@northwind.example", "email_verified": False}, role_map)
    with pytest.raises(AuthError, match="no email claim"):
        oidc_sign_in({"sub": "123"}, role_map)
    set_role(OPS, "tom@northwind.example", "analyst")
    assert oidc_sign_in({"email": "tom@northwind.example"}, role_map).role == "analyst"
    with pytest.raises(AuthError):  # an OIDC account has no password to sign in with
        authenticate("tom@northwind.example", "anything at all")
    assert OidcRoleMap.from_config({"default": "analyst"}).role_for("any@where.example") == "analyst"
    with pytest.raises(AuthError, match="must be one of"):
        OidcRoleMap.from_config({"@x.example": "owner"})
    with pytest.raises(AuthError, match="write an address"):
        OidcRoleMap.from_config({"northwind": "marketer"})


def test_audit_log_is_append_only(workspace):
    make_users()
    with db.session_scope() as s:
        assert s.scalar(select(db.AuditLog.id).limit(1)) is not None
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with db.session_scope() as s:
                s.execute(text(statement))
    with pytest.raises(Exception, match="append-only"):
        with db.session_scope() as s:
            row = s.scalars(select(db.AuditLog)).first()
            row.after = {"forged": True}
    with db.session_scope() as s:
        assert "mallory" not in s.scalars(select(db.AuditLog.actor)).all()
