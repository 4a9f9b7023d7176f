"""`workbench train`, `workbench runs list|show|stop|resume|log|delete`, `workbench sweep run|show|list`.

``workbench train`` takes the diffusers scripts' flags, so an existing command line works with only the program
changed::

    accelerate launch train_dreambooth_lora_sdxl.py --instance_prompt "a photo of TOK bag" --rank 8 ...
    workbench train                                 --instance_prompt "a photo of TOK bag" --rank 8 ...

It queues the run as a background job (a worker starts when none is alive) and follows its progress; Ctrl-C stops
following, not the run. Our own switches: --detach (queue and return), --estimate (print the estimate only),
--help-options (every option with its default), --processes N, --user NAME (the account the run is started as,
like ``workbench --as NAME``). The CLI acts as ``workbench.auth.operator.cli_actor``: the named account once the
workspace has accounts, else the operator.
"""
from __future__ import annotations

import time

import typer

runs_app = typer.Typer(help="Training runs: list, show, stop, resume, delete.", no_args_is_help=True)
sweep_app = typer.Typer(help="Sweeps: a grid of training runs sharing a sweep id, and their comparison.",
                        no_args_is_help=True)

OWN_SWITCHES = ("--detach", "--estimate", "--help-options")


def _actor(name: str | None = None):
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit(name=None if name in (None, "cli") else name)


def _fail(exc: Exception, code: int = 2) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


def _split_own(args: list[str]) -> tuple[dict, list[str]]:
    own: dict = {"detach": False, "estimate": False, "help_options": False, "processes": None, "user": "cli"}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in OWN_SWITCHES:
            own[a[2:].replace("-", "_")] = True
        elif a.split("=")[0] in ("--processes", "--user"):
            name, eq, value = a.partition("=")
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            own[name[2:]] = value
        else:
            rest.append(a)
        i += 1
    return own, rest


def follow(run_id: int, job_id: int, timeout: float | None = None) -> str:
    """Print the run's progress until its job ends; returns the final status."""
    from workbench.jobs import get_job

    last = ""
    started = time.monotonic()
    try:
        while True:
            job = get_job(job_id)
            line = f"[{job.status}] {job.message}"
            if line != last:
                typer.echo(line)
                last = line
            if not job.is_active:
                if job.status == "failed":
                    typer.echo(job.error[-2000:] if job.error else "", err=True)
                return job.status
            if timeout and time.monotonic() - started > timeout:
                return job.status
            time.sleep(1.0)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped following; run {run_id} goes on (`workbench runs show {run_id}`, "
                   f"`workbench runs stop {run_id}`)")
        return "running"


def train(ctx: typer.Context) -> None:
    """Train a LoRA or DreamBooth-LoRA (diffusers flags; --config run.yaml; --help-options lists them)."""
    from workbench.train.config import ConfigError, options_help, parse_args
    from workbench.train.estimate import describe, estimate
    from workbench.train.runs import RunError, get_run, run_dir, start

    if ctx.args and ctx.args[0] in ("clip", "scorers"):  # `workbench train clip|scorers`: the CLIP scorer commands
        typer.main.get_command(clip_app)(args=list(ctx.args), prog_name="workbench train")
        return
    if ctx.args and ctx.args[0] == "delete":  # `workbench train delete RUN` = `workbench runs delete RUN`
        typer.main.get_command(runs_app)(args=list(ctx.args), prog_name="workbench train")
        return
    own, flags = _split_own(list(ctx.args))
    if own["help_options"]:
        typer.echo(options_help())
        return
    try:
        cfg = parse_args(flags)
    except ConfigError as exc:
        _fail(exc)
    est = estimate(cfg)
    typer.echo(describe(est))
    if own["estimate"]:
        return
    try:
        run_id = start(_actor(own["user"]), cfg,
                       num_processes=int(own["processes"]) if own["processes"] else None)
    except (RunError, ConfigError) as exc:
        _fail(exc)
    job_id = get_run(run_id).jobs[-1]
    if job_id == run_id:
        typer.echo(f"queued run {run_id} (folder {run_dir(run_id)})")
    else:  # --output_dir was this run's folder and --resume_from_checkpoint was given: the run goes on
        typer.echo(f"run {run_id} continues as job {job_id} from {cfg.resume_from_checkpoint} "
                   f"(folder {run_dir(run_id)})")
    if own["detach"]:
        typer.echo(f"watch it with `workbench runs show {run_id}`")
        return
    status = follow(run_id, job_id)
    if status == "failed":
        raise typer.Exit(1)


