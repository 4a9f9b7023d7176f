"""Users, roles and the server-side permission check.

Four roles, each allowed exactly the actions in ``PERMISSIONS``: a marketer builds prompts, generates and submits
images and sees what became of them, an analyst evaluates, an approver decides and exports, an admin manages users
and settings; marketers, analysts and admins curate datasets and train. Admin is not a superuser: deciding on images
stays with approvers and generating with marketers (an admin who must decide gives themself the role, which is
audited).

Every mutating library call starts with ``require(actor, "permission")``, in every capability, not only review:

    datasets   import, captions (edit, find/replace, prefix, caption jobs), exclusions, duplicate groups, split,
               preprocess, delete (``workbench.data``)
    prompts    save and refine prompts, save batches, save templates and scene presets (``workbench.prompts``)
    settings   save brand profiles: their forbidden terms and CLIP gate are policy, like the review policies
    train      start, stop, resume a training run; start a sweep (``workbench.train.runs``)
    generate   generate in-process, queue or stop a generation batch (``workbench.generate``)
    evaluate   create or queue an evaluation, queue a prompt suite (``workbench.evaluate``); record gate checks
    review     decide, export, manage_users, settings (policies), view_queue, view_audit: this package

The actor is a username (what the UI keeps in session state) or a ``UserInfo``; the role is read from the database
each time, so a role change or a deactivation takes effect on the next click, and hiding a button is never the check.
What is recorded (``created_by``, the audit log) is the actor's username.

Work that a checked call already allowed is not checked again: a background job runs as the user who queued it
(``jobs.created_by``; the check ran at the click that queued it, and a deactivation meanwhile stops their next click,
not work already queued: stop the job for that), and a step that another action entails (the prompt version an
approver's ``request_changes`` writes, the dataset a training run preprocesses) runs as ``on_behalf_of(user,
permission)``. The generic queue (``workbench.jobs``) checks nothing: the capabilities' entry points do.

The CLI acts as ``operator.cli_actor(role)``: once the workspace has real accounts, as one of them (``workbench --as
NAME``, WORKBENCH_CLI_USER, or the OS login), whose role is checked; in a workspace without them (or with
``cli_as_system`` for operator scripts) as ``cli:<login>`` with the role its command needs (admin for users,
datasets, prompts and training; marketer for generation; analyst for evaluation). The one action nobody signs in
for, building the demo workspace from Home, is offered only while the workspace has no users (it adds accounts with
a published password).

Local accounts keep bcrypt hashes of passwords that pass the policy, and sign-in is throttled per account and per
client (``workbench.auth.signin``); the names of system actors (``RESERVED_USERNAMES``) cannot be accounts, so an
audit row by "cli" or "demo" is never a person's. Identities from an OpenID Connect provider (Streamlit's
``st.login``) with a verified address are mapped to roles by ``OidcRoleMap`` and get a user row (no password) the
first time they sign in.

    add_user(system_actor("cli:ops"), "ana", "approver", password="correct horse battery")
    user = authenticate("ana", "correct horse battery", client="10.1.2.3")   # UserInfo(username="ana", …)
    require("ana", "decide")                                 # returns the UserInfo, or raises PermissionDenied
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workbench.db import User, audit, session_scope, write_lock
from workbench.auth import sessions, signin
from workbench.auth.signin import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH  # noqa: F401 - part of this API
from workbench.settings import Settings

ROLES = ("marketer", "analyst", "approver", "admin")

# The one permission table. Pages, the CLI and the library all ask it through require().
PERMISSIONS: dict[str, frozenset[str]] = {
    "marketer": frozenset({"generate", "submit", "view_own", "train", "datasets", "prompts"}),
    "analyst": frozenset({"evaluate", "view_queue", "view_audit", "train", "datasets"}),
    "approver": frozenset({"decide", "export", "view_queue", "view_audit"}),
    "admin": frozenset({"manage_users", "settings", "view_queue", "view_audit", "train", "datasets", "prompts"}),
}
ALL_PERMISSIONS = frozenset().union(*PERMISSIONS.values())

BCRYPT_ROUNDS = 12  # ~0.2 s per hash on a laptop core; tests lower it
USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,99}\Z")
# The actors the code itself records in the audit log (system_actor(...), the first-run form, OIDC sign-up).
RESERVED_USERNAMES = frozenset({"cli", "demo", "system", "setup", "oidc", "evaluation"})


class AuthError(Exception):
    """Sign-in failed, or a user/role/password value is not acceptable."""


class PermissionDenied(AuthError):
    """The actor is known but their role does not allow the action."""


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    display_name: str = ""
    active: bool = True
    id: int | None = None
    source: str = "local"  # local (password) | oidc | system (the CLI)
    is_demo: bool = False

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def label(self) -> str:
        return f"{self.display_name or self.username} ({self.role})"

    @classmethod
    def from_row(cls, row: User) -> UserInfo:
        source = "local" if row.password_hash else "oidc"
        return cls(username=row.username, role=row.role, display_name=row.display_name, active=row.active, id=row.id,
                   source=source, is_demo=row.is_demo)


Actor = str | UserInfo


def system_actor(name: str = "system", role: str = "admin") -> UserInfo:
    """The actor for the CLI and scripts run by whoever operates the workspace: an admin that is not a DB user.
    A job acting for a role names it (an evaluation job records OCR checks as ``role="analyst"``)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return UserInfo(username=name, role=role, source="system")


