"""Batch generation as a job: through a real worker (progress, resume, the CLI, several processes), and the job's
function in process (the brand's CLIP gate; stop / kill and resume with byte-identical images)."""
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
    assert first.result == {"batch": "cat-1", "generated": 2, "skipped": 0, "total": 2, "tagged": 0}
    assert (first.progress_step, first.progress_total) == (2, 2)

    second = jobs.wait_for(jobs.enqueue("generate", _config(kit, 2)), timeout=180)
    assert second.status == "done", second.error
    assert second.result == {"batch": "cat-1", "generated": 2, "skipped": 2, "total": 4, "tagged": 0}
    with session_scope() as s:
        rows = s.query(Generation).filter_by(batch="cat-1").all()
    keys = Counter((r.prompt, r.params["base_seed"]) for r in rows)
    assert set(keys) == {(p["text"], seed) for p in PROMPTS for seed in (10, 11)}
    assert set(keys.values()) == {1}  # nothing generated twice
    assert {r.review_status for r in rows} == {"pending"}


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
    saved = save_batch(as_role("marketer"), expand_batch(lib, BatchSpec(template=sorted(lib.templates)[0], slots={},
                                                                        scenes=[],
                                                   brand="northwind")), "cli batch")
    result = CliRunner().invoke(app, ["generate", "batch", "--prompt-batch", str(saved.id), "--model", str(kit["sdxl"]),
                                      "--device", "cpu", "--steps", "2", "--size", "64", "--no-gate"])
    assert result.exit_code == 0, result.output
    job_id = int(result.output.split("queued job ")[1].split(":")[0])
    job = jobs.wait_for(job_id, timeout=180)
    assert job.status == "done", job.error
    with session_scope() as s:
        rows = s.query(Generation).filter_by(batch=f"prompts-{saved.id}").all()
    assert len(rows) == saved.size and {r.prompt_id for r in rows} == set(saved.prompt_ids)
    # the template and prompt version they came from, in the row and in the PNG (#19 item 10: was empty)
    from workbench.generate.sample import read_png_metadata

    for r in rows:
        assert (r.params["template"], r.params["prompt_version"]) == (saved.template, 1)
        assert read_png_metadata(r.image_path).provenance["template"] == saved.template


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


# -- in process: the job's own function, no worker ---------------------------------------------------------------

class Ctx:
    """The parts of JobContext the batch handler uses; ``stop_after``: the stop flag is up after that many images."""

    def __init__(self, config, created_by="mia", stop_after=None):
        from workbench.settings import get_settings

        self.config, self.job_id, self.created_by, self.settings = config, 1, created_by, get_settings()
        self.stop_after, self.checks, self.lines = stop_after, 0, []

    def log(self, message):
        self.lines.append(message)

    def progress(self, *args, **kwargs):
        pass

    def should_stop(self):
        return self.stop_after is not None and self.checks > self.stop_after

    def check_stop(self):
        self.checks += 1
        if self.should_stop():
            raise jobs.JobStopped()


BRAND = """name: acme
title: Acme
trigger: acm_style
gate: {clip_threshold: 1.0, max_attempts: 3}
"""
BRAND_PROMPT = "acm_style, red t-shirt, white background, studio light"


def _rows(batch):
    with session_scope() as s:
        return [(r.prompt, r.attempt, r.kept, r.params) for r in
                s.query(Generation).filter_by(batch=batch).order_by(Generation.attempt)]


def test_a_gated_batch_and_a_single_generation_use_the_brands_gate_and_trigger(kit, monkeypatch):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.generate.batch import generate_job
    from workbench.prompts.library import save_brand_text
    from workbench.settings import reload_settings

    save_brand_text(as_role("admin"), BRAND)
    config = _config(kit, 1, prompts=[{"text": BRAND_PROMPT, "brand": "acme"}], batch="brand-gate",
                     gate={"scorer": str(kit["open_clip"])})
    ctx = Ctx(config)
    generate_job(ctx)
    rows = _rows("brand-gate")
    assert [r[1] for r in rows] == [1, 2, 3]  # the brand's 3 attempts (its threshold 1.0 is never reached)
    assert {r[3]["gate_threshold"] for r in rows} == {1.0} and sum(r[2] for r in rows) == 1
    assert rows[2][3]["prompt"].startswith("acm_style, ")  # the third attempt refines; the brand's trigger stays first
    assert any("threshold 1.0, 3 attempt(s), trigger acm_style (brand acme)" in line for line in ctx.lines)

    generate_job(Ctx({**config, "batch": "override", "gate": {"scorer": str(kit["open_clip"]), "max_attempts": 1}}))
    assert [r[1] for r in _rows("override")] == [1]  # the user's override wins; the threshold stays the brand's
    assert {r[3]["gate_threshold"] for r in _rows("override")} == {1.0}

    monkeypatch.setenv("WORKBENCH_MODELS__CLIP_SCORER", str(kit["open_clip"]))
    reload_settings()
    single = CliRunner().invoke(app, ["generate", "run", "--prompt", BRAND_PROMPT, "--brand", "acme", "--model",
                                      str(kit["sdxl"]), "--steps", "2", "--size", "64", "--device", "cpu",
                                      "--batch", "one"])
    assert single.exit_code == 0, single.output
    assert "threshold 1.0, 3 attempt(s) (brand acme)" in single.output  # on by default: the brand defines a gate
    assert [r[1] for r in _rows("one")] == [1, 2, 3] and _rows("one")[2][3]["prompt"].startswith("acm_style, ")
    assert single.output.count(" kept: ") == 1


