"""Faults (issue #23 item 4) in a job: a generation batch whose images fill the disk (a small tmpfs mounted over
workspace/generations; the database and the job's log on another disk). The job ends failed saying the disk is full
and which file it was writing; every image it recorded is whole; once there is space, running it again makes only
the missing images."""
import pytest
from PIL import Image
from sqlalchemy import select

from helpers.faults import grow_small_disk
from workbench import jobs
from workbench.db import session_scope
from workbench.generate.tables import Generation
from workbench.jobs.runner import run_inline
from workbench.models import tiny
from workbench.settings import get_settings

from test_faults import small_disk  # noqa: F401 - the fixture

PROMPTS = [{"text": "a red t-shirt on white"}, {"text": "a navy cap on white"}, {"text": "a green scarf"}]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


def _rows(batch):
    with session_scope() as s:
        return [(r.prompt, r.params["base_seed"], r.image_path) for r in s.scalars(
            select(Generation).where(Generation.batch == batch).order_by(Generation.id))]


def _whole(path):
    with Image.open(path) as im:
        im.load()  # decodes every byte: a half-written PNG raises
        return im.size == (64, 64)


@pytest.mark.slow
def test_a_generation_batch_on_a_full_disk_fails_saying_so_and_its_rerun_makes_only_the_rest(kit, small_disk):  # noqa: F811
    folder = small_disk(get_settings().path("generations"), "24k")
    config = {"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "prompts": PROMPTS, "batch": "full",
              "params": {"width": 64, "height": 64, "steps": 2, "seed": 10, "num_images": 2}}
    first = jobs.enqueue("generate", config, created_by="mia", queue=False)
    assert run_inline(first) == 1
    job = jobs.get_job(first)
    assert job.status == "failed" and job.finished_at is not None
    assert "disk full: no space left writing" in job.message and "/generations/full/" in job.message, job.message
    made = _rows("full")
    assert 0 < len(made) < 6, f"the disk should fill part way: {len(made)} images"  # sized for ~3 tiny PNGs
    assert all(_whole(path) for _, _, path in made)  # every recorded image is whole
    assert [p.name for p in (folder / "full").iterdir() if p.name.startswith(".")] == []  # no temporary left

    grow_small_disk(folder, "4m")  # the operator freed space
    second = jobs.enqueue("generate", config, created_by="mia", queue=False)
    assert run_inline(second) == 0
    job = jobs.get_job(second)
    assert job.status == "done", job.message
    assert (job.result["skipped"], job.result["generated"]) == (len(made), 6 - len(made))
    rows = _rows("full")
    assert rows[:len(made)] == made  # what the failed job recorded stays as it was
    assert sorted((p, seed) for p, seed, _ in rows) == sorted((p["text"], s) for p in PROMPTS for s in (10, 11))
    assert all(_whole(path) for _, _, path in rows)


def _pngs(batch):
    """file name -> pixels (the PNG's text chunks name its job, which differs between the runs compared)."""
    import numpy as np

    out = {}
    for p in get_settings().path("generations", batch).glob("*.png"):
        with Image.open(p) as im:
            out[p.name] = np.asarray(im.convert("RGB")).tobytes()
    return out


BATCH = """
from workbench.jobs.runner import run_inline
run_inline({job_id})
"""


@pytest.mark.slow
def test_a_batch_job_process_killed_at_a_random_image_is_failed_and_its_rerun_makes_the_same_images(kit):
    """A real SIGKILL of the job's process (the process ``run`` records as the job's pid) after a seeded number of
    images; the next reconcile (worker or app start) fails it with the reason; the rerun makes only the missing
    images, pixel for pixel those of a batch that was never interrupted."""
    from helpers.faults import fault_rng, run_killed

    rng, seed = fault_rng("generation batch")
    config = {"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "prompts": PROMPTS, "batch": "cut",
              "params": {"width": 64, "height": 64, "steps": 2, "seed": 10, "num_images": 2}}
    after = rng.randint(1, 5)  # images made (and recorded) before the kill
    context = f"seed {seed}, killed after image {after} of 6"
    print(f"[faults] {context}")
    first = jobs.enqueue("generate", config, created_by="mia", queue=False)
    child = run_killed(BATCH.format(job_id=first), [("workbench.generate.batch:make_one", after, "after")],
                       timeout=300)
    assert child.returncode == -9, f"{context}: {child.stderr[-2000:]}"
    assert jobs.get_job(first).status == "running"  # nobody wrote an outcome: the process died outright
    assert jobs.reconcile() == [first]
    job = jobs.get_job(first)
    assert job.status == "failed" and "is gone" in job.message and "it can be resumed" in job.message, context
    assert job.progress_step <= after, context  # progress (written at most every 0.5 s) never ran ahead
    made = _rows("cut")
    assert len(made) == after and all(_whole(path) for _, _, path in made), context

    second = jobs.enqueue("generate", config, created_by="mia", queue=False)
    assert run_inline(second) == 0
    done = jobs.get_job(second)
    assert done.status == "done" and (done.result["skipped"], done.result["generated"]) == (after, 6 - after)
    rows = _rows("cut")
    assert sorted((p, s) for p, s, _ in rows) == sorted((p["text"], s) for p in PROMPTS for s in (10, 11)), context
    whole = jobs.enqueue("generate", {**config, "batch": "whole"}, created_by="mia", queue=False)
    assert run_inline(whole) == 0
    cut, reference = _pngs("cut"), _pngs("whole")
    assert sorted(cut) == sorted(reference) and all(cut[n] == reference[n] for n in cut), context
