"""Training runs as background jobs: start, watch, stop, resume, sweep.

A *run* is a chain of ``train_lora`` jobs writing into one folder, ``workspace/runs/<run id>`` or the ``output_dir`` it
was queued with (recorded in its first job's config: ``workbench.train.folders``); the run id is the id of the chain's
first job. Resuming adds a job (``jobs.resumed_from`` = the previous job) that continues from the run's latest
checkpoint with the same config, so the run keeps one folder, one metrics.jsonl and one set of checkpoints. Starting a
config whose ``output_dir`` is a run's folder with ``resume_from_checkpoint`` set (a diffusers user running the same
command line again with a higher ``max_train_steps``) continues that run the same way, with the new config.

The job handler launches the training script through accelerate, as a user would by hand::

    accelerate launch --num_processes N [--multi_gpu] -m workbench.train --flags...

Stopping: the script polls the job's stop flag every step, saves a checkpoint and exits; only if it does not do so
within the grace period does the supervisor signal the process group (SIGTERM, then SIGKILL). A run whose process was
killed ends as a failed job with its log tail, and resumes from its last checkpoint.

Starting, stopping and resuming a run and starting a sweep need the ``train`` permission (``workbench.auth``),
checked when the user asks; the job then runs as the user who queued it, without checking again.
"""
from __future__ import annotations

import itertools
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench import trash
from workbench.db import Job, session_scope
from workbench.jobs import JobError, JobStopped, enqueue, get_job, log_tail, reconcile, request_stop
from workbench.auth import Actor, require
from workbench.settings import get_settings
from workbench.train.config import ConfigError, TrainConfig, build_config
from workbench.train.folders import folder_problems, output_target, run_folder

KIND = "train_lora"


class RunError(RuntimeError):
    """A run could not be started, found, stopped or resumed; the message says which and what to do."""


# -- the job ------------------------------------------------------------------------------------------------------

def launch_command(cfg: TrainConfig, num_processes: int, cpu: bool) -> list[str]:
    """``accelerate launch -m workbench.train --flags...`` for this config."""
    from workbench.jobs.runner import accelerate_command

    return accelerate_command(["workbench.train", *cfg.to_flags()], num_processes, cpu, cfg.mixed_precision)


def _error_lines(text: str) -> str:
    found = [line.split("error:", 1)[1].strip() for line in text.splitlines() if line.startswith("error:")]
    return found[-1] if found else ""


def _train_in_this_process(cfg: TrainConfig, env: dict[str, str]) -> int:
    """One process needs no launcher: run the training script here (the job process is the trainer, so a stop, a
    SIGTERM and a SIGKILL reach it the same way). Saves starting ``accelerate launch`` and a second Python that
    imports torch and diffusers again. Returns the exit code ``python -m workbench.train`` would."""
    import signal
    import traceback

    from workbench.train.__main__ import run

    saved_env = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # what the script reads to report progress and poll the stop flag
    previous = signal.getsignal(signal.SIGTERM)  # the script installs its own handler: the job runner's comes back
    try:
        return run(cfg.to_flags())
    except Exception:  # noqa: BLE001 - as the launched script would: the traceback in the log, exit code 1
        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def train_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``train_lora``). Config: ``config`` (TrainConfig fields), ``run_id``, optional ``sweep_id``."""
    run_id = int(ctx.config.get("run_id") or ctx.job_id)
    cfg = build_config(dict(ctx.config["config"]), f"in job {ctx.job_id}")
    out = run_dir(run_id)
    cfg = cfg.model_copy(update={"output_dir": str(out)})
    settings = ctx.settings
    num_processes = int(ctx.config.get("num_processes") or settings.num_processes)
    cpu = settings.resolved_device() == "cpu"
    ctx.progress(0, cfg.max_train_steps, message="starting (loading models)", force=True)
    env = {"WORKBENCH_JOB_ID": str(ctx.job_id), "WORKBENCH_RUN_ID": str(run_id),
           "WORKBENCH_USER": ctx.created_by or "", "WORKBENCH_WORKSPACE": str(settings.workspace_dir)}
    (out / "result.json").unlink(missing_ok=True)  # a previous job's outcome must not be read as this one's
    if cfg.resume_from_checkpoint and not ctx.config.get("run_id"):
        from workbench.train.checkpoints import list_checkpoints

        if list_checkpoints(out):  # the folder was empty when the run was queued: these are not this run's
            raise RunError(f"output_dir {out} holds checkpoints this run did not write (they appeared after it was "
                           "queued); it resumes only from its own. Empty the folder or give another one.")
    # The script stops itself (it polls the stop flag and checkpoints first); the supervisor escalates if it hangs.
    if num_processes == 1:
        code = _train_in_this_process(cfg, env)
    else:
        code = ctx.run_child(launch_command(cfg, num_processes, cpu), env=env, forward_stop=False)
    result_path = out / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if result.get("status") == "stopped":  # also when the launcher itself was signalled on the way out
        raise JobStopped()
    if code != 0:
        reason = _error_lines(log_tail(ctx.job_id, lines=200))
        if code == 2:
            raise RunError(f"bad training options: {reason}")
        if code == 3:
            raise RunError(reason or "the loss diverged (NaN/inf)")
        raise RunError(f"training exited with code {code}" + (f": {reason}" if reason else "; see the log tail") +
                       ". Resume the run to continue from its last checkpoint.")
    return result


# -- starting, stopping, resuming ---------------------------------------------------------------------------------

def run_dir(run_id: int) -> Path:
    """The run's folder: the output_dir recorded when it was queued, else workspace/runs/<run id>."""
    return run_folder(run_id)


