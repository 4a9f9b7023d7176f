"""`workbench models list|pull`: which models this machine has, and fetching them ahead of time."""
from __future__ import annotations

import typer

app = typer.Typer(help="Model weights: what is available here, and downloading the defaults.", no_args_is_help=True)


@app.command("list")
def list_cmd() -> None:
    """Every default model with its status (offline; reads only the local caches)."""
    from workbench.models.sources import DEFAULT_MODEL_INFO, list_models

    rows = list_models()
    typer.echo(f"{'name':<16}{'status':<11}{'reference':<44}what it is for")
    for a in rows:
        purpose = DEFAULT_MODEL_INFO.get(a.name, ("", ""))[0]
        typer.echo(f"{a.name:<16}{a.status:<11}{a.ref:<44}{purpose}")
        if a.status != "available":
            typer.echo(f"{'':<16}  why: {a.reason}")
            typer.echo(f"{'':<16}  fix: {a.remedy}")
    missing = sum(a.status != "available" for a in rows)
    typer.echo(f"\n{len(rows) - missing} of {len(rows)} available")


@app.command()
def pull(names: list[str] = typer.Argument(None, help="Model names from `workbench models list` (default: all).")
         ) -> None:
    """Download default models into the local caches, with progress (for studios that later run offline)."""
    from workbench.models.sources import pull as do_pull

    try:
        results = do_pull(names or None, progress=typer.echo)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    failed = [r for r in results if not r.ok]
    typer.echo(f"\n{len(results) - len(failed)} of {len(results)} pulled")
    if failed:
        typer.echo("failed: " + ", ".join(r.name for r in failed), err=True)
        raise typer.Exit(1)
