"""Review auth: the role x action matrix through the library, password hashing and sign-in, the first admin, user
management with its audit rows, the OIDC role mapping, and the append-only audit log."""
import pytest
from sqlalchemy import select, text

from workbench import db
from workbench.auth import (AuthError, OidcRoleMap, PermissionDenied, add_user, authenticate, create_first_admin,
                            hash_password, list_users, needs_first_admin, oidc_sign_in, require, reset_password,
                            set_active, set_role, system_actor, verify_password)
from workbench.review import (QueueFilter, audit_trail, bulk_decide, decide, export_approved, list_queue, record_check,
                              request_changes, set_policy)
from workbench import auth
from helpers.review import PASSWORD, make_generation, make_users

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


# The other capabilities' entry points, one representative call per permission (also written out by hand).
CAPABILITY_ALLOWED = {
    "datasets: import": {"marketer", "analyst", "admin"},
    "datasets: split": {"marketer", "analyst", "admin"},
    "prompts: save a batch": {"marketer", "admin"},
    "prompts: save a template": {"marketer", "admin"},
    "settings: save a brand profile": {"admin"},
    "train: start a run": {"marketer", "analyst", "admin"},
    "generate: queue a batch": {"marketer"},
    "evaluate: create an evaluation": {"analyst"},
}


def _capability_actions(tmp_path):
    """Each call finishes, or fails for a reason other than the role (which proves the role check let it through)."""
    from workbench.data.importer import import_dataset
    from workbench.data.split import split_dataset
    from helpers.data import image_bytes, write
    from workbench.evaluate.config import EvalConfig, ImageSet
    from workbench.evaluate.run import create_evaluation
    from workbench.generate.batch import enqueue_batch
    from workbench.prompts import BatchSpec, expand_batch, load_library, save_batch, save_brand_text, save_template_text
    from workbench.prompts.library import source_text
    from workbench.train import runs
    from workbench.train.config import build_config

    write(tmp_path / "photos" / "a.png", image_bytes((64, 64)))
    write(tmp_path / "photos" / "a.txt", b"a red tee")
    lib = load_library()
    batch = expand_batch(lib, BatchSpec("t-shirt", slots={"color": ["navy"]}, brand="northwind"))
    template = "name: t-shirt-copy\n" + source_text(lib.templates["t-shirt"].path)
    brand = "name: northwind-copy\n" + source_text(lib.brands["northwind"].path)
    no_data = build_config({"pretrained_model_name_or_path": str(tmp_path / "no-model"), "dataset": "999"})
    photos = import_dataset(OPS, tmp_path / "photos", name="photos", workers=1).dataset_id
    n = iter(range(1000))

    def train(u):
        with pytest.raises(runs.RunError, match="dataset 999"):  # preflight runs after the role check
            runs.start(u, no_data, queue=False)

    return {
        "datasets: import": lambda u: import_dataset(u, tmp_path / "photos", name="photos", workers=1),
        "datasets: split": lambda u: split_dataset(u, photos, 0.5, 0.0),
        "prompts: save a batch": lambda u: save_batch(u, batch, f"batch {next(n)}"),
        "prompts: save a template": lambda u: save_template_text(u, template),
        "settings: save a brand profile": lambda u: save_brand_text(u, brand),
        "train: start a run": train,
        "generate: queue a batch": lambda u: enqueue_batch(u, {"spec": {"model": "m"}, "prompts": [{"text": "a tee"}],
                                                               "batch": "b"}, queue=False),
        "evaluate: create an evaluation": lambda u: create_evaluation(u, EvalConfig(image_sets=[ImageSet("a",
                                                                                                         batch="b")])),
    }


def test_role_action_matrix_through_the_other_capabilities(workspace, tmp_path):
    users = make_users()
    actions = _capability_actions(tmp_path)
    assert set(actions) == set(CAPABILITY_ALLOWED)
    for role, name in users.items():
        for action, call in actions.items():
            if role in CAPABILITY_ALLOWED[action]:
                call(name)
            else:
                with pytest.raises(PermissionDenied, match=f"{name} is a {role}"):
                    call(name)
    from workbench.db import Job

    with db.session_scope() as s:  # what was allowed is recorded under the user's name
        assert [(j.kind, j.created_by) for j in s.scalars(select(Job))] == [("generate", "mia")]