def preflight(cfg: TrainConfig) -> list[str]:
    """Problems found before launch, as messages naming the option (an empty list when the run can start)."""
    from workbench.models.sources import availability

    problems = []
    base = cfg.pretrained_model_name_or_path or get_settings().models.sdxl_base
    for option, ref in (("pretrained_model_name_or_path", base),
                        ("pretrained_vae_model_name_or_path", cfg.pretrained_vae_model_name_or_path)):
        found = availability(ref) if ref else None
        if found is not None and not found.ok:
            problems.append(f"{option} {ref!r}: {found.reason}. {found.remedy}")
    problems += folder_problems(cfg)
    source = cfg.data_source
    if cfg.dataset_name:
        return problems
    if not source:
        return problems + ["no training data: pick a dataset (a workspace dataset id or a folder)"]
    if source.isdigit() or (cfg.dataset and not Path(source).is_dir()):
        from workbench.data.store import DatasetError, get_dataset

        try:
            get_dataset(source)
        except DatasetError as exc:
            if source.isdigit() and "no dataset" in str(exc):
                problems.append(f"dataset {source}: there is no workspace dataset with this id (see `workbench data "
                                "list`)")
            else:
                problems.append(f"dataset: {exc}; or give an existing folder")
    elif not Path(source).is_dir():
        problems.append(f"dataset {source!r}: the folder does not exist")
    return problems


def with_dataset_id(cfg: TrainConfig) -> TrainConfig:
    """``dataset`` given by the name the Datasets page shows becomes that dataset's id (what the job, the delete guard
    and the run's lineage read). A folder of that name wins; an id or a folder is kept as it is."""
    if not cfg.dataset or cfg.dataset.isdigit() or Path(cfg.dataset).is_dir():
        return cfg
    from workbench.data.store import DatasetError, get_dataset

    try:
        return cfg.model_copy(update={"dataset": str(get_dataset(cfg.dataset).id)})
    except DatasetError as exc:
        raise RunError(f"dataset: {exc}; or give an existing folder") from None


