"""`workbench prompts list|render|expand|check`: templates, batches and rule checks from the command line.

    workbench prompts list
    workbench prompts render t-shirt --slot color=navy --scene flat-lay --brand northwind
    workbench prompts expand t-shirt --slot color='*' --slot fit=oversized --scene '*' --sample 50 --seed 7 \\
        --csv out.csv
    workbench prompts expand hoodie --slot color=navy --slot color=olive --brand northwind --save "AW hoodies"
    workbench prompts check                          # validate every template and profile file
    workbench prompts check --text "nwo_style navy tee" --brand northwind
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Prompt templates, brand profiles and batches.", no_args_is_help=True)

SLOT_HELP = "NAME=VALUE; repeat for several values of a slot; NAME='*' takes every allowed value."


def _fail(exc: Exception) -> None:
    typer.echo(str(exc), err=True)
    raise typer.Exit(2)


def _slots(pairs: list[str]) -> dict[str, list[str]]:
    from workbench.prompts.yamlio import PromptError

    slots: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise PromptError(f"--slot {pair!r}: write NAME=VALUE, e.g. --slot color=navy")
        slots.setdefault(name.strip(), []).append(value.strip())
    return slots


def _print_prompts(batch, show_negative: bool) -> None:
    for i, p in enumerate(batch.prompts, 1):
        flag = "  !" if p.check.issues else ""
        typer.echo(f"{i:>4}  [{p.tokens.total:>2} tok] {p.text}{flag}")
        for issue in p.check.issues:
            typer.echo(f"        ! {issue}")
        if show_negative:
            typer.echo(f"        negative: {p.negative}")


@app.command("list")
def list_cmd() -> None:
    """List templates, scene presets and brand profiles (and any file that failed to load)."""
    from workbench.prompts.library import load_library

    lib = load_library()
    typer.echo("templates:")
    for t in lib.templates.values():
        typer.echo(f"  {t.name:<18}{t.title:<26}slots: {', '.join(t.slots)}  ({t.path})")
    typer.echo("scenes:")
    for t in lib.scenes.values():
        typer.echo(f"  {t.name:<18}{t.title:<26}({t.path})")
    typer.echo("brands:")
    for b in lib.brands.values():
        typer.echo(f"  {b.name:<18}{b.title:<40}trigger: {b.trigger or '-'}  ({b.path})")
    for problem in lib.problems:
        typer.echo(f"not loaded: {problem}", err=True)


@app.command()
def render(
    template: str,
    slot: list[str] = typer.Option([], "--slot", "-s", help=SLOT_HELP),
    scene: str = typer.Option(None, help="Scene preset (default: the template's)."),
    brand: str = typer.Option(None, help="Brand profile: fills {trigger} and checks its rules."),
) -> None:
    """Render one prompt (one per inline alternative) with token count and rule warnings."""
    from workbench.prompts.expand import BatchSpec, expand_batch
    from workbench.prompts.library import load_library
    from workbench.prompts.yamlio import PromptError

    try:
        spec = BatchSpec(template, slots=_slots(slot), scenes=[scene] if scene else [], brand=brand)
        batch = expand_batch(load_library(), spec)
    except PromptError as exc:
        _fail(exc)
    _print_prompts(batch, show_negative=True)


@app.command()
def expand(
    template: str,
    slot: list[str] = typer.Option([], "--slot", "-s", help=SLOT_HELP),
    scene: list[str] = typer.Option([], "--scene", help="Scene preset; repeat for several, '*' for all."),
    brand: str = typer.Option(None, help="Brand profile: fills {trigger} and checks its rules."),
    sample: int = typer.Option(None, help="Draw this many at random instead of every combination."),
    seed: int = typer.Option(0, help="Seed of the random sample (same seed, same prompts)."),
    cap: int = typer.Option(10_000, help="Most prompts a batch may hold."),
    csv_path: Path = typer.Option(None, "--csv", help="Write the prompts to this CSV file."),
    json_path: Path = typer.Option(None, "--json", help="Write the prompts to this JSON file."),
    save: str = typer.Option(None, help="Save the batch to the prompt library under this name."),
    user: str = typer.Option("cli", help="The name kept with every prompt and in the audit log (the CLI saves as an "
                                         "operator: whoever runs it can open the workspace database)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary."),
) -> None:
    """Expand a batch: every combination, or a seeded random sample; duplicates removed; every prompt checked."""
    from workbench.prompts.expand import BatchSpec, expand_batch
    from workbench.prompts.library import load_library
    from workbench.prompts.store import save_batch
    from workbench.prompts.yamlio import PromptError
    from workbench.auth.operator import cli_actor_or_exit

    lib = load_library()
    try:
        scenes = list(lib.scenes) if "*" in scene else list(scene)
        spec = BatchSpec(template, slots=_slots(slot), scenes=scenes, brand=brand, cap=cap, seed=seed,
                         mode="sample" if sample else "cartesian", sample_size=sample)
        batch = expand_batch(lib, spec)
    except PromptError as exc:
        _fail(exc)
    if not quiet:
        _print_prompts(batch, show_negative=False)
    typer.echo(f"{len(batch.prompts)} prompts from {batch.combinations:,} combinations; "
               f"{batch.duplicates_removed} duplicates removed; {batch.with_violations} break brand rules; "
               f"{batch.truncated} over the token limit")
    rows = batch.rows()
    if csv_path:
        from workbench.csvsafe import write_csv

        write_csv(csv_path, list(dict.fromkeys(k for r in rows for k in r)), rows)
        typer.echo(f"wrote {csv_path}")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"wrote {json_path}")
    if save:
        try:
            saved = save_batch(cli_actor_or_exit(name=None if user == "cli" else user), batch, save)
        except PromptError as exc:
            _fail(exc)
        typer.echo(f"saved batch {saved.id} '{saved.name}' ({saved.size} prompts)")


@app.command()
def check(
    paths: list[Path] = typer.Argument(None, help="Template or profile files (default: every loaded file)."),
    text: str = typer.Option(None, help="Check this prompt instead: token count and brand rules."),
    negative: str = typer.Option("", help="With --text: the negative prompt."),
    brand: str = typer.Option(None, help="With --text: the brand profile whose rules apply."),
) -> None:
    """Validate template and profile files (exit 1 on any problem), or check one prompt's tokens and rules."""
    from workbench.prompts.brands import parse_brand
    from workbench.prompts.expand import check_prompt
    from workbench.prompts.library import load_library
    from workbench.prompts.templates import parse_template
    from workbench.prompts.yamlio import PromptError
    from workbench.yamlsafe import YamlRefused, read_yaml_file

    if text is not None:
        try:
            profile = load_library().brand(brand) if brand else None
        except PromptError as exc:
            _fail(exc)
        result = check_prompt(text, negative, profile)
        typer.echo(f"{result.tokens.total} tokens (limit 77)")
        for issue in result.issues:
            typer.echo(f"! {issue}")
        raise typer.Exit(1 if result.issues else 0)
    problems = []
    if paths:
        for path in paths:
            parse = parse_brand if path.parent.name == "brands" else parse_template
            try:
                parse(read_yaml_file(path), str(path), default_name=path.stem)
            except PromptError as exc:
                problems.extend(exc.problems)
            except YamlRefused as exc:
                problems.append(f"{path}: {exc.message}")
            except OSError as exc:
                problems.append(f"{path}: cannot read: {exc}")
        checked = f"{len(paths)} files"
    else:
        lib = load_library()
        problems = lib.problems
        checked = f"{len(lib.templates)} templates, {len(lib.scenes)} scenes, {len(lib.brands)} brand profiles"
    for problem in problems:
        typer.echo(str(problem), err=True)
    typer.echo(f"checked {checked}: {len(problems)} problems")
    raise typer.Exit(1 if problems else 0)
