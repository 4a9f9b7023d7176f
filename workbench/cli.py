"""The `workbench` command: one subcommand per capability, calling the same library functions as the pages.

    workbench --help
    workbench info
    workbench models list
    workbench jobs list
"""
from __future__ import annotations

import importlib

import typer

from workbench.demo import DEMO_TRAIN_STEPS

app = typer.Typer(help="Brand Workbench: from product photos to approved catalog images.", no_args_is_help=True)

# Each capability ships its own Typer sub-app in workbench/<capability>/cli.py (module path, command name).
# Importing them must stay cheap: heavy imports (torch, diffusers) happen inside the commands.
# An entry "module:attribute" names a Typer app other than ``app`` in that module.
SUBAPPS: list[tuple[str, str]] = [
    ("workbench.models.cli", "models"),
    ("workbench.jobs.cli", "jobs"),
    ("workbench.data.cli", "data"),
    ("workbench.products.cli", "products"),
    ("workbench.prompts.cli", "prompts"),
    ("workbench.generate.cli", "generate"),
    ("workbench.review.users_cli", "users"),
    ("workbench.review.cli", "review"),
    ("workbench.evaluate.cli", "evaluate"),
    ("workbench.evaluate.cli:eval_app", "eval"),
    ("workbench.train.cli:runs_app", "runs"),
    ("workbench.train.cli:sweep_app", "sweep"),
    ("workbench.trash.cli", "trash"),
]



@app.callback()
def main(as_user: str = typer.Option(
        None, "--as", metavar="NAME",
        help="Act as this account (its role is checked). Needed once the workspace has accounts, unless your OS "
             "login is one or WORKBENCH_CLI_USER is set; see docs/SECURITY.md.")) -> None:
    """Brand Workbench: from product photos to approved catalog images."""
    if as_user:
        import os

        from workbench.settings import reload_settings

        os.environ["WORKBENCH_CLI_USER"] = as_user
        reload_settings()


for _module, _name in SUBAPPS:
    _path, _, _attr = _module.partition(":")
    app.add_typer(getattr(importlib.import_module(_path), _attr or "app"), name=_name)

# `workbench train --diffusers-flags...`: a plain command that passes every flag on to the training config parser.
app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    importlib.import_module("workbench.train.cli").train)


@app.command()
def info() -> None:
    """Show the workspace, database, device and installed versions."""
    from workbench.overview import capability_report, workspace_counts

    report = capability_report()
    typer.echo(f"workspace: {report.workspace}")
    typer.echo(f"database:  {report.database}")
    typer.echo(f"torch:     {report.torch_version}")
    typer.echo(f"device:    {report.device}")
    for name, version in report.packages.items():
        typer.echo(f"{name + ':':<11}{version}")
    counts = workspace_counts()
    typer.echo("counts:    " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def worker(
    workers: int = typer.Option(1, help="Jobs run at once (each in its own process)."),
) -> None:
    """Run a job consumer in the foreground (the app starts one itself when none is alive)."""
    from workbench.jobs import run_worker

    run_worker(workers=workers)


@app.command()
def demo(
    size: int = typer.Option(128, help="Side in pixels of the demo catalog's photos."),
    train_steps: int = typer.Option(DEMO_TRAIN_STEPS, help="Steps of the demo LoRA run."),
) -> None:
    """Build the offline demo workspace: catalog, brand, users per role, a trained LoRA, prompts, generated images
    with CLIP-gate attempts, an evaluation, and images waiting for review. Safe to run again."""
    import time

    from workbench.demo import DemoRefused, build_demo

    started = time.monotonic()
    try:
        report = build_demo(progress=lambda step, total, message: typer.echo(f"[{step}/{total}] {message}"),
                            size=size, train_steps=train_steps)
    except DemoRefused as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(report.summary())
    typer.echo(f"took {time.monotonic() - started:.0f} s; open the app with `streamlit run Home.py`")


@app.command("demo-data")
def demo_data(
    seed: int = typer.Option(0, help="Random seed (same seed, same bytes)."),
    size: int = typer.Option(512, help="Image side in pixels."),
) -> None:
    """Draw the synthetic demo catalog of an invented brand (offline) and import it as a dataset."""
    from workbench.data.demo import import_demo_catalog
    from workbench.auth.operator import cli_actor_or_exit

    typer.echo(import_demo_catalog(cli_actor_or_exit(), seed=seed, size=size).summary())


if __name__ == "__main__":
    app()
