"""`workbench users …` and `workbench review …`: accounts and roles, the queue, decisions and exports.

    workbench users add ana --role approver            # asks for the password twice (or --no-password: OIDC only)
    workbench users list
    workbench users set-role ana admin
    workbench users reset-password ana
    workbench review queue --user ana --brand northwind [--status pending] [--gate flagged]
    workbench review decide 12 approve --user ana [--seen 0] [--comment …] [--tag hero]
    workbench review undo 12 1 --user ana                # take back decision #1, within 30 s of making it
    workbench review policy northwind --user adam [--reject-reason optional] [--on-clip-fail hold]
    workbench review export --user ana --brand northwind [--batch ss26]

User commands act as ``workbench.auth.operator.cli_actor``: the named account (``workbench --as NAME``, an admin for
user changes) once the workspace has accounts, else the operator (``cli:<login>`` in the audit log). Review commands
act as a named user and check their password (``WORKBENCH_PASSWORD`` for scripts) and role like the app does.
"""
from __future__ import annotations


import typer

app = typer.Typer(help="Review queue, decisions and exports.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(str(exc), err=True)
    raise typer.Exit(2)


def _operator():
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit()


# -- users ---------------------------------------------------------------------------------------------------------

@users_app.command("add")
def users_add(
    username: str,
    role: str = typer.Option(..., help="marketer, analyst, approver or admin."),
    display_name: str = typer.Option("", help="Shown in the app."),
    no_password: bool = typer.Option(False, "--no-password", help="Signs in through the OIDC provider only."),
) -> None:
    """Add a user (asks for the password unless --no-password)."""
    from workbench.auth import AuthError, add_user

    try:
        password = None if no_password else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        user = add_user(_operator(), username, role, password=password, display_name=display_name)
    except AuthError as exc:
        _fail(exc)
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("list")
def users_list() -> None:
    """List users with role, sign-in method and state."""
    from workbench.auth import list_users

    users = list_users(_operator())
    if not users:
        typer.echo("no users yet: `workbench users add NAME --role admin`, or open the app to create the first admin")
    for u in users:
        state = "" if u.active else "  (deactivated)"
        typer.echo(f"{u.username:<32}{u.role:<10}{u.source:<7}{u.display_name}{state}")


@users_app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Change a user's role (takes effect on their next click)."""
    from workbench.auth import AuthError, set_role

    try:
        user = set_role(_operator(), username, role)
    except AuthError as exc:
        _fail(exc)
    typer.echo(f"{user.username} is now {user.role}")


@users_app.command("reset-password")
def users_reset_password(username: str) -> None:
    """Set a new password for a user (asks for it twice)."""
    from workbench.auth import AuthError, reset_password

    try:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        user = reset_password(_operator(), username, password)
    except AuthError as exc:
        _fail(exc)
    typer.echo(f"password of {user.username} changed")


@users_app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Stop a user from signing in (their decisions and audit rows stay)."""
    from workbench.auth import AuthError, set_active

    try:
        set_active(_operator(), username, False)
    except AuthError as exc:
        _fail(exc)
    typer.echo(f"{username} deactivated")


# -- review --------------------------------------------------------------------------------------------------------

USER_OPT = typer.Option(..., "--user", "-u", help="Who you are (an approver for decisions and exports).")
PASSWORD_OPT = typer.Option(..., prompt=True, hide_input=True, envvar="WORKBENCH_PASSWORD")


def _sign_in(user: str, password: str):
    from workbench.auth import AuthError, authenticate

    try:
        return authenticate(user, password, client="cli")
    except AuthError as exc:
        _fail(exc)


@app.command()
def queue(
    user: str = USER_OPT,
    password: str = PASSWORD_OPT,
    brand: str = typer.Option(None),
    batch: str = typer.Option(None),
    status: str = typer.Option("pending", help="pending, approved, rejected, changes_requested or all."),
    gate: str = typer.Option(None, help="passed, flagged or held (default: passed and flagged)."),
) -> None:
    """List images waiting for review with their gate results."""
    from workbench.auth import AuthError
    from workbench.review.queue import QueueFilter, ReviewError, list_queue

    who = _sign_in(user, password)
    try:
        items = list_queue(who, QueueFilter(brand=brand, batch=batch, gate=gate,
                                            status=None if status == "all" else status))
    except (AuthError, ReviewError) as exc:
        _fail(exc)
    if not items:
        typer.echo("nothing to review")
    for i in items:
        clip = "-" if i.clip_score is None else f"{i.clip_score:.3f}"
        flags = f"  ! {'; '.join(i.gate.flags)}" if i.gate.flags else ""
        typer.echo(f"{i.generation_id:>6}  seen={i.review_seq}  {i.review_status:<18}{i.brand:<14}{i.batch:<16}"
                   f"clip {clip}  {i.gate.state:<8}{i.prompt[:60]}{flags}")


@app.command()
def decide(
    generation_id: int,
    decision: str = typer.Argument(..., help="approve, reject or request_changes."),
    user: str = USER_OPT,
    password: str = PASSWORD_OPT,
    seen: int = typer.Option(0, help="Decisions the image had when you looked (the queue's seen=…)."),
    comment: str = typer.Option(""),
    tag: list[str] = typer.Option([], "--tag"),
    override_gate: bool = typer.Option(False, help="Approve although a gate held the image back."),
) -> None:
    """Decide on one image."""
    from workbench.auth import AuthError
    from workbench.review.decisions import decide as do_decide
    from workbench.review.queue import ReviewError

    who = _sign_in(user, password)
    try:
        d = do_decide(who, generation_id, decision, comment=comment, tags=tag, expected_seq=seen,
                      override_gate=override_gate)
    except (AuthError, ReviewError) as exc:
        _fail(exc)
    typer.echo(f"image {generation_id}: {d.decision} (decision #{d.seq})")


@app.command()
def undo(
    generation_id: int,
    seq: int = typer.Argument(..., help="The number of your decision to take back (``decide`` prints it)."),
    user: str = USER_OPT,
    password: str = PASSWORD_OPT,
) -> None:
    """Take back your latest decision on an image, within a short while of making it."""
    from workbench.auth import AuthError
    from workbench.review.decisions import undo_decision
    from workbench.review.queue import ReviewError

    who = _sign_in(user, password)
    try:
        undo_decision(who, generation_id, seq)
    except (AuthError, ReviewError) as exc:
        _fail(exc)
    typer.echo(f"image {generation_id}: decision #{seq} undone")


@app.command()
def policy(
    brand: str,
    user: str = USER_OPT,
    password: str = PASSWORD_OPT,
    on_clip_fail: str = typer.Option(None, help="flag or hold."),
    on_ocr_fail: str = typer.Option(None, help="flag or hold."),
    reject_reason: str = typer.Option(None, help="required or optional: does a reject need a comment."),
) -> None:
    """Show or change a brand's review policy (changing it needs an admin)."""
    from workbench.auth import AuthError
    from workbench.review.queue import ReviewError, get_policy, set_policy

    who = _sign_in(user, password)
    try:
        if on_clip_fail or on_ocr_fail or reject_reason:
            p = set_policy(who, brand, on_clip_fail=on_clip_fail, on_ocr_fail=on_ocr_fail,
                           reject_reason=reject_reason)
        else:
            p = get_policy(brand)
    except (AuthError, ReviewError) as exc:
        _fail(exc)
    typer.echo(f"{brand}: CLIP failure -> {p.on_clip_fail}, OCR failure -> {p.on_ocr_fail}, "
               f"reject reason {p.reject_reason}")


@app.command("export")
def export_cmd(
    user: str = USER_OPT,
    password: str = PASSWORD_OPT,
    brand: str = typer.Option(None),
    batch: str = typer.Option(None, help="The campaign's batch."),
) -> None:
    """Zip the approved images of a brand / batch with metadata.csv and metadata.json."""
    from workbench.auth import AuthError
    from workbench.review.export import export_approved
    from workbench.review.queue import ReviewError

    who = _sign_in(user, password)
    try:
        result = export_approved(who, brand=brand, batch=batch)
    except (AuthError, ReviewError) as exc:
        _fail(exc)
    typer.echo(f"{result.count} images -> {result.path}")
