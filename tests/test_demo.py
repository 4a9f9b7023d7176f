"""`workbench demo`: the offline demo workspace, built once for this module, then checked part by part."""
import pytest
from typer.testing import CliRunner

from workbench import jobs
from workbench.cli import app


@pytest.fixture
def demo(workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    result = CliRunner().invoke(app, ["demo", "--size", "64", "--train-steps", "6"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_demo_workspace_has_every_part_and_a_second_run_adds_nothing(demo, workspace):
    from workbench.data.store import list_datasets
    from workbench.demo import DEMO_BATCH, DEMO_PASSWORD, DEMO_USERS
    from workbench.generate.tables import Generation
    from workbench.db import session_scope
    from workbench.prompts.library import load_library
    from workbench.prompts.store import list_batches
    from workbench import auth
    from workbench.settings import get_settings
    from workbench.train import runs

    assert "demo accounts (password aurelo-demo)" in demo
    # models: the workspace's own settings point at the tiny kit
    assert (workspace / "workbench.toml").is_file()
    assert get_settings().models.sdxl_base == str(workspace / "models" / "demo-base")  # the trained demo base
    datasets = {d.name: d for d in list_datasets()}
    # the catalog, the LoRA's brand variant, and the crawled mini shop
    assert set(datasets) == {"demo-aurelo", "demo-aurelo-violet", "aurelo-shop"}
    assert datasets["demo-aurelo"].items >= 20
    assert "aurelo" in load_library().brands
    for name, role in DEMO_USERS.items():
        assert auth.authenticate(name, DEMO_PASSWORD).role == role
    [run] = runs.list_runs()
    assert run.status == "done" and runs.lora_of(run.run_id) is not None
    assert runs.validation_grid(run.run_id)
    [batch] = list_batches()
    with session_scope() as s:
        gens = s.query(Generation).filter(Generation.batch == DEMO_BATCH).all()
        s.expunge_all()
        assert len({g.prompt for g in gens}) == batch.size
        assert {g.attempt for g in gens} == {1, 2}  # the CLIP loop regenerated (demo threshold), every attempt kept
        assert all(g.clip_score is not None for g in gens)
        assert all(g.loras and g.demo_model for g in gens)
        assert {g.review_status for g in gens if g.kept} == {"pending"}  # waiting in the review queue
    from workbench.evaluate.tables import Evaluation

    with session_scope() as s:
        [evaluation] = s.query(Evaluation).all()
        assert evaluation.status == "done"
    from workbench.review import QueueFilter, list_queue

    queue = list_queue("ana", QueueFilter())
    assert {i.generation_id for i in queue} >= {g.id for g in gens if g.kept}  # flagged, not held back
    # products: priced on the invented shop, colours measured, images generated for SKUs with fidelity scores, and
    # one recoloured catalog photo held by the fidelity gate with its reason
    from workbench.demo import DEMO_GATE_BATCH
    from workbench.products import fidelity_rows, list_products, products_of_generation

    products = [p for p in list_products(dataset_id=datasets["demo-aurelo"].id, limit=1000) if p.item_ids]
    assert len(products) >= 28 and all(p.colour_lab is not None for p in products)
    assert all(p.url == f"https://shop.aurelo.example/p/{p.sku}" for p in products)
    assert {p.currency for p in products} == {"EUR"} and all(p.price > 0 for p in products)
    rows = fidelity_rows()
    assert len(rows) == 4 and all(r.delta_e is not None and r.dino is not None and r.demo for r in rows)
    [held] = [i for i in list_queue("ana", QueueFilter(gate="held")) if i.batch == DEMO_GATE_BATCH]
    [link] = products_of_generation(held.generation_id)
    assert held.batch == DEMO_GATE_BATCH and link.fidelity_passed is False
    assert any(f.startswith("fidelity: colour ΔE") and f"vs {link.sku} reference, limit 10" in f
               for f in held.gate.flags)  # the demo brand's limit (its 64-px demo model)
    assert {r.passed for r in rows} == {True, False}  # the Evaluate page's Products view has both to show
    # the crawled mini shop: its public products with their shop pages, photos in dataset aurelo-shop
    shop = list_products(dataset_id=datasets["aurelo-shop"].id, limit=100)
    assert datasets["aurelo-shop"].items == 8 and len(shop) == 6
    assert all(p.url.startswith("https://shop.aurelo.example/p/") and p.price for p in shop)
    # the tuned scorer, named in the brand profile, and a 16-frame spin video waiting in review
    from workbench.generate.video import DEMO_VIDEO_BATCH, read_video, video_for
    from workbench.models.scorers import list_scorers

    [scorer] = list_scorers()
    assert scorer.label == "tuned:aurelo-clip" and load_library().brands["aurelo"].scorer == scorer.label
    assert scorer.card["recall_after"]["n"] >= 5
    with session_scope() as s:
        [video] = s.query(Generation).filter(Generation.batch == DEMO_VIDEO_BATCH).all()
        assert video.review_status == "pending" and video.params["kind"] == "video"
    assert read_video(video_for(video.id).mp4_path).frames == 16
    # issue #21: one product scene (its product pixels kept) and one logo placed from SVG, read back by OCR
    with session_scope() as s:
        scene, logo = s.query(Generation).filter(Generation.batch == "demo-scenes").order_by(Generation.id).all()
        assert scene.params["scene"]["preset"] == "golden-hour" and logo.params["logo"]["text"] == "AURELO"
        logo_id = logo.id
    [item] = [i for i in list_queue("ana", QueueFilter()) if i.generation_id == logo_id]
    assert item.gate.ocr_passed is True
    jobs_before = len(jobs.list_jobs())
    again = CliRunner().invoke(app, ["demo"])
    assert again.exit_code == 0 and "catalog: already there" in again.output
    assert len(jobs.list_jobs()) == jobs_before and len(list_datasets()) == 3


def test_the_home_demo_job_builds_nothing_in_a_workspace_that_gained_users(workspace):
    """Home offers the demo only to a workspace without users; a first admin created between the click and the job
    must not end up next to the demo's accounts with their published password."""
    from workbench.demo import is_demo_workspace
    from workbench.jobs.runner import run_inline
    from workbench import auth

    job_id = jobs.enqueue("demo", {}, title="demo workspace", created_by="demo", queue=False)  # the click
    auth.create_first_admin("owner", "correct horse battery")  # meanwhile, on the first-run form
    run_inline(job_id)
    job = jobs.get_job(job_id)
    assert job.status == "failed"
    assert "already has users" in job.message and "workbench demo" in job.message
    assert not is_demo_workspace()
    assert [u.username for u in auth.list_users(auth.system_actor())] == ["owner"]


def _fast_demo(monkeypatch, before_users=lambda state: "done"):
    """The demo build with every step but ``users`` stubbed out; ``before_users`` runs as the step before it."""
    from workbench import demo

    for step in ("_models", "_catalog", "_training", "_prompts", "_generation", "_evaluation", "_products", "_scorer",
                 "_video"):
        monkeypatch.setattr(demo, step, lambda *args, **kwargs: "stub")
    monkeypatch.setattr(demo, "_brand", before_users)
    return demo


def test_a_first_admin_created_while_the_demo_builds_gets_no_demo_accounts_beside_it(workspace, monkeypatch):
    """The job's start-up check passed; the owner creates the first admin while the catalog is imported: the users
    step, which checks and inserts in one transaction, must add nothing."""
    from workbench.jobs.runner import run_inline
    from workbench import auth

    def owner_signs_up(state):
        auth.create_first_admin("owner", "correct horse battery")
        return "stub"

    _fast_demo(monkeypatch, owner_signs_up)
    job_id = jobs.enqueue("demo", {}, title="demo workspace", created_by="demo", queue=False)
    run_inline(job_id)
    job = jobs.get_job(job_id)
    assert job.status == "failed" and "already has users" in job.message
    assert "aurelo-demo" not in job.message
    assert [u.username for u in auth.list_users(auth.system_actor())] == ["owner"]


def test_demo_accounts_are_marked_and_their_password_is_shown_only_while_no_one_else_has_an_account(
        workspace, monkeypatch):
    from workbench import auth

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    demo = _fast_demo(monkeypatch)
    report = demo.build_demo()
    assert "aurelo-demo" in report.summary() and demo.demo_password_public()
    assert all(u.is_demo for u in auth.list_users(auth.system_actor()))
    auth.add_user(auth.system_actor(), "owner", "admin", password="correct horse battery")
    assert not demo.demo_password_public()
    again = demo.build_demo()  # completing or re-running the demo adds nothing and no longer prints the password
    assert "aurelo-demo" not in again.summary()