def start(actor: Actor, cfg: TrainConfig, sweep_id: str | None = None, title: str | None = None,
          num_processes: int | None = None, queue: bool = True) -> int:
    """Queue a run for ``created_by``; returns the run id (= its first job's id). It writes into ``output_dir`` when
    set (recorded with the run), else workspace/runs/<run id>. When ``output_dir`` is a run's folder and
    ``resume_from_checkpoint`` is set, the job continues that run instead (see ``_continue``) and its id is returned.
    ``queue=False``: see ``jobs.enqueue``."""
    who = require(actor, "train")
    problems = preflight(cfg)
    if problems:
        raise RunError("; ".join(problems))
    cfg = with_dataset_id(cfg)
    folder, continues = output_target(cfg)
    if continues is not None:
        return _continue(continues, cfg, who, num_processes, queue)
    config: dict[str, Any] = {"config": cfg.model_dump(mode="json")}  # every option: defaults may change later
    if folder is not None:
        config["output_dir"] = config["config"]["output_dir"] = str(folder)
    if sweep_id:
        config["sweep_id"] = sweep_id
    if num_processes:
        config["num_processes"] = num_processes
    name = title or cfg.run_name or f"{cfg.method.replace('_', ' ')} rank {cfg.rank}"
    return enqueue(KIND, config, title=name, created_by=who.username, queue=queue)


def _continue(run_id: int, cfg: TrainConfig, who, num_processes: int | None, queue: bool) -> int:
    """The same command line again, with ``resume_from_checkpoint`` and the run's folder as ``output_dir``: a new job
    of run ``run_id`` with this config (e.g. a higher max_train_steps), from the checkpoint it names."""
    from workbench.train.checkpoints import resolve_checkpoint

    jobs = _jobs_of(run_id)
    if reconcile(job_ids=[j.id for j in jobs if j.status == "running"]):  # its process died unnoticed
        jobs = _jobs_of(run_id)
    last, folder = jobs[-1], run_dir(run_id)
    if last.is_active:
        raise RunError(f"output_dir {folder}: run {run_id} writing there is {last.status}: wait for it or stop it "
                       f"(`workbench runs stop {run_id}`) before continuing it")
    ckpt = resolve_checkpoint(cfg.resume_from_checkpoint, [folder])
    at = int(ckpt.name.split("-")[1]) if ckpt else 0
    if ckpt and cfg.max_train_steps is not None and cfg.max_train_steps <= at:
        raise RunError(f"max_train_steps {cfg.max_train_steps}: run {run_id} is already at step {at} ({ckpt.name}); "
                       "raise --max_train_steps to train it further")
    config = dict(last.config)
    config.update(config=cfg.model_dump(mode="json") | {"output_dir": str(folder)}, run_id=run_id)
    if num_processes:
        config["num_processes"] = num_processes
    title = f"{jobs[0].title} (continued at step {at})" if ckpt else f"{jobs[0].title} (started again)"
    enqueue(KIND, config, title=title, created_by=who.username, resumed_from=last.id, queue=queue)
    return run_id


def _chain(s, run_id: int) -> list[Job]:
    return [j for j in s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id))
            if int((j.config or {}).get("run_id") or j.id) == run_id]


def _jobs_of(run_id: int) -> list[Job]:
    with session_scope() as s:
        jobs = _chain(s, run_id)
        gone = trash.in_trash(s, "run", run_id) if jobs else None
    if not jobs:
        raise RunError(f"no training run with id {run_id} (see `workbench runs list`)")
    if gone is not None:
        raise RunError(f"training run {run_id} is in the trash (deleted by {gone.deleted_by}); restore it with "
                       f"`workbench trash restore {gone.id}`")
    return jobs


def stop(actor: Actor, run_id: int) -> Job:
    """Ask the run's active job to stop: it saves a checkpoint first, so the run can be resumed. A job whose process
    is already gone is marked stopped at once (``jobs.request_stop``)."""
    require(actor, "train")
    active = [j for j in _jobs_of(run_id) if j.is_active]
    if not active:
        raise RunError(f"run {run_id} is not running (status {_jobs_of(run_id)[-1].status})")
    return request_stop(active[-1].id)


