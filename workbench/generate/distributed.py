"""One process of a batch split across processes::

    accelerate launch --multi_gpu --num_processes N -m workbench.generate.distributed JOB_ID

(started by the ``generate`` job when its config has ``num_processes`` > 1). Every process computes the same list
of unfinished (prompt, seed) pairs in the same order; ``PartialState.split_between_processes`` gives each its share, so
every image is made exactly once. Images go into the job's batch like a single-process run (one result set); each
process writes ``jobs/<id>/rank-<i>.json`` with what it made. The stop flag is checked between images.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace


def main(job_id: int) -> int:
    import torch
    from accelerate import PartialState

    from workbench.db import Job, session_scope, utcnow
    from workbench.generate.batch import BatchConfig, load_for_batch, make_one, plan
    from workbench.jobs import get_job
    from workbench.auth import on_behalf_of
    from workbench.settings import get_settings

    settings = get_settings()
    job = get_job(job_id)
    cfg = BatchConfig.from_dict(job.config)
    if cfg.batch is None:
        cfg = replace(cfg, batch=f"job-{job_id}")
    device = job.config["spec"].get("device") or settings.resolved_device()  # as stored: no device, the settings'
    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    name, base, todo, done = plan(cfg)
    base = replace(base, request=base.request or f"job-{job_id}")  # one job, one result group on the Generate page
    pending = [(p, seed) for p, seed in todo if (p.text, seed) not in done]
    gpu = f"cuda:{state.local_process_index}" if state.device.type == "cuda" else "cpu"
    assembled, scorer, policy = load_for_batch(cfg, device=gpu)
    made: list[list] = []
    with state.split_between_processes(pending) as mine:
        print(f"[rank {state.process_index}/{state.num_processes}] {len(mine)} of {len(pending)} images", flush=True)
        for prompt, seed in mine:
            if get_job(job_id).stop_requested:
                print(f"[rank {state.process_index}] stop requested", flush=True)
                break
            make_one(on_behalf_of(job.created_by, "generate"), assembled, scorer, policy, base, prompt, seed, name,
                     cfg.replaces)  # checked when the job was queued
            made.append([prompt.text, seed])
            finished = _count(name, todo)
            with session_scope() as s:
                row = s.get(Job, job_id)
                row.progress_step, row.progress_total = finished, len(todo)
                row.message = f"{finished}/{len(todo)} images ({state.num_processes} processes)"
                row.updated_at = utcnow()
    folder = settings.path("jobs", str(job_id))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank-{state.process_index}.json").write_text(json.dumps({"rank": state.process_index,
                                                                           "world": state.num_processes,
                                                                           "made": made}))
    state.wait_for_everyone()
    return 0


def _count(name: str, todo) -> int:
    """Images of ``todo`` finished so far (by every process and earlier runs), for the progress bar."""
    from workbench.generate.batch import finished_keys

    done = finished_keys(name)
    return sum((p.text, seed) in done for p, seed in todo)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
