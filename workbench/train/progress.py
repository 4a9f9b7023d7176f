"""What the training script reports while it runs: metrics.jsonl, the job row, stop requests, the registry.

Only the main process writes (``Reporter(enabled=is_main)``). When the script runs as a job, the job runner passes
``WORKBENCH_JOB_ID`` (the job writing) and ``WORKBENCH_RUN_ID`` (the run, i.e. the first job of a resumed chain);
without them the script still writes metrics.jsonl and registers its LoRA, but there is no job row to update.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

PROGRESS_EVERY = 0.5  # seconds between job-row writes (the last step is always written)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def job_id() -> int | None:
    return _env_int("WORKBENCH_JOB_ID")


def run_id() -> int | None:
    return _env_int("WORKBENCH_RUN_ID") or job_id()


class StepTimer:
    """Seconds per optimizer step, excluding checkpoint and validation time, and an ETA from the recent average."""

    def __init__(self, window: int = 20):
        self.window = window
        self.recent: list[float] = []
        self.last = time.monotonic()

    def tick(self, steps: int = 1) -> float:
        """Seconds per step since the last tick, which covered ``steps`` steps (the script reads the GPU back every
        ``logging_steps`` steps: only then is their time known)."""
        now = time.monotonic()
        seconds, self.last = (now - self.last) / steps, now
        self.recent = (self.recent + [seconds] * steps)[-self.window:]
        return seconds

    def pause(self) -> None:
        """Call after non-step work (checkpoint, validation) so it is not counted in the next step."""
        self.last = time.monotonic()

    def eta(self, remaining: int) -> float:
        steady = self.recent[1:] or self.recent  # the first step pays for warm-up
        return remaining * sum(steady) / len(steady) if steady else 0.0


class Reporter:
    def __init__(self, out: Path, enabled: bool):
        self.out = out
        self.enabled = enabled
        self.metrics_path = out / "metrics.jsonl"
        self.job_id = job_id()
        self.run_id = run_id()
        self._last_write = 0.0

    def log(self, message: str) -> None:
        if self.enabled:
            print(f"[train] {message}", flush=True)

    def truncate_after(self, step: int) -> None:
        """At the start (step 0) or on resume, drop metrics rows and validation images of steps after ``step``: they
        will be recomputed."""
        if not self.enabled:
            return
        samples = self.out / "samples"
        for folder in samples.glob("step-*") if samples.is_dir() else []:
            if folder.name[5:].isdigit() and int(folder.name[5:]) > step:
                shutil.rmtree(folder, ignore_errors=True)
        if not self.metrics_path.exists():
            return
        keep = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, self.metrics_path)

    def step(self, row: dict[str, Any], total: int) -> bool:
        """Append the step's metrics, update the job row; returns True when a stop was requested."""
        if not self.enabled:
            return False
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[train] step {row['step']}/{total} loss {row['loss']:.4f} lr {row['lr']:.3g} "
              f"{row['s_per_step']:.2f} s/step eta {row['eta_s']:.0f} s", flush=True)
        now = time.monotonic()
        if self.job_id is None or (now - self._last_write < PROGRESS_EVERY and row["step"] < total):
            return False
        self._last_write = now
        from workbench.db import Job, session_scope, utcnow

        with session_scope() as s:
            job = s.get(Job, self.job_id)
            if job is None:
                return False
            job.progress_step, job.progress_total = row["step"], total
            job.message = f"step {row['step']}/{total}, loss {row['loss']:.4f}"
            job.metrics = {k: v for k, v in row.items() if v is not None}
            job.updated_at = utcnow()
            return bool(job.stop_requested)

    def checkpoint(self, path: Path, step: int, loss: float, samples: list[str]) -> None:
        if not self.enabled:
            return
        self.log(f"checkpoint {path.name} saved")
        if self.run_id is None:
            return
        from sqlalchemy import select

        from workbench.db import session_scope
        from workbench.train.tables import Checkpoint

        with session_scope() as s:
            row = s.scalars(select(Checkpoint).where(Checkpoint.run_id == self.run_id, Checkpoint.step == step)).first()
            if row is None:
                row = Checkpoint(run_id=self.run_id, step=step)
                s.add(row)
            row.job_id, row.path, row.loss, row.samples = self.job_id, str(path), loss, samples

    def finish(self, status: str, message: str) -> None:
        if self.enabled:
            self.log(message)


def forget_checkpoint(path: Path) -> None:
    """A checkpoint removed by checkpoints_total_limit leaves the registry too."""
    if run_id() is None:
        return
    from sqlalchemy import delete

    from workbench.db import session_scope
    from workbench.train.tables import Checkpoint

    with session_scope() as s:
        s.execute(delete(Checkpoint).where(Checkpoint.path == str(path)))


def register_lora(cfg, base: str, data_info: dict, result, card: dict) -> int:
    """A row in ``loras`` for the Generate page. Returns its id."""
    from workbench.db import session_scope
    from workbench.train.tables import Lora

    name = cfg.run_name or (f"run {run_id()}" if run_id() else Path(result.output_dir).name)
    with session_scope() as s:
        row = Lora(name=name, run_id=run_id(), job_id=job_id(), path=str(result.lora_dir), method=cfg.method,
                   base_model=base, rank=cfg.rank, lora_alpha=cfg.alpha, trigger=cfg.instance_prompt or "",
                   step=result.step, final_loss=result.final_loss, dataset=str(data_info.get("source") or ""),
                   manifest_hash=str(data_info.get("manifest_hash") or ""), text_encoder=cfg.train_text_encoder,
                   is_demo=bool(card.get("is_demo")), card=json.loads(json.dumps(card, default=str)),
                   created_by=os.environ.get("WORKBENCH_USER", ""))
        s.add(row)
        s.flush()
        return row.id
