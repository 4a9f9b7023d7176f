"""Who the command line acts as (issue #23 item 3).

A workspace without accounts (a studio machine, or only the demo's accounts) has nobody to name: the CLI acts as the
operator, ``cli:<login>``, with the role each command needs, as it always did. Once real accounts exist, the CLI acts
as one of them, and that account's role is checked like on the pages:

    workbench --as ana review export ...          # the --as option (sets WORKBENCH_CLI_USER for the command)
    WORKBENCH_CLI_USER=ana workbench ...          # the environment
    (the OS login, when an account has that name)

Operator scripts that must act whatever accounts exist (backups, cron jobs) set ``WORKBENCH_CLI_AS_SYSTEM=true``:
they act as ``cli:<login>`` with the role the command needs, recorded under that name in the audit log.
Anyone who can run the CLI can open the workspace's files, so naming an account is not a sign-in: it keeps each
command inside that person's role and puts their name on what it did.
"""
from __future__ import annotations

import getpass

from sqlalchemy import select

from workbench.auth import AuthError, UserInfo, _load, system_actor
from workbench.db import User, session_scope
from workbench.settings import Settings, get_settings


def operator_login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def cli_actor(role: str = "admin", settings: Settings | None = None, name: str | None = None) -> UserInfo:
    """The actor a CLI command acts as (see the module docstring). ``role``: the role an operator acts with where
    no account is named (a workspace without real accounts, or ``cli_as_system``). ``name``: a command's own
    ``--user`` option (older commands have one): an account's name like ``--as``; in a workspace without real
    accounts, the name recorded for the operator."""
    settings = settings or get_settings()
    login = operator_login()
    with session_scope(settings) as s:
        real = s.scalar(select(User.id).where(User.is_demo.is_(False)).limit(1))
        named = settings.cli_user
        if not named and name:  # an account when accounts exist; a demo account by its name; else a label
            exists = s.scalar(select(User.id).where(User.username == name.strip().lower()))
            named = name if real is not None or exists is not None else None
        if named:
            try:
                return _load(s, named.strip().lower())
            except AuthError as exc:
                raise AuthError(f"--as / --user / WORKBENCH_CLI_USER {named!r}: {exc} "
                                "(`workbench users list` shows the accounts)") from None
        if settings.cli_as_system:
            return system_actor(name or f"cli:{login}", role)
        own = s.scalar(select(User).where(User.username == login.lower(), User.active.is_(True)))
        if own is not None:
            return UserInfo.from_row(own)
    if real is None:
        return system_actor(name or f"cli:{login}", role)
    raise AuthError("this workspace has accounts: run the command as one of them (`workbench --as NAME ...` or "
                    "WORKBENCH_CLI_USER=NAME); operator scripts set WORKBENCH_CLI_AS_SYSTEM=true")


def cli_actor_or_exit(role: str = "admin", name: str | None = None) -> UserInfo:
    """``cli_actor`` for a command: an AuthError ends the command with its message and exit code 2."""
    import typer

    try:
        return cli_actor(role, name=name)
    except AuthError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
