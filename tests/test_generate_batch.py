"""Batch generation as a job through a real worker: progress, resume without regenerating, the CLIP gate."""
from collections import Counter

import pytest

from workbench import jobs
from workbench.db import session_scope
from workbench.generate.tables import Generation
from workbench.models import tiny
from helpers.review import as_role

PROMPTS = [{"text": "a red t-shirt on white"}, {"text": "a navy cap on white", "negative": "blurry"}]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


def _config(kit, num_images, **extra):
    return {"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "prompts": PROMPTS, "batch": "cat-1",
            "params": {"width": 64, "height": 64, "steps": 2, "seed": 10, "num_images": num_images}, **extra}


def test_batch_job_generates_then_resumes_without_regenerating(kit, preloaded_worker):
    first = jobs.wait_for(jobs.enqueue("generate", _config(kit, 1)), timeout=180)
    assert first.status == "done", first.error
    assert "forked from the preloaded job server" in jobs.log_tail(first, 400)  # the default on a CPU machine
    assert first.result == {"batch": "cat-1", "generated": 2, "skipped": 0, "total": 2}
    assert (first.progress_step, first.progress_total) == (2, 2)

    second = jobs.wait_for(jobs.enqueue("generate", _config(kit, 2)), timeout=180)
    assert second.status == "done", second.error
    assert second.result == {"batch": "cat-1", "generated": 2, "skipped": 2, "total": 4}
    with session_scope() as s:
        rows = s.query(Generation).filter_by(batch="cat-1").all()
    keys = Counter((r.prompt, r.params["base_seed"]) for r in rows)
    assert set(keys) == {(p["text"], seed) for p in PROMPTS for seed in (10, 11)}
    assert set(keys.values()) == {1}  # nothing generated twice
    assert {r.review_status for r in rows} == {"pending"}


def test_batch_job_with_the_clip_gate_keeps_every_attempt(kit, worker):
    config = _config(kit, 1, gate={"threshold": 1.0, "max_attempts": 2, "scorer": str(kit["open_clip"])},
                     batch="gated")
    job = jobs.wait_for(jobs.enqueue("generate", config), timeout=180)
    assert job.status == "done", job.error
    with session_scope() as s:
        rows = s.query(Generation).filter_by(batch="gated").all()
    assert len(rows) == 4 and sum(r.kept for r in rows) == 2  # 2 prompts x 2 attempts, one kept each
    assert all(r.clip_score is not None for r in rows)


def test_batch_job_with_a_missing_model_fails_naming_it(worker):
    config = {"spec": {"model": "stabilityai/stable-diffusion-xl-base-1.0"}, "prompts": PROMPTS, "batch": "x",
              "params": {"width": 64, "height": 64, "steps": 2}}
    job = jobs.wait_for(jobs.enqueue("generate", config), timeout=120)
    assert job.status == "failed" and "workbench models pull" in job.message


def test_cli_queues_a_saved_prompt_batch(kit, worker):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.prompts import load_library
    from workbench.prompts.expand import BatchSpec, expand_batch
    from workbench.prompts.store import save_batch

    lib = load_library()
    saved = save_batch(expand_batch(lib, BatchSpec(template=sorted(lib.templates)[0], slots={}, scenes=[],
                                                   brand="northwind")), "cli batch", user=as_role("marketer"))
    result = CliRunner().invoke(app, ["generate", "batch", "--prompt-batch", str(saved.id), "--model", str(kit["sdxl"]),
                                      "--device", "cpu", "--steps", "2", "--size", "64"])
    assert result.exit_code == 0, result.output
    job_id = int(result.output.split("queued job ")[1].split(":")[0])
    job = jobs.wait_for(job_id, timeout=180)
    assert job.status == "done", job.error
    with session_scope() as s:
        rows = s.query(Generation).filter_by(batch=f"prompts-{saved.id}").all()
    assert len(rows) == saved.size and {r.prompt_id for r in rows} == set(saved.prompt_ids)


def test_two_cpu_processes_split_the_batch_and_cover_every_image_exactly_once(kit, worker):
    import json

    prompts = [{"text": f"a {c} t-shirt on white"} for c in ("red", "navy", "olive", "black", "pink")]
    config = {"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "prompts": prompts, "batch": "split",
              "params": {"width": 64, "height": 64, "steps": 2, "seed": 3, "num_images": 1}, "num_processes": 2}
    job = jobs.wait_for(jobs.enqueue("generate", config), timeout=300)
    assert job.status == "done", jobs.log_tail(job.id, 60)
    assert (job.progress_step, job.progress_total) == (5, 5)
    with session_scope() as s:
        made = Counter((g.prompt, g.seed) for g in s.query(Generation).filter(Generation.batch == "split"))
    assert made == Counter({(p["text"], 3): 1 for p in prompts})  # every prompt once, in one result set
    from workbench.settings import get_settings

    ranks = [json.loads(p.read_text()) for p in sorted(get_settings().path("jobs", str(job.id)).glob("rank-*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["made"] for r in ranks)  # both processes really worked
    mine = [tuple(x) for x in ranks[0]["made"]]
    theirs = [tuple(x) for x in ranks[1]["made"]]
    assert not set(mine) & set(theirs) and len(mine) + len(theirs) == 5
