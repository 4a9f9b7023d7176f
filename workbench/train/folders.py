"""Where a run's files live, and which folder a new run may write into.

A run writes into ``workspace/runs/<run id>/`` unless it was queued with ``output_dir`` (a diffusers user's
``--output_dir DIR``): then into DIR, recorded as ``output_dir`` in its first job's config, so everything that reads a
run (metrics, checkpoints, validation images, the LoRA, the Training page) finds it there::

    from workbench.train.folders import run_folder, output_target
    run_folder(7)                      # Path of run 7's files
    folder, continues = output_target(cfg)   # (None, None): a new run in workspace/runs/<id>

``output_target`` refuses a folder the workbench did not write (non-empty), another run's folder (unless the config
resumes that run: then it names the run to continue), a folder inside a run's folder, and the workspace's own runs
folder. Only registered runs' folders count as written by the workbench: they are the only places a run resumes from
(issue #17; ``workbench.train.checkpoints``).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from workbench.db import Job, session_scope
from workbench.settings import get_settings

KIND = "train_lora"


class FolderRefused(ValueError):
    """``output_dir`` cannot be used for this run; the message names the option, the folder and what to do."""


def default_folder(run_id: int) -> Path:
    return get_settings().path("runs", str(run_id))


def _recorded(job: Job | None) -> Path | None:
    value = (job.config or {}).get("output_dir") if job is not None and job.kind == KIND else None
    return Path(value) if value else None


def run_folder(run_id: int) -> Path:
    """The folder of run ``run_id``: the output_dir recorded when it was queued, else workspace/runs/<run id>."""
    with session_scope() as s:
        recorded = _recorded(s.get(Job, run_id))
    return recorded or default_folder(run_id)


def run_folders() -> dict[Path, int]:
    """Every registered run's folder (resolved) -> its run id."""
    found: dict[Path, int] = {}
    with session_scope() as s:
        for job in s.scalars(select(Job).where(Job.kind == KIND).order_by(Job.id)):
            if int((job.config or {}).get("run_id") or job.id) == job.id:  # a chain's first job: the run
                found[(_recorded(job) or default_folder(job.id)).expanduser().resolve()] = job.id
    return found


def output_target(cfg) -> tuple[Path | None, int | None]:
    """Where a new job for ``cfg`` writes: (None, None) for workspace/runs/<new run id>; (DIR, None) for a new run in
    the empty or new folder ``output_dir``; (DIR, run id) when ``output_dir`` is a registered run's folder and the
    config resumes (``resume_from_checkpoint``): the job continues that run. Raises FolderRefused otherwise."""
    if not cfg.output_dir:
        return None, None
    folder = Path(cfg.output_dir).expanduser().resolve()
    owners = run_folders()
    owner = owners.get(folder)
    if owner is not None:
        if cfg.resume_from_checkpoint:
            return folder, owner
        raise FolderRefused(f"output_dir {folder} is run {owner}'s folder: add --resume_from_checkpoint latest to "
                            f"continue that run (or `workbench runs resume {owner}`), or give a new or empty folder")
    for other, run_id in owners.items():
        if other in folder.parents:
            raise FolderRefused(f"output_dir {folder} is inside run {run_id}'s folder {other}: give a folder outside "
                                "it")
    runs_root = get_settings().path("runs").resolve()
    if folder == runs_root or runs_root in folder.parents:
        raise FolderRefused(f"output_dir {folder} is inside the workspace's runs folder, where runs get "
                            "workspace/runs/<run id>: leave output_dir empty for that, or give a folder elsewhere")
    if folder.exists() and not folder.is_dir():
        raise FolderRefused(f"output_dir {folder} is a file: give a folder (new or empty)")
    if folder.is_dir() and any(folder.iterdir()):
        raise FolderRefused(f"output_dir {folder} is not empty and no workbench run wrote it: give a new or empty "
                            "folder (the run writes its checkpoints, LoRA, logs and metrics there)")
    return folder, None


def folder_problems(cfg) -> list[str]:
    """``output_dir`` and ``resume_from_checkpoint`` problems of a config about to be queued (``runs.preflight``)."""
    from workbench.train.checkpoints import resolve_checkpoint
    from workbench.train.config import ConfigError

    try:
        folder, continues = output_target(cfg)
    except FolderRefused as exc:
        return [str(exc)]
    if cfg.resume_from_checkpoint in (None, "latest"):
        return []
    # A run resumes only from its own folder's checkpoints (issue #17: a planted folder was unpickled): a new run has
    # none yet; a run continued through its output_dir only from that folder. Nothing in the folder is opened here.
    if continues is None:
        return [f"resume_from_checkpoint {cfg.resume_from_checkpoint!r}: a new run cannot start from a checkpoint "
                "folder; continue a run with `workbench runs resume <run id>` (or Resume on the Training page), or "
                "give --output_dir that run's folder"]
    try:
        resolve_checkpoint(cfg.resume_from_checkpoint, [folder])
    except ConfigError as exc:
        return [str(exc)]
    return []
