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
