"""Review feedback and export: request changes -> a prompt version linked to the comment and a regeneration job whose
images come back linked to the one they replace (once for real through the generate job and the tiny kit); the
export zip's images and metadata match the database, and the export is audited."""
import csv
import hashlib
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from workbench import db, jobs
from workbench.prompts import get_prompt, prompt_history, save_prompt
from workbench.review import (DecisionConflict, QueueFilter, ReviewError, decide, export_approved, get_item,
                              list_queue, record_check, request_changes)
from helpers.review import make_generation, make_users


@pytest.fixture
def users(workspace):
    return make_users()


def test_request_changes_creates_a_linked_prompt_version_and_a_regeneration_job(users):
    v1 = save_prompt("mia", "nwo_style navy tee, studio", negative="blurry", brand="northwind")
    gen = make_generation(prompt=v1.text, prompt_id=v1.id)
    fb = request_changes("ana", gen, "logo too small", tags=["logo"], new_prompt="nwo_style navy tee, large logo",
                         regenerate=True, device="cpu")
    assert fb.decision.decision == "changes_requested" and fb.decision.tags == ("logo",)
    assert (fb.prompt.parent_id, fb.prompt.version, fb.prompt.created_by) == (v1.id, 2, "ana")
    assert fb.prompt.reason == f"review {fb.decision.id} of image {gen}: logo too small"
    assert [p.id for p in prompt_history(v1.id)] == [v1.id, fb.prompt.id]
    assert get_prompt(v1.id).status == "superseded"
    assert fb.decision.prompt_version_id == fb.prompt.id and fb.decision.regen_job_id == fb.job_id

    job = jobs.get_job(fb.job_id)
    assert (job.kind, job.status, job.created_by) == ("generate", "queued", "mia")  # for the image's author
    cfg = job.config
    assert cfg["prompts"] == [{"text": "nwo_style navy tee, large logo", "negative": "blurry",
                               "prompt_id": fb.prompt.id, "brand": "northwind"}]
    assert cfg["spec"]["loras"] == [{"path": "/loras/nw", "scale": 0.8, "name": "northwind-apparel-v1"}]
    assert (cfg["spec"]["quantization"], cfg["params"]["seed"], cfg["batch"]) == ("int8", 8, fb.regen_batch)
    assert cfg["gate"] == {"threshold": 0.25} and cfg["replaces"] == gen

    # the job's images arrive, recorded as replacing the image (the generate job sets replaces_id from the config's
    # "replaces"; the slow test below runs the real job): they join the queue linked to the image they replace
    new = make_generation(batch=fb.regen_batch, prompt=cfg["prompts"][0]["text"], prompt_id=fb.prompt.id,
                          replaces_id=cfg["replaces"])
    (item,) = list_queue("ana", QueueFilter(batch=fb.regen_batch))
    assert (item.generation_id, item.replaces_id) == (new, gen)
    assert get_item("mia", gen).review_status == "changes_requested"