def resume(actor: Actor, run_id: int) -> int:
    """Continue a stopped or failed run from its latest checkpoint: a new job in the same folder, queued by
    ``created_by``. Returns its job id."""
    from workbench.train.checkpoints import list_checkpoints

    who = require(actor, "train")
    jobs = _jobs_of(run_id)
    if reconcile(job_ids=[j.id for j in jobs if j.status == "running"]):  # its process died unnoticed
        jobs = _jobs_of(run_id)
    last = jobs[-1]
    if last.is_active:
        raise RunError(f"run {run_id} is {last.status}: stop it before resuming")
    if last.status == "done":
        raise RunError(f"run {run_id} finished; start a new run (or a longer one) instead of resuming")
    checkpoints = list_checkpoints(run_dir(run_id))
    if not checkpoints:
        raise RunError(f"run {run_id} has no checkpoint yet (it stopped before checkpointing_steps); start it again")
    config = dict(last.config)
    config["config"] = {**config["config"], "resume_from_checkpoint": "latest"}
    config["run_id"] = run_id
    return enqueue(KIND, config, title=f"{jobs[0].title} (resumed at step {checkpoints[-1].name.split('-')[1]})",
                   created_by=who.username, resumed_from=last.id)


# -- reading runs -------------------------------------------------------------------------------------------------

@dataclass
class RunInfo:
    run_id: int
    title: str
    status: str  # of the latest job
    step: int
    total: int | None
    loss: float | None
    config: dict[str, Any]
    sweep_id: str | None
    jobs: list[int]
    created_by: str
    created_at: Any
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    @property
    def folder(self) -> Path:
        return run_dir(self.run_id)


def _info(jobs: list[Job]) -> RunInfo:
    first, last = jobs[0], jobs[-1]
    metrics = last.metrics or {}
    result = dict(last.result or {})
    seconds = sum(((j.finished_at or j.updated_at) - j.started_at).total_seconds() for j in jobs
                  if j.started_at and (j.finished_at or j.updated_at))
    return RunInfo(run_id=first.id, title=first.title, status=last.status, step=last.progress_step,
                   total=last.progress_total, loss=result.get("final_loss", metrics.get("loss")),
                   config=dict(first.config.get("config") or {}), sweep_id=first.config.get("sweep_id"),
                   jobs=[j.id for j in jobs], created_by=first.created_by, created_at=first.created_at,
                   message=last.message, result=result, seconds=seconds or None)


def list_runs(limit: int = 200, sweep_id: str | None = None) -> list[RunInfo]:
    """Runs, newest first."""
    chains: dict[int, list[Job]] = {}
    with session_scope() as s:
        deleted = {int(k) for k in s.scalars(trash.hidden_keys("run"))}
        for j in s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id)):
            chains.setdefault(int((j.config or {}).get("run_id") or j.id), []).append(j)
    chains = {run_id: jobs for run_id, jobs in chains.items() if run_id not in deleted}
    runs = [_info(jobs) for _, jobs in sorted(chains.items(), reverse=True)]
    if sweep_id:
        runs = [r for r in runs if r.sweep_id == sweep_id]
    return runs[:limit]


def get_run(run_id: int) -> RunInfo:
    return _info(_jobs_of(run_id))


def read_metrics(run_id: int) -> list[dict[str, Any]]:
    """Every step's row of metrics.jsonl (step, epoch, loss, lr, s_per_step, eta_s, gpu_mem_gb)."""
    path = run_dir(run_id) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return rows


def checkpoints(run_id: int) -> list[dict[str, Any]]:
    """Checkpoints of a run (step, loss, folder, validation images), oldest first."""
    from workbench.train.tables import Checkpoint

    with session_scope() as s:
        rows = list(s.scalars(select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.step)))
    out = run_dir(run_id)
    return [{"step": r.step, "loss": r.loss, "path": r.path, "samples": [str(out / p) for p in r.samples or []]}
            for r in rows]


def validation_grid(run_id: int) -> dict[int, list[Path]]:
    """Validation images per step (samples/step-*/), same prompts and seeds at every step."""
    folder = run_dir(run_id) / "samples"
    grid: dict[int, list[Path]] = {}
    for step_dir in sorted(folder.glob("step-*")) if folder.is_dir() else []:
        grid[int(step_dir.name.split("-")[1])] = sorted(step_dir.glob("*.png"))
    return grid


