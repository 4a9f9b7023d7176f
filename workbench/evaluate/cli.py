"""`workbench evaluate` (run an evaluation) and `workbench eval list|show|export` (read results).

    workbench evaluate --batch ss26-base --batch ss26-ckpt1000 --reference demo-aurelo --split val
    workbench evaluate --config eval.json --wait          # the full EvalConfig as JSON (steps, sweep params, ids)
    workbench eval show 3
    workbench eval export 3 4 --out comparison.csv

The CLI evaluates as ``workbench.auth.operator.cli_actor("analyst")``: the named account (``workbench --as NAME``)
once the workspace has accounts, else the operator with the analyst's role.
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Evaluate generated image sets against a reference set (FID/KID, CLIP, BLIP, LPIPS, SSIM, "
                       "PSNR, brand consistency, OCR logo check).")
eval_app = typer.Typer(help="Read evaluation results: list, show, export.", no_args_is_help=True)


def _actor():
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit("analyst")


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(2)


@app.callback(invoke_without_command=True)
def evaluate(
    batch: list[str] = typer.Option(None, help="A generation batch to evaluate (one image set each); repeatable."),
    ids: str = typer.Option("", help="Comma-separated generation ids, evaluated as one image set named 'ids'."),
    reference: str = typer.Option("", help="Reference dataset (id or name) for FID/KID, paired and brand metrics."),
    split: str = typer.Option("val", help="Split of the reference dataset: train, val, test, or 'all'."),
    metrics: str = typer.Option("", help="Comma-separated metric groups (default all): fid_kid, clip, blip, paired, "
                                         "diversity, brand, preference, ocr."),
    brand: str = typer.Option("", help="Brand profile for the logo text (default: each image's brand)."),
    logo_text: str = typer.Option("", help="Logo text to look for (overrides the brand profile)."),
    name: str = typer.Option("", help="A name for this evaluation."),
    config: Path = typer.Option(None, help="A JSON file with the full evaluation config (image_sets, reference, ...)."),
    wait: bool = typer.Option(False, help="Run here, in this process, and print the results (no worker needed)."),
) -> None:
    """Create an evaluation and queue it as a job (or run it here with --wait)."""
    from workbench.evaluate.config import EvalConfig, EvaluationError, ImageSet, ReferenceSet

    try:
        if config is not None:
            cfg = EvalConfig.from_dict(json.loads(config.read_text()))
        else:
            sets = [ImageSet(label=b, batch=b) for b in batch or []]
            if ids:
                try:
                    sets.append(ImageSet(label="ids", generation_ids=[int(x) for x in ids.split(",") if x.strip()]))
                except ValueError:
                    _fail(f"--ids {ids!r}: expected comma-separated integers")
            ref = ReferenceSet(reference, None if split == "all" else split) if reference else None
            cfg = EvalConfig(image_sets=sets, name=name, brand=brand, logo_text=logo_text, reference=ref)
            if metrics:
                cfg.metrics = [m.strip() for m in metrics.split(",") if m.strip()]
        cfg.check()
    except (EvaluationError, json.JSONDecodeError, OSError, TypeError) as exc:
        _fail(str(exc))
    if wait:
        _run_here(cfg)
        return
    from workbench.evaluate.run import start_evaluation
    from workbench.jobs import get_job

    eval_id = start_evaluation(_actor(), cfg)
    from workbench.evaluate.results import get_evaluation

    job = get_job(get_evaluation(eval_id).job_id)
    typer.echo(f"queued evaluation {eval_id} (job {job.id}): watch it with `workbench jobs show {job.id}`, "
               f"then `workbench eval show {eval_id}`")


def _run_here(cfg) -> None:
    from workbench.evaluate.config import EvaluationError
    from workbench.evaluate.run import create_evaluation, run_evaluation

    eval_id = create_evaluation(_actor(), cfg)
    last = [-1]

    def progress(step: int, total: int, message: str) -> None:
        pct = int(100 * step / total) if total else 100
        if pct // 10 != last[0]:
            last[0] = pct // 10
            typer.echo(f"  {pct:3d}% {message}")

    try:
        run_evaluation(eval_id, progress=progress)
    except EvaluationError as exc:
        _fail(f"evaluation {eval_id} failed: {exc}")
    _show(eval_id)


def _show(eval_id: int, images: int = 0, sort: str = "") -> None:
    from workbench.evaluate.results import get_evaluation, image_rows, result_rows, status_of

    e = get_evaluation(eval_id)
    typer.echo(f"evaluation {e.id} · {e.name} · {status_of(e)}" + (f" · {e.error}" if e.error else ""))
    ref = e.reference or {}
    if ref:
        typer.echo(f"reference: {ref.get('dataset')} split {ref.get('split') or 'all'} ({ref.get('n')} photos)")
    for group, b in sorted((e.backbones or {}).items()):
        state = "unavailable" if b.get("status") == "unavailable" else (b.get("backend") or b.get("package", ""))
        demo = " (demo model)" if b.get("demo_model") else ""
        typer.echo(f"  {group:<11} {b.get('ref', '')} {state}{demo}")
    rows = result_rows([eval_id])
    if not rows:
        typer.echo("no results yet")
    width = max([len(r["image_set"]) for r in rows] + [9])
    for r in rows:
        typer.echo(f"{r['image_set']:<{width}}  {r['metric']:<17} {r['display']}")
    if images and sort:
        imgs = [i for i in image_rows(eval_id) if i.get(sort) is not None]
        imgs.sort(key=lambda i: i[sort])
        typer.echo(f"lowest {sort}:")
        for i in imgs[:images]:
            typer.echo(f"  {i[sort]:.4g}  {i['image']}  {i['prompt'][:60]!r}")


@eval_app.command("list")
def list_cmd(limit: int = typer.Option(20)) -> None:
    """Recent evaluations."""
    from workbench.evaluate.results import list_evaluations, status_of

    rows = list_evaluations(limit)
    if not rows:
        typer.echo("no evaluations yet")
    for e in rows:
        sets = ", ".join(s["label"] for s in (e.config or {}).get("image_sets", []))
        typer.echo(f"{e.id:>4}  {status_of(e):<8} {e.created_at:%Y-%m-%d %H:%M}  {e.name}  [{sets}]")


@eval_app.command()
def show(
    evaluation_id: int = typer.Argument(..., help="Evaluation id (see `workbench eval list`)."),
    images: int = typer.Option(0, help="Also list this many images with the lowest --sort value."),
    sort: str = typer.Option("clip_cosine", help="Per-image metric to sort by (e.g. clip_cosine, ocr_pass)."),
) -> None:
    """Aggregates of one evaluation, with intervals, reliability and unavailable metrics."""
    from workbench.evaluate.config import EvaluationError

    try:
        _show(evaluation_id, images, sort)
    except EvaluationError as exc:
        _fail(str(exc))


@eval_app.command()
def export(
    evaluation_ids: list[int] = typer.Argument(..., help="One or more evaluation ids."),
    out: Path = typer.Option(None, help="CSV file to write (default: print to stdout)."),
) -> None:
    """The aggregates of one or more evaluations as CSV."""
    from workbench.evaluate.config import EvaluationError
    from workbench.evaluate.results import export_csv, get_evaluation

    try:
        for i in evaluation_ids:
            get_evaluation(i)
    except EvaluationError as exc:
        _fail(str(exc))
    text = export_csv(evaluation_ids, out)
    typer.echo(f"wrote {out}" if out else text.rstrip("\n"))


@eval_app.command("suite")
def suite(
    name: str = typer.Argument(..., help="Suite name: its batches are suite-<name>-<label>."),
    prompt: list[str] = typer.Option(..., help="A prompt of the suite; repeat for each."),
    variant: list[str] = typer.Option(..., help="LABEL=base, LABEL=MODEL, or LABEL=MODEL+LORA_PATH[:SCALE][@STEP] "
                                               "(e.g. ckpt1000=+runs/3/checkpoints/checkpoint-1000@1000); repeat."),
    seed: int = typer.Option(0, help="Seed of the first image of each prompt (the same for every variant)."),
    n: int = typer.Option(1, help="Images per prompt."),
    size: int = typer.Option(1024, help="Width and height."),
    steps: int = typer.Option(30),
) -> None:
    """Queue a prompt suite: the same prompts and seeds through several models / LoRAs / checkpoints, one generate
    job each, so the image sets compare on identical inputs. Prints the `workbench evaluate` line to run after."""
    from workbench.evaluate.config import EvaluationError
    from workbench.evaluate.suites import SuiteVariant, enqueue_prompt_suite

    variants = []
    for item in variant:
        label, eq, spec = item.partition("=")
        if not eq or not label:
            _fail(f"--variant {item!r}: write LABEL=base, LABEL=MODEL or LABEL=MODEL+LORA[:SCALE][@STEP]")
        spec, _, step = spec.partition("@")
        model, plus, lora = spec.partition("+")
        loras = []
        if plus:
            path, colon, scale = lora.rpartition(":") if ":" in lora else (lora, "", "1.0")
            try:
                loras.append({"path": path or lora, "scale": float(scale or 1.0)})
            except ValueError:
                _fail(f"--variant {item!r}: the LoRA scale {scale!r} is not a number")
        if step and not step.isdigit():
            _fail(f"--variant {item!r}: the step after @ must be a whole number")
        variants.append(SuiteVariant(label=label, model=None if model in ("", "base") else model, loras=loras,
                                     step=int(step) if step else None))
    try:
        sets = enqueue_prompt_suite(_actor(), name, prompt, variants, seed=seed, images_per_prompt=n, width=size,
                                    height=size, steps=steps)
    except EvaluationError as exc:
        _fail(str(exc))
    typer.echo(f"queued {len(sets)} generate jobs ({len(prompt)} prompts x {n} images each, seeds from {seed})")
    typer.echo("when they are done: workbench evaluate " + " ".join(f"--batch {s.batch}" for s in sets)
               + " --reference DATASET")