def test_stopping_a_job_is_checked_like_queueing_it(workspace):
    from workbench import jobs
    from workbench.data.captioning import stop_caption
    from workbench.generate.batch import enqueue_batch, stop_batch
    from workbench.generate.pipeline import GenerationError

    make_users()
    batch = enqueue_batch("mia", {"spec": {"model": "m"}, "prompts": [{"text": "a tee"}]}, queue=False)
    caption = jobs.enqueue("caption", {"dataset_id": 1}, queue=False)
    with pytest.raises(PermissionDenied, match="ari is a analyst: 'generate' needs the role marketer"):
        stop_batch("ari", batch)
    with pytest.raises(PermissionDenied, match="ana is a approver: 'datasets'"):
        stop_caption("ana", caption)
    with pytest.raises(GenerationError, match="not a generation batch"):
        stop_batch("mia", caption)
    assert jobs.get_job(batch).status == jobs.get_job(caption).status == "queued"
    assert stop_batch("mia", batch).status == stop_caption("ari", caption).status == "stopped"


def test_unknown_inactive_or_missing_users_change_nothing(workspace, tmp_path):
    from workbench.data.importer import import_dataset
    from workbench.data.store import list_datasets
    from helpers.data import image_bytes, write
    from workbench.generate.batch import enqueue_batch

    make_users()
    set_active(OPS, "mia", False)
    write(tmp_path / "photos" / "a.png", image_bytes((64, 64)))
    for who, refusal in (("ghost", "'ghost' does not exist"), ("mia", "'mia' is deactivated"), ("", "sign in first")):
        with pytest.raises(AuthError, match=refusal):
            import_dataset(who, tmp_path / "photos", workers=1)
        with pytest.raises(AuthError, match=refusal):
            enqueue_batch(who, {"spec": {"model": "m"}, "prompts": [{"text": "a tee"}]}, queue=False)
    assert list_datasets() == []
    with db.session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM jobs")) == 0
    # work a checked call already allowed (a job acting for whoever queued it) is not checked again
    assert auth.on_behalf_of("mia", "generate").can("generate")


def test_a_call_for_another_workspace_checks_the_role_in_that_workspace(workspace, tmp_path):
    """A library call given ``settings=`` for another workspace reads the actor from that workspace's database, where
    the same name may be someone else (or no one), not from the default workspace's."""
    from workbench.data.importer import import_dataset
    from workbench.data.split import split_dataset
    from workbench.data.store import delete_dataset, get_dataset, list_datasets
    from helpers.data import image_bytes, write
    from workbench.prompts import load_library, save_brand_text
    from workbench.prompts.library import source_text
    from workbench.settings import Settings

    make_users()  # the default workspace: mia is a marketer, adam an admin, no bea
    other = Settings(workspace=tmp_path / "other")
    with db.session_scope(other) as s:
        s.add_all([db.User(username="mia", role="approver"), db.User(username="bea", role="marketer"),
                   db.User(username="adam", role="admin", active=False)])
    write(tmp_path / "photos" / "a.png", image_bytes((64, 64)))

    ds = import_dataset("bea", tmp_path / "photos", name="photos", workers=1, settings=other).dataset_id
    assert get_dataset(ds, other).created_by == "bea" and list_datasets() == []
    assert split_dataset("bea", ds, 0.0, 0.0, settings=other).counts["train"] == 1
    with pytest.raises(PermissionDenied, match="mia is a approver"):
        split_dataset("mia", ds, 0.5, 0.0, settings=other)
    with pytest.raises(PermissionDenied, match="mia is a approver"):
        delete_dataset("mia", ds, settings=other)
    assert get_dataset(ds, other).split_config["val"] == 0.0
    brand = "name: northwind-copy\n" + source_text(load_library().brands["northwind"].path)
    with pytest.raises(AuthError, match="'adam' is deactivated"):
        save_brand_text("adam", brand, other)
    assert not (tmp_path / "other" / "prompt_templates").exists()


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
    assert oidc_sign_in({"email": "tom@northwind.example", "email_verified": True}, role_map).role == "marketer"
    with pytest.raises(AuthError, match="no role in this workspace"):
        oidc_sign_in({"email": "eve@elsewhere.example", "email_verified": True}, role_map)
    with pytest.raises(AuthError, match="not verified"):
        oidc_sign_in({"email": "x@northwind.example", "email_verified": False}, role_map)
    with pytest.raises(AuthError, match="no email claim"):
        oidc_sign_in({"sub": "123"}, role_map)
    set_role(OPS, "tom@northwind.example", "analyst")
    assert oidc_sign_in({"email": "tom@northwind.example", "email_verified": "true"}, role_map).role == "analyst"
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