def lora_of(run_id: int):
    """The registered LoRA of a finished run, or None."""
    from workbench.train.tables import Lora

    with session_scope() as s:
        if trash.in_trash(s, "run", run_id) is not None:
            return None
        return s.scalars(select(Lora).where(Lora.run_id == run_id).order_by(Lora.id.desc())).first()


# -- deleting runs (workbench.trash) ------------------------------------------------------------------------------

def delete_run(actor: Actor, run_id: int) -> trash.TrashInfo:
    """Put a training run in the trash: it leaves the runs table and its LoRA leaves every picker; its folder (LoRA,
    checkpoints, samples, metrics) moves to workspace/trash/ for ``trash_undo_hours``, then a purge removes its rows
    and files for good. Refused while one of its jobs is queued or running."""
    who = require(actor, "train")
    jobs = _jobs_of(run_id)
    folder = run_dir(run_id)

    def check(s) -> None:
        active = [j for j in _chain(s, run_id) if j.is_active]
        if active:
            raise RunError(f"run {run_id} is {active[-1].status} (job {active[-1].id}): stop it first "
                           f"(`workbench runs stop {run_id}`), then delete it")

    from workbench.train.tables import Checkpoint

    with session_scope() as s:
        ckpts = len(list(s.scalars(select(Checkpoint.id).where(Checkpoint.run_id == run_id))))
    detail = {"jobs": [j.id for j in jobs], "status": jobs[-1].status, "step": jobs[-1].progress_step,
              "checkpoints": ckpts, "folder": str(folder)}
    return trash.put(who, "run", run_id, jobs[0].title or f"run {run_id}", [folder], detail, check=check)


def purge_run_rows(session, key: str) -> dict[str, Any]:
    """The trash's purge of a run: its LoRA, checkpoint and product-link rows, its jobs (newest first: a resume
    points at the job before it) and their logs."""
    from sqlalchemy import delete, inspect as sa_inspect, text

    from workbench.jobs import log_path_for
    from workbench.train.tables import Checkpoint, Lora

    run_id = int(key)
    chain = _chain(session, run_id)
    loras = session.execute(delete(Lora).where(Lora.run_id == run_id)).rowcount
    ckpts = session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id)).rowcount
    if sa_inspect(session.get_bind()).has_table("lora_products"):  # the products capability's table
        session.execute(text("DELETE FROM lora_products WHERE run_id = :r"), {"r": run_id})
    for job in reversed(chain):
        session.delete(job)
        session.flush()
        log_path_for(job.id).unlink(missing_ok=True)
    return {"jobs": len(chain), "loras": loras, "checkpoints": ckpts}


def run_log(run_id: int, lines: int = 60) -> str:
    return log_tail(_jobs_of(run_id)[-1].id, lines=lines)


# -- sweeps -------------------------------------------------------------------------------------------------------

# What a sweep may vary: hyperparameters only (an allow-list). Paths, model and data references, prompts and output
# options stay in the base config, which the user chose as a whole (issue #17: a swept resume_from_checkpoint ran code).
SWEEPABLE = (
    "rank", "lora_alpha", "lora_dropout", "train_text_encoder", "text_encoder_lr",
    "train_batch_size", "gradient_accumulation_steps", "gradient_checkpointing", "max_train_steps", "num_train_epochs",
    "learning_rate", "scale_lr", "lr_scheduler", "lr_warmup_steps", "lr_num_cycles", "lr_power", "use_8bit_adam",
    "adam_beta1", "adam_beta2", "adam_weight_decay", "adam_epsilon", "max_grad_norm", "snr_gamma", "noise_offset",
    "prediction_type", "mixed_precision", "seed", "resolution", "center_crop", "random_flip", "prior_loss_weight",
    "num_class_images", "checkpointing_steps")