def _fmt_loss(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


@runs_app.command("list")
def list_cmd(sweep: str = typer.Option(None, help="Only the runs of this sweep.")) -> None:
    """Runs, newest first: status, step, loss."""
    from workbench.train.runs import list_runs

    runs = list_runs(sweep_id=sweep)
    if not runs:
        typer.echo("no training runs yet: start one with `workbench train --config configs/tiny_cpu_demo.yaml`")
        return
    typer.echo(f"{'run':>5}  {'status':<8} {'step':>11}  {'loss':>8}  title")
    for r in runs:
        step = f"{r.step}/{r.total or '?'}"
        typer.echo(f"{r.run_id:>5}  {r.status:<8} {step:>11}  {_fmt_loss(r.loss):>8}  {r.title}")


@runs_app.command()
def show(run_id: int, lines: int = typer.Option(15, help="Lines of the log to show.")) -> None:
    """A run: status, config, checkpoints, LoRA, log tail."""
    from workbench.train.runs import RunError, checkpoints, get_run, lora_of, read_metrics, run_log

    try:
        r = get_run(run_id)
    except RunError as exc:
        _fail(exc)
    typer.echo(f"run {r.run_id}: {r.title}\nstatus: {r.status} ({r.message})\nstep: {r.step}/{r.total or '?'}  "
               f"loss: {_fmt_loss(r.loss)}\nfolder: {r.folder}\njobs: {', '.join(map(str, r.jobs))}")
    if r.sweep_id:
        typer.echo(f"sweep: {r.sweep_id}")
    typer.echo("options: " + " ".join(f"{k}={v}" for k, v in sorted(r.config.items())))
    metrics = read_metrics(run_id)
    if metrics:
        first, last = metrics[0]["loss"], metrics[-1]["loss"]
        typer.echo(f"metrics: {len(metrics)} steps, first loss {first:.4f}, last {last:.4f}")
    for c in checkpoints(run_id):
        typer.echo(f"checkpoint step {c['step']}: loss {_fmt_loss(c['loss'])}, {len(c['samples'])} validation images")
    lora = lora_of(run_id)
    if lora:
        typer.echo(f"LoRA {lora.id}: {lora.path}")
    typer.echo("--- log ---\n" + run_log(run_id, lines=lines))


@runs_app.command()
def stop(run_id: int) -> None:
    """Stop a run: it saves a checkpoint first, so it can be resumed."""
    from workbench.train.runs import RunError, stop as stop_run

    try:
        stop_run(_actor(), run_id)
    except RunError as exc:
        _fail(exc)
    typer.echo(f"stop requested for run {run_id}: it saves a checkpoint, then ends")


@runs_app.command()
def delete(run_id: int, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete a run (to the trash: `workbench trash restore` brings it back within the undo window)."""
    from workbench.trash import TrashError, window_text
    from workbench.train.runs import RunError, delete_run, get_run

    try:
        run = get_run(run_id)
    except RunError as exc:
        _fail(exc)
    if not yes:
        typer.confirm(f"delete run {run_id} ({run.title}, {run.status}, step {run.step})? It can be restored for "
                      f"{window_text()}", abort=True)
    try:
        info = delete_run(_actor(), run_id)
    except (RunError, TrashError) as exc:
        _fail(exc)
    typer.echo(f"run {run_id} is in the trash (entry {info.id}); undo with `workbench trash restore {info.id}` "
               f"before {info.expires_at:%Y-%m-%d %H:%M} UTC")


@runs_app.command()
def resume(run_id: int,
           detach: bool = typer.Option(True, help="Return at once (--no-detach follows progress).")) -> None:
    """Continue a stopped or failed run from its latest checkpoint."""
    from workbench.train.runs import RunError, resume as resume_run

    try:
        job_id = resume_run(_actor(), run_id)
    except RunError as exc:
        _fail(exc)
    typer.echo(f"run {run_id} resumes as job {job_id}")
    if not detach and follow(run_id, job_id) == "failed":
        raise typer.Exit(1)


@sweep_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sweep_run(ctx: typer.Context,
              grid: list[str] = typer.Option(..., help="option=v1,v2 (repeat for each swept option)."),
              name: str = typer.Option("", help="Sweep id (default: sweep-<random>)."),
              dry_run: bool = typer.Option(False, help="Only list the runs the grid makes.")) -> None:
    """Queue one run per grid point over a base config given as training flags (e.g. --config base.yaml)."""
    from workbench.train.config import ConfigError, parse_flags
    from workbench.train.runs import RunError, parse_grid, start_sweep, sweep_configs

    try:
        base = parse_flags(list(ctx.args))
        axes = parse_grid(grid)
        points = sweep_configs(base, axes)
    except ConfigError as exc:
        _fail(exc)
    if dry_run:
        for params, _ in points:
            typer.echo(" ".join(f"{k}={v}" for k, v in params.items()))
        typer.echo(f"{len(points)} runs")
        return
    try:
        sweep_id, run_ids = start_sweep(_actor(), base, axes, name=name)
    except (RunError, ConfigError) as exc:
        _fail(exc)
    typer.echo(f"sweep {sweep_id}: queued runs {', '.join(map(str, run_ids))}; compare with "
               f"`workbench sweep show {sweep_id}`")


@sweep_app.command("show")
def sweep_show(sweep_id: str) -> None:
    """Compare the runs of a sweep: swept options, status, final loss, time, evaluation scores."""
    from workbench.evaluate.results import sweep_rows
    from workbench.train.runs import RunError

    try:
        rows = sweep_rows(sweep_id)
    except RunError as exc:
        _fail(exc)
    cols = list(rows[0])
    typer.echo("  ".join(f"{c:>12}" for c in cols))
    for row in rows:
        typer.echo("  ".join(f"{(_fmt_loss(v) if isinstance(v, float) else str(v)):>12}" for v in row.values()))


@sweep_app.command("list")
def sweep_list() -> None:
    """Sweep ids, newest first."""
    from workbench.train.runs import sweep_ids

    for s in sweep_ids():
        typer.echo(s)


# -- `workbench train clip` / `workbench train scorers`: brand-tuned CLIP scorers (workbench.train.clip_tune) ----------

clip_app = typer.Typer(help="Brand-tuned CLIP scorers.", no_args_is_help=True)


@clip_app.command("clip")
def clip_cmd(dataset: str = typer.Option(..., help="Workspace dataset (id or name) with captions and a val split."),
             name: str = typer.Option(..., help="The scorer's name: a brand profile uses it as `scorer: tuned:NAME`."),
             base: str = typer.Option("", help="open_clip model to start from (default: settings.models.clip_scorer)."),
             trainable: str = typer.Option("last_blocks", help="head (projections, final norms) or last_blocks."),
             blocks: int = typer.Option(1, help="With last_blocks: final blocks of each tower that train."),
             steps: int = typer.Option(200), batch_size: int = typer.Option(32),
             learning_rate: float = typer.Option(1e-3),
             seed: int = typer.Option(0), detach: bool = typer.Option(False, help="Queue the job and return."),
             user: str = typer.Option("cli", help="The name the job is recorded under.")) -> None:
    """Tune a CLIP scorer on a captioned catalog: recall@1/@5 on the val split before and after, a scorer card."""
    from workbench.jobs import get_job
    from workbench.train.clip_tune import ClipTuneConfig, ClipTuneError, start_clip_tune

    cfg = ClipTuneConfig(dataset=dataset, name=name, base=base, trainable=trainable, blocks=blocks, steps=steps,
                         batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    try:
        job_id = start_clip_tune(_actor(user), cfg)
    except ClipTuneError as exc:
        _fail(exc)
    typer.echo(f"queued job {job_id}: tune CLIP scorer {name}")
    if detach:
        typer.echo(f"watch it with `workbench jobs show {job_id}`")
        return
    while (job := get_job(job_id)).status in ("queued", "running"):
        time.sleep(1.0)
    if job.status != "done":
        typer.echo(f"job {job_id} {job.status}: {job.message}", err=True)
        raise typer.Exit(1)
    r = job.result or {}
    b, a = r.get("recall_before", {}), r.get("recall_after", {})
    typer.echo(f"scorer {r.get('scorer')} in {r.get('path')}")
    typer.echo(f"held-out recall@1/@5 image->text: {b.get('i2t_r1', 0):.3f}/{b.get('i2t_r5', 0):.3f} -> "
               f"{a.get('i2t_r1', 0):.3f}/{a.get('i2t_r5', 0):.3f} (n={a.get('n')})")


@clip_app.command("scorers")
def scorers_cmd() -> None:
    """The tuned CLIP scorers, newest first, with their held-out recall@5 before and after."""
    from workbench.models.scorers import list_scorers

    rows = list_scorers()
    if not rows:
        typer.echo("no tuned scorers yet: `workbench train clip --dataset NAME --name SCORER`")
    for info in rows:
        b, a = info.card.get("recall_before", {}), info.card.get("recall_after", {})
        typer.echo(f"{info.label:<32} {info.path}  base {info.base_ref}  recall@5 {b.get('i2t_r5', 0):.3f} -> "
                   f"{a.get('i2t_r5', 0):.3f} (n={a.get('n')})")