def test_audit_log_rows_cannot_be_replaced(workspace):
    """SQLite's REPLACE conflict path deletes the old row without firing the DELETE trigger: refused all the same."""
    make_users()
    with db.session_scope() as s:
        first = s.scalars(select(db.AuditLog).order_by(db.AuditLog.id)).first()
        before = (first.id, first.actor, first.action, first.after)
    for verb in ("INSERT OR REPLACE", "REPLACE"):
        with pytest.raises(Exception, match="append-only"):
            with db.session_scope() as s:
                s.execute(text(f"{verb} INTO audit_log (id, at, actor, action, entity, entity_id) "
                               "VALUES (:id, '2020-01-01 00:00:00', 'mallory', 'user.login', 'user', '')"),
                          {"id": before[0]})
    with db.session_scope() as s:
        row = s.get(db.AuditLog, before[0])
        assert (row.id, row.actor, row.action, row.after) == before
        assert "mallory" not in s.scalars(select(db.AuditLog.actor)).all()


def _locked_out(name: str, password: str, client: str = "10.0.0.1") -> str:
    with pytest.raises(AuthError) as exc:
        authenticate(name, password, client=client)
    return str(exc.value)


def _audit_actions(action: str) -> list[tuple[str, str]]:
    with db.session_scope() as s:
        return [(r.actor, r.entity_id) for r in s.scalars(select(db.AuditLog).where(db.AuditLog.action == action))]


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(workspace, monkeypatch):
    from workbench.auth import signin

    make_users()
    now = [signin.utcnow()]
    monkeypatch.setattr(signin, "utcnow", lambda: now[0])
    for _ in range(5):
        _locked_out("ana", "wrong password")
    message = _locked_out("ana", PASSWORD)  # the right password, too late
    assert "wrong username or password, or the account is locked for 15 minutes" in message
    assert _locked_out("ana", PASSWORD, client="10.0.0.2") == message  # per account, whichever client
    assert [actor for actor, _ in _audit_actions("user.locked")] == ["ana"]
    assert len(_audit_actions("user.login_failed")) == 5  # attempts while locked add no rows
    now[0] += signin.LOCKOUT
    assert authenticate("ana", PASSWORD, client="10.0.0.1").username == "ana"
    assert authenticate("mia", PASSWORD, client="10.0.0.1").username == "mia"  # other accounts were never locked


def test_a_lockout_does_not_reveal_whether_the_account_exists(workspace):
    make_users()
    messages = set()
    for name in ("ana", "nobody"):
        for _ in range(5):
            _locked_out(name, "wrong password")
        messages.add(_locked_out(name, "wrong password"))
    assert len(messages) == 1


def test_twenty_failures_from_one_client_lock_that_client(workspace):
    make_users()
    for i in range(20):
        _locked_out(f"guess{i}", "wrong password", client="203.0.113.7")
    assert "locked" in _locked_out("mia", PASSWORD, client="203.0.113.7")
    assert authenticate("mia", PASSWORD, client="198.51.100.1").username == "mia"
    assert [e for _, e in _audit_actions("signin.client_locked")] == ["203.0.113.7"]


def test_one_attacker_adds_a_bounded_number_of_rows(workspace):
    """Guessing many names from one client: the audit log and the throttle table stop growing at the client limit."""
    from workbench.auth import signin

    make_users()
    for i in range(signin.CLIENT_LIMIT + 10):
        with pytest.raises(AuthError):
            authenticate(f"user{i}", "wrong password", client="203.0.113.8")
    assert len(_audit_actions("user.login_failed")) == signin.CLIENT_LIMIT
    with db.session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM signin_throttle")) <= signin.CLIENT_LIMIT + 1


