"""`workbench trash list|restore|purge`: what was deleted, bringing it back, removing it for good.

    workbench trash list                 # what can still be restored, and until when
    workbench trash restore 7            # entry 7 back where it was (rows and files)
    workbench trash purge                # entries past their undo window (every job consumer also does this)
    workbench trash purge 7 --now        # entry 7 for good, before its window ends (an admin's call)

Deleting is each capability's: `workbench data delete`, `workbench train delete` (= `workbench runs delete`),
`workbench generate delete-batch`.
"""
from __future__ import annotations

import typer

app = typer.Typer(help="The trash: list, restore or purge deleted datasets, runs and batches.", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@app.command("list")
def list_cmd(all_: bool = typer.Option(False, "--all", help="Restored and purged entries too.")) -> None:
    """Entries in the trash, newest first."""
    from workbench.db import utcnow
    from workbench.trash import list_trash, window_text

    rows = list_trash(include_done=all_)
    if not rows:
        typer.echo(f"the trash is empty (deleted things wait {window_text()} before they are purged)")
        return
    now = utcnow()
    for e in rows:
        left = e.seconds_left(now) / 3600
        when = f"restorable for {left:.1f} h more" if e.status == "deleted" else e.status
        counts = ", ".join(f"{k} {v}" for k, v in e.detail.items() if isinstance(v, int) and not isinstance(v, bool))
        typer.echo(f"{e.id:>4}  {e.noun:<16} {e.label!r}  deleted by {e.deleted_by} {e.deleted_at:%Y-%m-%d %H:%M}  "
                   f"{when}" + (f"  ({counts})" if counts else ""))


@app.command()
def restore(entry: int = typer.Argument(..., help="The entry's number (`workbench trash list`).")) -> None:
    """Bring a deleted dataset, run or batch back: its files where they were, its rows in every list."""
    from workbench.auth.operator import cli_actor_or_exit
    from workbench.trash import KINDS, TrashError, get_entry, restore as restore_entry

    try:
        kind = get_entry(entry).kind
        info = restore_entry(cli_actor_or_exit("marketer" if KINDS[kind].permission == "generate" else "admin"),
                             entry)
    except TrashError as exc:
        _fail(exc)
    typer.echo(f"{info.noun} {info.label!r} restored")


@app.command()
def purge(entry: int = typer.Argument(None, help="One entry (default: every entry past its undo window)."),
          now: bool = typer.Option(False, "--now", help="Purge the entry even before its undo window ends."),
          yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (with --now).")) -> None:
    """Remove entries for good: their rows and files. Without --now only entries past their undo window."""
    from workbench.auth.operator import cli_actor_or_exit
    from workbench.trash import TrashError, get_entry, purge as purge_entries

    try:
        if now and entry is not None and not yes:
            e = get_entry(entry)
            typer.confirm(f"remove {e.noun} {e.label!r} for good? It cannot be restored afterwards", abort=True)
        done = purge_entries(cli_actor_or_exit(), entry, due_only=not now)
    except TrashError as exc:
        _fail(exc)
    for e in done:
        typer.echo(f"purged {e.noun} {e.label!r} (entry {e.id})")
    if not done:
        typer.echo("nothing to purge")