def on_behalf_of(username: str, permission: str) -> UserInfo:
    """A system actor named ``username`` whose role allows ``permission``, for work a checked call already allowed:
    a job acting for the user who queued it, or a step another action entails (see the module docstring)."""
    roles = roles_with(permission)
    if not roles:
        raise ValueError(f"permission {permission!r} is not one of {sorted(ALL_PERMISSIONS)}")
    return system_actor(username, roles[0])


# -- checks --------------------------------------------------------------------------------------------------------

def roles_with(permission: str) -> list[str]:
    return [r for r in ROLES if permission in PERMISSIONS[r]]


def require(actor: Actor, permission: str, session: Session | None = None, *,
            settings: Settings | None = None) -> UserInfo:
    """The server-side check: the actor's current role (read from the database) must allow ``permission``.
    Returns the actor as a UserInfo; raises AuthError (unknown or inactive user) or PermissionDenied.
    The user is read through ``session``, else from the database of ``settings``' workspace (default: the current
    one): a call that acts on another workspace passes its ``settings`` on, so the role checked is that workspace's."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"permission {permission!r} is not one of {sorted(ALL_PERMISSIONS)}")
    if isinstance(actor, UserInfo) and actor.source == "system":
        user = actor
    else:
        username = actor.username if isinstance(actor, UserInfo) else str(actor or "")
        if not username:
            raise AuthError(f"sign in first: {permission} needs a signed-in {' or '.join(roles_with(permission))}")
        if session is None:
            with session_scope(settings) as s:
                user = _load(s, username)
        else:
            user = _load(session, username)
    if not user.can(permission):
        raise PermissionDenied(f"{user.username} is a {user.role}: {permission!r} needs the role "
                               f"{' or '.join(roles_with(permission))}")
    return user


def _load(s: Session, username: str) -> UserInfo:
    row = s.scalar(select(User).where(User.username == username.strip().lower()))
    if row is None:
        raise AuthError(f"user {username!r} does not exist")
    if not row.active:
        raise AuthError(f"user {username!r} is deactivated")
    return UserInfo.from_row(row)


def get_user(username: str) -> UserInfo:
    """The user as stored now (raises AuthError when unknown or deactivated)."""
    with session_scope() as s:
        return _load(s, username)


# -- values --------------------------------------------------------------------------------------------------------

def check_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not USERNAME.match(name):
        raise AuthError(f"username {username!r}: use 1-100 letters, digits and . _ @ + - (starting with a letter "
                        "or digit)")
    if name in RESERVED_USERNAMES:
        raise AuthError(f"username {username!r} is reserved (the audit log uses it for the workbench itself): "
                        "choose another")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str, *user_inputs: str) -> str:
    """The password if the policy accepts it (``signin.check_password_strength``; ``user_inputs``: the user's name
    and the like, which make a password easy to guess)."""
    return signin.check_password_strength(password, *user_inputs)


def hash_password(password: str, *user_inputs: str) -> str:
    check_password(password, *user_inputs)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def verify_password(password: str, hashed: str) -> bool:
    if not hashed or not password:
        return False
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode())
    return _DUMMY_HASH[0]


# -- sign-in -------------------------------------------------------------------------------------------------------

def authenticate(username: str, password: str, client: str = "local") -> UserInfo:
    """Check a local account's password, throttled per account and per ``client`` (the app passes the visitor's IP
    address, the CLI "cli"; see ``workbench.auth.signin``). Every attempt that is checked is audited; the error
    never says which part was wrong, nor whether the account exists."""
    name = (username or "").strip().lower()[:100]
    try:
        with session_scope() as s:
            attempt = signin.begin(s, name, client)
    except signin.Locked as exc:
        raise AuthError(str(exc)) from None
    with session_scope() as s:
        row = s.scalar(select(User).where(User.username == name)) if name else None
        ok = verify_password(password, row.password_hash if row is not None else _dummy_hash())  # same time either way
        if row is None or not ok or not row.active:
            signin.failed(s, attempt, row.id if row is not None else "")
            audit(s, name or "?", "user.login_failed", "user", row.id if row is not None else "",
                  after={"reason": "inactive" if (row is not None and ok) else "wrong username or password",
                         "client": attempt.client})
            failed = True
        else:
            signin.succeeded(s, attempt)
            audit(s, name, "user.login", "user", row.id, after={"method": "password", "client": attempt.client})
            failed = False
            info = UserInfo.from_row(row)
    if failed:
        raise AuthError(signin.WRONG)
    return info


def needs_first_admin() -> bool:
    """True while the workspace has no users at all: the first run asks to create an admin. Once anyone exists
    (say approvers added with the CLI), new admins come from ``workbench users add … --role admin`` only, so a
    visitor can never make themself admin of a workspace in use."""
    with session_scope() as s:
        return not s.scalar(select(func.count()).select_from(User))


def create_first_admin(username: str, password: str, display_name: str = "") -> UserInfo:
    """Create the first user of a workspace, as admin. Refused once any user exists."""
    name = check_username(username)
    hashed = hash_password(password, name, display_name)  # before the lock: bcrypt is slow
    with session_scope() as s:
        write_lock(s, "users")  # the check and the insert in one transaction (the demo's accounts race for it)
        if s.scalar(select(func.count()).select_from(User)):
            raise PermissionDenied("this workspace already has users: ask an admin to add your account")
        return _insert(s, "setup", name, "admin", hashed, display_name)


def create_demo_users(accounts: Mapping[str, str], password: str) -> list[str]:
    """The demo's accounts (``{username: role}``, all with ``password``, marked ``is_demo``), added in one transaction
    that first checks nobody else has an account: refused (PermissionDenied) once any other user exists, so a first
    admin created while the demo builds never ends up beside a published admin password. Returns the names added."""
    hashed = {name: hash_password(password, name) for name in accounts}
    with session_scope() as s:
        write_lock(s, "users")
        others = s.scalars(select(User.username).where(User.is_demo.is_(False)).limit(3)).all()
        if others:
            raise PermissionDenied(f"this workspace already has users ({', '.join(others)}…): the demo adds accounts "
                                   "with a published password, so it adds none here")
        made = []
        for name, role in accounts.items():
            if s.scalar(select(User.id).where(User.username == name)) is None:
                _insert(s, "demo", check_username(name), check_role(role), hashed[name], f"{name.title()} (demo)",
                        is_demo=True)
                made.append(name)
        return made


def _insert(s: Session, actor: str, username: str, role: str, password_hash: str, display_name: str,
            is_demo: bool = False) -> UserInfo:
    write_lock(s, "users")
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise AuthError(f"username {username!r} is taken")
    row = User(username=username, role=role, password_hash=password_hash, display_name=display_name.strip(),
               is_demo=is_demo)
    s.add(row)
    s.flush()
    audit(s, actor, "user.create", "user", row.id,
          after={"username": username, "role": role, "display_name": row.display_name,
                 "method": "password" if password_hash else "oidc"})
    return UserInfo.from_row(row)


# -- user management (admin) -----------------------------------------------------------------------------------------

def add_user(actor: Actor, username: str, role: str, password: str | None = None, display_name: str = "") -> UserInfo:
    """A local account (with a password) or, with ``password=None``, an account that signs in through OIDC only."""
    with session_scope() as s:
        who = require(actor, "manage_users", s)
        name, role = check_username(username), check_role(role)
        hashed = hash_password(password, name, display_name) if password is not None else ""
        return _insert(s, who.username, name, role, hashed, display_name)


def list_users(actor: Actor, include_inactive: bool = True) -> list[UserInfo]:
    with session_scope() as s:
        require(actor, "manage_users", s)
        q = select(User).order_by(User.username)
        if not include_inactive:
            q = q.where(User.active.is_(True))
        return [UserInfo.from_row(r) for r in s.scalars(q)]


def _row(s: Session, username: str) -> User:
    row = s.scalar(select(User).where(User.username == (username or "").strip().lower()))
    if row is None:
        raise AuthError(f"user {username!r} does not exist")
    return row


def _keep_an_admin(s: Session, row: User) -> None:
    if row.role == "admin" and row.active:
        admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True)))
        if admins <= 1:
            raise AuthError(f"{row.username} is the last active admin: make someone else admin first")


def set_role(actor: Actor, username: str, role: str) -> UserInfo:
    with session_scope() as s:
        who = require(actor, "manage_users", s)
        row = _row(s, username)
        check_role(role)
        if row.role == role:
            return UserInfo.from_row(row)
        if role != "admin":
            _keep_an_admin(s, row)
        before = row.role
        row.role = role
        audit(s, who.username, "user.set_role", "user", row.id, before={"role": before}, after={"role": role})
        return UserInfo.from_row(row)


def reset_password(actor: Actor, username: str, new_password: str) -> UserInfo:
    with session_scope() as s:
        who = require(actor, "manage_users", s)
        row = _row(s, username)
        row.password_hash = hash_password(new_password, row.username, row.display_name)
        audit(s, who.username, "user.reset_password", "user", row.id)  # never the hash, not even before/after
        sessions.end_user_sessions(row.username, session=s)  # whoever knew the old password is signed out
        return UserInfo.from_row(row)


def set_active(actor: Actor, username: str, active: bool) -> UserInfo:
    with session_scope() as s:
        who = require(actor, "manage_users", s)
        row = _row(s, username)
        if row.active == active:
            return UserInfo.from_row(row)
        if not active:
            _keep_an_admin(s, row)
        row.active = active
        audit(s, who.username, "user.activate" if active else "user.deactivate", "user", row.id,
              before={"active": not active}, after={"active": active})
        if not active:
            sessions.end_user_sessions(row.username, session=s)
        return UserInfo.from_row(row)


# -- OpenID Connect --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OidcRoleMap:
    """Which role an identity from the OIDC provider gets the first time it signs in.

    From the ``[workbench_roles]`` table of ``.streamlit/secrets.toml``::

        [workbench_roles]
        "ana@northwind.example" = "approver"   # one person
        "@northwind.example" = "marketer"      # everyone with a verified address in the domain
        default = "marketer"                   # anyone else; leave it out to refuse identities not listed

    Only an address the provider says is verified (``email_verified`` true) signs in at all: a provider that lets
    anyone type any address would otherwise hand out the roles (and the accounts) of those addresses.

    After the first sign-in the user row is the truth: admins change roles with ``workbench users set-role``.
    """

    emails: dict[str, str]
    domains: dict[str, str]
    default: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> OidcRoleMap:
        emails: dict[str, str] = {}
        domains: dict[str, str] = {}
        default = None
        for key, role in dict(config or {}).items():
            if not isinstance(role, str) or role not in ROLES:
                raise AuthError(f"[workbench_roles] {key!r} = {role!r}: the role must be one of {', '.join(ROLES)}")
            key = str(key).strip().lower()
            if key == "default":
                default = role
            elif key.startswith("@") and len(key) > 1:
                domains[key[1:]] = role
            elif "@" in key:
                emails[key] = role
            else:
                raise AuthError(f"[workbench_roles] {key!r}: write an address (ana@x.com), a domain (@x.com) "
                                "or default")
        return cls(emails, domains, default)

    def role_for(self, email: str) -> str | None:
        email = email.strip().lower()
        return self.emails.get(email) or self.domains.get(email.rpartition("@")[2]) or self.default


def oidc_sign_in(claims: Mapping[str, Any], role_map: OidcRoleMap) -> UserInfo:
    """The user for an identity token's claims (``st.user``): the stored user, or a new one with the mapped role."""
    email = str(claims.get("email") or "").strip().lower()
    if not email:
        raise AuthError("the identity provider sent no email claim: add the 'email' scope to the provider")
    if claims.get("email_verified") not in (True, "true"):  # missing, False, "false": not verified
        raise AuthError(f"{email}: the provider says this address is not verified (the email_verified claim is "
                        f"{claims.get('email_verified')!r}): verify it with the provider, or ask for a provider that "
                        "sends email_verified")
    username = check_username(email)
    with session_scope() as s:
        row = s.scalar(select(User).where(User.username == username))
        if row is not None:
            if not row.active:
                raise AuthError(f"user {username!r} is deactivated")
            audit(s, username, "user.login", "user", row.id, after={"method": "oidc"})
            return UserInfo.from_row(row)
        role = role_map.role_for(email)
        if role is None:
            raise AuthError(f"{email} has no role in this workspace: ask an admin to add you")
        name = str(claims.get("name") or "")
        info = _insert(s, "oidc", username, role, "", name)
        audit(s, username, "user.login", "user", info.id, after={"method": "oidc"})
        return info