def test_the_throttle_table_is_pruned_and_capped(workspace, monkeypatch):
    from workbench.auth import signin

    monkeypatch.setattr(signin, "MAX_ROWS", 10)
    now = [signin.utcnow()]
    monkeypatch.setattr(signin, "utcnow", lambda: now[0])
    for i in range(15):
        with pytest.raises(AuthError):
            authenticate(f"user{i}", "wrong password", client=f"198.51.100.{i}")
    with db.session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM signin_throttle")) <= 12
    now[0] += signin.WINDOW + signin.LOCKOUT
    with pytest.raises(AuthError):
        authenticate("late", "wrong password", client="198.51.100.200")
    with db.session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM signin_throttle")) == 2  # what expired is gone


@pytest.mark.parametrize("weak", ["password", "12345678", "qwertyuiop", "iloveyou2", "letmein123"])
def test_common_passwords_are_refused_with_advice(workspace, weak):
    make_users()
    with pytest.raises(AuthError, match="password: too easy to guess") as exc:
        add_user(OPS, "bob", "marketer", password=weak)
    assert "common" in str(exc.value) or "Add another word" in str(exc.value)
    with pytest.raises(AuthError, match="too easy to guess"):
        reset_password(OPS, "mia", weak)
    with pytest.raises(AuthError, match="too easy to guess"):
        create_first_admin("boss", weak) if needs_first_admin() else hash_password(weak)


def test_a_password_made_of_the_username_is_refused(workspace):
    make_users()
    with pytest.raises(AuthError, match="too easy to guess"):
        add_user(OPS, "northwind-ops", "marketer", password="northwind-ops1")


def test_the_published_demo_password_passes_the_policy():
    from workbench.demo import DEMO_PASSWORD, DEMO_USERS
    from workbench.auth.signin import check_password_strength

    for name in DEMO_USERS:
        check_password_strength(DEMO_PASSWORD, name)


@pytest.mark.parametrize("name", ["cli", "demo", "system", "setup", "oidc", "evaluation", "System"])
def test_usernames_of_system_actors_are_reserved(workspace, name):
    with pytest.raises(AuthError, match="reserved"):
        create_first_admin(name, PASSWORD)
    add_user(OPS, "boss", "admin", password=PASSWORD)
    with pytest.raises(AuthError, match="reserved"):
        add_user(OPS, name, "marketer", password=PASSWORD)


@pytest.mark.parametrize("verified", [None, "false", "False", 0, "yes", False])
def test_an_unverified_oidc_address_gets_no_role(workspace, verified):
    role_map = OidcRoleMap.from_config({"@northwind.example": "marketer", "default": "analyst"})
    claims = {"email": "eve@northwind.example"}
    if verified is not None:
        claims["email_verified"] = verified
    with pytest.raises(AuthError, match="not verified"):
        oidc_sign_in(claims, role_map)
    assert oidc_sign_in({"email": "tom@northwind.example", "email_verified": "true"}, role_map).role == "marketer"
    with pytest.raises(AuthError, match="not verified"):  # nor signs in to the account of that address
        oidc_sign_in({**claims, "email": "tom@northwind.example"}, role_map)
    with db.session_scope() as s:
        assert s.scalars(select(db.User.username)).all() == ["tom@northwind.example"]


def test_two_first_admins_at_once_make_one_admin(workspace, monkeypatch):
    """The "no users yet" check and the insert are one locked transaction: a second form submitted while the first
    is between its check and its insert waits, then sees the first admin."""
    import threading
    import time

    insert = auth._insert

    def slow_insert(*args, **kwargs):
        time.sleep(0.3)  # between the check and the insert
        return insert(*args, **kwargs)

    monkeypatch.setattr(auth, "_insert", slow_insert)
    db.init_db()
    outcomes = []

    def sign_up(name):
        try:
            outcomes.append(create_first_admin(name, PASSWORD).username)
        except PermissionDenied as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=sign_up, args=(name,)) for name in ("owner", "mallory")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session_scope() as s:
        assert len(s.scalars(select(db.User.username)).all()) == 1
    assert sum("already has users" in o for o in outcomes) == 1