def _pngs(batch):
    from workbench.settings import get_settings

    return {p.name: p.read_bytes() for p in get_settings().path("generations", batch).glob("*.png")}


def test_a_gated_batch_stopped_then_killed_resumes_each_image_once_and_byte_identical(kit, monkeypatch):
    """Stop after one image, then die while recording the next one's attempts (SIGKILL can land there), then run
    again: every (prompt, seed) once, every attempt recorded once, and the same PNG bytes as a run never interrupted."""
    from workbench.generate import guard
    from workbench.generate.batch import generate_job

    gate = {"threshold": 1.0, "max_attempts": 2, "scorer": str(kit["open_clip"])}
    generate_job(Ctx(_config(kit, 1, batch="whole", gate=gate)))
    with pytest.raises(jobs.JobStopped):
        generate_job(Ctx(_config(kit, 1, batch="cut", gate=gate), stop_after=1))
    assert len(_rows("cut")) == 2  # the first image's two attempts

    real, calls = guard.record_generation, []

    def killed_on_the_second_attempt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "record_generation", killed_on_the_second_attempt)
    with pytest.raises(SystemExit):
        generate_job(Ctx(_config(kit, 1, batch="cut", gate=gate)))
    monkeypatch.setattr(guard, "record_generation", real)
    result = generate_job(Ctx(_config(kit, 1, batch="cut", gate=gate)))
    assert result == {"batch": "cut", "generated": 1, "skipped": 1, "total": 2, "tagged": 0}
    rows = _rows("cut")
    assert Counter((p, params["base_seed"], a) for p, a, _, params in rows) == Counter(
        {(p["text"], 10, a): 1 for p in PROMPTS for a in (1, 2)})  # every attempt of every image exactly once
    assert sum(kept for _, _, kept, _ in rows) == 2  # one kept per image, every attempt scored
    with session_scope() as s:
        assert s.query(Generation).filter_by(batch="cut", clip_score=None).count() == 0
    whole, cut = _pngs("whole"), _pngs("cut")
    assert sorted(whole) == sorted(cut) and all(whole[name] == cut[name] for name in whole)


def test_a_finished_batch_lists_the_catalog_products_its_images_show_once_an_index_exists(kit, monkeypatch,
                                                                                         tmp_path):
    """#20 item 7: shop-the-look links are recorded by the batch itself, not only by `workbench products tag`."""
    from workbench.data.demo import make_demo_catalog
    from workbench.fidelity import masks
    from workbench.generate.batch import generate_job
    from workbench.products import products_of_generation, retrieval
    from workbench.products.importing import import_catalog
    from workbench.settings import reload_settings

    monkeypatch.setenv("WORKBENCH_MODELS__CLIP_SCORER", str(kit["open_clip"]))
    reload_settings()
    ctx = Ctx(_config(kit, 1, prompts=PROMPTS[:1], batch="before-index"))
    assert generate_job(ctx)["tagged"] == 0  # no catalog index yet: nothing to match, and the log says so
    assert any("no catalog index yet" in line for line in ctx.lines)

    make_demo_catalog(tmp_path / "catalog", size=64, colours=1, extras=False)
    import_catalog(as_role("marketer"), tmp_path / "catalog", workers=1)
    retrieval.clear_cache()
    assert retrieval.build_index(as_role("analyst"), "clip", masks=masks).added == 7
    ctx = Ctx(_config(kit, 1, prompts=PROMPTS[:1], batch="after-index"))
    result = generate_job(ctx)  # queued by a marketer (mia): tagging is a step the batch entails
    assert (result["tagged"], result["tag_model"]) == (1, "clip")
    with session_scope() as s:
        (gid,) = [g.id for g in s.query(Generation).filter_by(batch="after-index", kept=True)]
    links = products_of_generation(gid)
    assert links and {x.source for x in links} == {"retrieved"}  # the tiny CLIP scores everything near 1
    assert {x.scored_by for x in links} == {f"clip:{kit['open_clip']}"}  # each score names the model that made it
    assert any("1 image(s) tagged" in line and "demo model" in line for line in ctx.lines)
