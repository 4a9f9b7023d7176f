"""Sign-in for every page: ``user = require_login("decide")`` returns the signed-in user or draws the way in
(create the first admin / password form / the OIDC button) and stops the page.

The signed-in username lives in ``st.session_state[StateKeys.USER]``; the role is read from the database on every
run (``workbench.auth.get_user``), and every mutating library call checks it again (``require``), so what this
module shows or hides is convenience, never the check.

OpenID Connect: when ``.streamlit/secrets.toml`` has Streamlit's ``[auth]`` section, a "Sign in with …" button calls
``st.login()``; the identity (``st.user``) is mapped to a role by the ``[workbench_roles]`` table (see
``workbench.auth.OidcRoleMap``)::

    [auth]
    redirect_uri = "http://localhost:8501/oauth2callback"
    cookie_secret = "a long random string"
    client_id = "…"
    client_secret = "…"
    server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"

    [workbench_roles]
    "ana@northwind.example" = "approver"
    "@northwind.example" = "marketer"

Local password accounts keep working beside it (``workbench users add``).

Reloads, new tabs and bookmarks: a password sign-in starts a server-side session (``workbench.auth.sessions``) whose
random token the page stores in a cookie (``SameSite=Strict``, ``Secure`` over https; written by a small script,
since Streamlit cannot send a Set-Cookie header from a page). A new browser session reads it back from the request
(``st.context.cookies``) and resumes while the record lives; every run of a signed-in page checks the record again,
so a sign-out in one tab, a deactivation or the idle limit signs out every tab at its next click (docs/SECURITY.md).
"""
from __future__ import annotations

import hashlib
import json

import streamlit as st

from workbench.auth import (AuthError, OidcRoleMap, UserInfo, authenticate, create_first_admin, get_user,
                            needs_first_admin, oidc_sign_in, roles_with)
from workbench.auth import sessions
from workbench.settings import get_settings
from workbench.ui.common import plain
from workbench.ui.state import StateKeys


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        return False


def _role_map() -> OidcRoleMap:
    try:
        config = st.secrets.get("workbench_roles", {})
    except Exception:  # noqa: BLE001
        config = {}
    return OidcRoleMap.from_config(dict(config))


_REJECTED = "auth_rejected_cookie"  # the request's cookie, once its session was found ended


def cookie_name() -> str:
    """The session cookie's name, one per workspace: two workbenches on one host (cookies ignore the port) keep
    their own sign-ins."""
    digest = hashlib.sha256(str(get_settings().workspace_dir).encode()).hexdigest()[:10]
    return f"{sessions.COOKIE}_{digest}"


def _request_cookie() -> str:
    try:
        value = st.context.cookies.get(cookie_name())
    except Exception:  # noqa: BLE001 - no browser request (AppTest, bare mode)
        return ""
    return value if isinstance(value, str) else ""


def _signed_in(username: str, token: str = "") -> None:
    """Remember the signed-in user for this browser session; a ``token`` also goes into the cookie (next run)."""
    st.session_state[StateKeys.USER] = username
    st.session_state[StateKeys.SESSION] = token
    if token:
        st.session_state[StateKeys.COOKIE_TODO] = "set"


def _start_session(user: UserInfo) -> None:
    _signed_in(user.username, sessions.start_session(user.username, client=_client()))


def _forget(clear_cookie: bool) -> None:
    st.session_state[StateKeys.USER] = ""
    st.session_state[StateKeys.SESSION] = ""
    if clear_cookie:
        st.session_state[StateKeys.COOKIE_TODO] = "clear"


def sync_cookie() -> None:
    """Write (or remove) the session cookie when a sign-in or sign-out asked for it: a script in the page, the only
    way a Streamlit page can set a cookie (so it cannot be HttpOnly; docs/SECURITY.md)."""
    todo = st.session_state.pop(StateKeys.COOKIE_TODO, None)
    if todo == "set" and st.session_state.get(StateKeys.SESSION):
        value, max_age = st.session_state[StateKeys.SESSION], sessions.max_age_seconds()
    elif todo == "clear":
        value, max_age = "", 0
    else:
        return
    # json.dumps quotes the (url-safe base64) token as a JS string; the name is hex. Nothing here is user text.
    script = (f"<script>document.cookie = {json.dumps(cookie_name())} + '=' + {json.dumps(value)} + "
              f"'; Path=/; Max-Age={max_age}; SameSite=Strict' + "
              "(location.protocol === 'https:' ? '; Secure' : '');</script>")
    with st.sidebar:
        st.html(script, unsafe_allow_javascript=True)