def test_migration_0011_links_regenerated_images_that_arrived_before_the_job_linked_them(users):
    """Images a regeneration job recorded before the job set ``replaces_id`` itself were linked by the queue while it
    listed images; migration 0011 links those once, and listing the queue writes nothing."""
    import importlib.util

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from workbench.generate.tables import Generation

    gen = make_generation()
    fb = request_changes("ana", gen, "sharper", regenerate=True, device="cpu")
    legacy = make_generation(batch=fb.regen_batch, seed=8)  # recorded without replaces_id, as older jobs did
    other = make_generation(batch="aw26", seed=9)
    (item,) = list_queue("ana", QueueFilter(batch=fb.regen_batch))
    assert item.replaces_id is None  # a read: no longer links anything
    path = db.MIGRATIONS_DIR / "versions" / "0011_replacement_links.py"
    spec = importlib.util.spec_from_file_location("migration_0010", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with db.get_engine().begin() as conn, Operations.context(MigrationContext.configure(conn)):
        module.upgrade()
    with db.session_scope() as s:
        assert (s.get(Generation, legacy).replaces_id, s.get(Generation, other).replaces_id) == (gen, None)


def test_request_changes_without_prompt_text_or_job_and_its_refusals(users):
    gen = make_generation()  # an ad hoc prompt: no prompt row yet
    with pytest.raises(ReviewError, match="comment"):
        request_changes("ana", gen, "  ")
    with pytest.raises(ReviewError, match="new_prompt"):
        request_changes("ana", gen, "sharper", new_prompt="nwo_style navy tee,  studio")  # same text
    fb = request_changes("ana", gen, "sharper fabric", new_prompt="nwo_style navy tee, sharp fabric, studio")
    (v1, v2) = prompt_history(fb.prompt.id)
    assert v1.text == "nwo_style navy tee, studio" and v2.parent_id == v1.id and fb.job_id is None
    with pytest.raises(DecisionConflict):  # the loser of a race creates no prompt version
        request_changes("ana", gen, "other idea", new_prompt="something else entirely")
    assert len(prompt_history(fb.prompt.id)) == 2


@pytest.mark.slow
def test_the_regeneration_config_runs_through_the_generate_job(users, tmp_path):
    """The whole loop for real: tiny SDXL makes an image, review asks for changes, the generate job remakes it."""
    pytest.importorskip("diffusers")
    from workbench.generate.batch import generate_job
    from workbench.generate.tables import Generation
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")

    class Ctx:  # the parts of JobContext the batch handler uses
        def __init__(self, config, created_by):
            self.config, self.job_id, self.created_by = config, 1, created_by
            from workbench.settings import get_settings
            self.settings = get_settings()

        def log(self, message):
            pass

        def progress(self, *args, **kwargs):
            pass

        def check_stop(self):
            pass

    generate_job(Ctx({"spec": {"model": str(kit["sdxl"]), "device": "cpu"}, "batch": "orig",
                      "prompts": [{"text": "a red t-shirt", "brand": "northwind"}],
                      "params": {"width": 64, "height": 64, "steps": 2, "seed": 3}}, "mia"))
    (orig,) = list_queue("ana", QueueFilter(batch="orig"))
    fb = request_changes("ana", orig.generation_id, "make it blue", new_prompt="a blue t-shirt", regenerate=True,
                         device="cpu")
    job = jobs.get_job(fb.job_id)
    result = generate_job(Ctx(job.config, job.created_by))
    assert result["generated"] == 1
    (new,) = list_queue("ana", QueueFilter(batch=fb.regen_batch))
    assert (new.replaces_id, new.prompt, new.prompt_id, new.created_by) == (orig.generation_id, "a blue t-shirt",
                                                                           fb.prompt.id, "mia")
    assert (new.width, new.steps, new.model, new.seed) == (64, 2, str(kit["sdxl"]), 4)
    with db.session_scope() as s:
        assert s.get(Generation, new.generation_id).review_status == "pending"


def test_export_zip_matches_the_database_and_is_audited(users, workspace):
    a = make_generation(batch="ss26", seed=1, color=(10, 20, 30))
    b = make_generation(batch="ss26", seed=2, color=(40, 50, 60))
    rejected = make_generation(batch="ss26", seed=3)
    other = make_generation(batch="aw26", seed=4)
    record_check("ari", a, "ocr", True, {"expected": "NORTHWIND", "read": "NORTHWIND"})
    decide("ana", a, "approve", tags=["hero"], comment="lovely")
    decide("ana", b, "approve")
    decide("ana", rejected, "reject", comment="no")
    decide("ana", other, "approve")

    result = export_approved("ana", brand="northwind", batch="ss26")
    assert result.count == 2 and result.generation_ids == [a, b]
    assert result.path.parent == workspace.resolve() / "exports" and result.path.suffix == ".zip"
    assert not list(result.path.parent.glob(".export-*"))  # no temporary file left behind
    with zipfile.ZipFile(result.path) as zf:
        names = sorted(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
        meta = json.loads(zf.read("metadata.json"))
        blobs = {n: zf.read(n) for n in names if n.startswith("images/")}
    assert names == sorted(["metadata.csv", "metadata.json", *blobs]) and len(blobs) == 2
    assert meta["exported_by"] == "ana" and [r["generation_id"] for r in meta["images"]] == [a, b]
    with db.session_scope() as s:
        from workbench.generate.tables import Generation
        gens = {g.id: g for g in s.scalars(select(Generation).where(Generation.id.in_([a, b])))}
    for record, row in zip(meta["images"], rows):
        g = gens[record["generation_id"]]
        assert blobs[record["file"]] == open(g.image_path, "rb").read()
        assert record["sha256"] == hashlib.sha256(blobs[record["file"]]).hexdigest()
        assert (record["prompt"], record["seed"], record["model"], record["quantization"], record["clip_score"]) == (
            g.prompt, g.seed, g.model, g.quantization, g.clip_score)
        assert record["lora_scales"] == {"northwind-apparel-v1": 0.8} and record["approver"] == "ana"
        assert row["prompt"] == g.prompt and int(row["seed"]) == g.seed and row["approver"] == "ana"
        assert json.loads(row["loras"]) == [{"name": "northwind-apparel-v1", "path": "/loras/nw", "scale": 0.8}]
    assert meta["images"][0]["ocr_passed"] is True and meta["images"][0]["tags"] == ["hero"]
    assert meta["images"][1]["ocr_passed"] is None and rows[0]["comment"] == "lovely"

    with db.session_scope() as s:
        row = s.scalars(select(db.AuditLog).where(db.AuditLog.action == "review.export")).one()
        assert (row.actor, row.after["generation_ids"], row.after["sha256"]) == ("ana", [a, b], result.sha256)
    with pytest.raises(ReviewError, match="no approved images for brand 'acme'"):
        export_approved("ana", brand="acme")
    with pytest.raises(ReviewError, match="name at least one"):
        export_approved("ana")