def check_axis(name: str) -> None:
    """ConfigError unless ``name`` is an option a sweep may vary."""
    from workbench.train.config import FIELDS, _unknown

    if name not in FIELDS:
        raise _unknown(name, "in the sweep grid")
    if name not in SWEEPABLE:
        raise ConfigError(f"sweep axis {name!r} cannot be swept: only hyperparameters can ({', '.join(SWEEPABLE)}); "
                          f"set {name} in the base config instead")


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["rank=4,8", "learning_rate=1e-4,3e-4"]`` -> {"rank": ["4", "8"], ...} (validated later by TrainConfig)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, eq, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not eq or not values.strip():
            raise ConfigError(f"sweep axis {item!r}: write it as option=value1,value2")
        check_axis(name)
        grid[name] = [v.strip() for v in values.split(",") if v.strip()]
    return grid


def sweep_configs(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], TrainConfig]]:
    """Every combination of the grid over the base config, validated (one bad value fails the whole sweep)."""
    if not grid:
        raise ConfigError("a sweep needs at least one option with several values, e.g. rank=4,8")
    for name in grid:
        check_axis(name)
    names = list(grid)
    out = []
    for combo in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, combo))
        label = " ".join(f"{k}={v}" for k, v in params.items())
        cfg = build_config({**base, **params}, f"in sweep point {label}")
        out.append((params, cfg))
    return out


def start_sweep(actor: Actor, base: dict[str, Any], grid: dict[str, list[Any]],
                name: str = "") -> tuple[str, list[int]]:
    """Queue one run per grid point, sharing a sweep id. Returns (sweep id, run ids)."""
    actor = require(actor, "train")  # before any run is queued: all of the sweep or none of it
    points = sweep_configs(base, grid)
    if base.get("output_dir") and len(points) > 1:
        raise RunError("output_dir: every run of a sweep needs its own folder; leave output_dir empty (each run "
                       "writes into workspace/runs/<run id>)")
    for _, cfg in points:
        problems = preflight(cfg)
        if problems:
            raise RunError("; ".join(problems))
    sweep_id = name or f"sweep-{uuid.uuid4().hex[:8]}"
    run_ids = []
    for params, cfg in points:
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        cfg = cfg.model_copy(update={"run_name": f"{sweep_id}: {label}"})
        run_ids.append(start(actor, cfg, sweep_id=sweep_id, title=f"{sweep_id}: {label}"))
    return sweep_id, run_ids


def sweep_ids() -> list[str]:
    return sorted({r.sweep_id for r in list_runs(limit=10_000) if r.sweep_id}, reverse=True)


def sweep_table(sweep_id: str) -> list[dict[str, Any]]:
    """One row per run of a sweep: the swept options, status, final loss, training time (the Training page and
    ``workbench sweep show`` add each run's evaluation scores: ``workbench.evaluate.results.sweep_rows``)."""
    runs = list_runs(limit=10_000, sweep_id=sweep_id)
    if not runs:
        raise RunError(f"no sweep {sweep_id!r}")
    defaults = TrainConfig().model_dump(mode="json")
    varying = sorted({k for r in runs for k, v in r.config.items()
                      if k != "run_name" and len({json.dumps(x.config.get(k, defaults.get(k))) for x in runs}) > 1})
    rows = []
    for r in sorted(runs, key=lambda r: r.run_id):
        row: dict[str, Any] = {"run": r.run_id}
        for k in varying:
            row[k] = r.config.get(k, defaults.get(k))
        row.update(status=r.status, step=r.step, final_loss=r.loss,
                   minutes=round(r.seconds / 60, 2) if r.seconds else None)
        rows.append(row)
    return rows


def active_job(run_id: int) -> Job | None:
    jobs = [j for j in _jobs_of(run_id) if j.is_active]
    return jobs[-1] if jobs else None


__all__ = ["KIND", "SWEEPABLE", "JobError", "RunError", "RunInfo", "active_job", "check_axis", "checkpoints", "get_job",
           "get_run", "launch_command", "list_runs", "lora_of", "parse_grid", "preflight", "read_metrics", "resume",
           "run_dir", "run_log", "start", "start_sweep", "stop", "sweep_configs", "sweep_ids", "sweep_table",
           "train_job", "validation_grid"]