def current_user() -> UserInfo | None:
    """The signed-in user as stored now; a deleted or deactivated account, or an ended session, is signed out.
    A new browser session (reload, new tab, bookmark) resumes from the session cookie."""
    name = st.session_state.get(StateKeys.USER) or ""
    token = st.session_state.get(StateKeys.SESSION) or ""
    if name and token:  # a password sign-in: its session must still be alive (sign-out elsewhere, idle, deactivated)
        if sessions.resume_session(token) != name:
            _forget(clear_cookie=True)
            name = ""
    elif not name and (cookie := _request_cookie()) and cookie != st.session_state.get(_REJECTED):
        resumed = sessions.resume_session(cookie)
        if resumed:
            _signed_in(resumed, cookie)
            st.session_state.pop(StateKeys.COOKIE_TODO, None)  # the browser has it already
            name = resumed
        else:  # an ended session's cookie: drop it, and do not ask again in this browser session
            st.session_state[StateKeys.COOKIE_TODO] = "clear"
            st.session_state[_REJECTED] = cookie
    if not name and oidc_configured() and st.user.get("is_logged_in"):
        try:
            name = oidc_sign_in(st.user.to_dict(), _role_map()).username
        except AuthError as exc:
            st.error(f"Signed in with your identity provider, but: {plain(exc)}")
            if st.button("Sign out", key="auth_oidc_logout"):
                st.logout()
            st.stop()
        st.session_state[StateKeys.USER] = name
    sync_cookie()
    if not name:
        return None
    try:
        return get_user(name)
    except AuthError:
        _forget(clear_cookie=bool(token))
        return None


def sign_out() -> None:
    """End this browser's session everywhere (every tab using it) and remove its cookie."""
    sessions.end_session(st.session_state.get(StateKeys.SESSION) or _request_cookie())
    st.session_state[_REJECTED] = _request_cookie()  # this page's request still carries the ended session's cookie
    _forget(clear_cookie=True)
    if oidc_configured() and st.user.get("is_logged_in"):
        st.logout()


def _first_admin_form() -> None:
    st.subheader("Create the first admin")
    st.info("This workspace has no admin yet. The account you create here manages users and settings; "
            "approvers, marketers and analysts are added afterwards (Review page or `workbench users add`).")
    name = st.text_input("Username", key="auth_setup_username")
    display = st.text_input("Display name", key="auth_setup_display")
    pw = st.text_input("Password", type="password", key="auth_setup_password",
                       help="At least 8 characters and not easy to guess: a few uncommon words work well.")
    pw2 = st.text_input("Repeat the password", type="password", key="auth_setup_password2")
    if st.button("Create admin", key="auth_setup_create", type="primary"):
        if pw != pw2:
            st.error("The two passwords differ.")
            return
        try:
            user = create_first_admin(name, pw, display)
        except AuthError as exc:
            st.error(plain(exc))
            return
        _start_session(user)
        st.rerun()


def _client() -> str:
    """Who is signing in, for the per-client throttle: the connection's IP address ("localhost" for a local browser).
    Behind a reverse proxy every visitor has the proxy's address: one shared budget (see docs/SECURITY.md)."""
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - no browser connection
        ip = None
    return ip if isinstance(ip, str) and ip else "localhost"  # (AppTest hands out a mock)


def _login_form() -> None:
    st.subheader("Sign in")
    if oidc_configured():
        if st.button("Sign in with your company account", key="auth_oidc_login", type="primary"):
            st.login()
        st.caption("or with a local account:")
    name = st.text_input("Username", key="auth_username")
    pw = st.text_input("Password", type="password", key="auth_password")
    if st.button("Sign in", key="auth_login"):
        try:
            user = authenticate(name, pw, client=_client())
        except AuthError as exc:
            st.error(plain(exc))
            return
        _start_session(user)
        st.rerun()


def require_login(permission: str | None = None, *, any_of: tuple[str, ...] = ()) -> UserInfo:
    """The page guard: the signed-in user (allowed ``permission``, or one of ``any_of``), or st.stop()."""
    user = current_user()
    if user is None:
        _first_admin_form() if needs_first_admin() else _login_form()
        st.stop()
    wanted = ((permission,) if permission else ()) + tuple(any_of)
    if wanted and not any(user.can(p) for p in wanted):
        roles = sorted({r for p in wanted for r in roles_with(p)})
        st.warning(f"You are signed in as {plain(user.label)}. This page is for: {', '.join(roles)}.")
        user_box(user)
        st.stop()
    user_box(user)
    return user


def user_box(user: UserInfo) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{plain(user.label)}**")
        if st.button("Sign out", key="auth_logout"):
            sign_out()
            st.rerun()
