"""Evaluate page (AppTest): comparison with intervals and the unreliable badge, unavailable metrics never shown as
numbers, per-image drill-down sorted by a metric, metric cards, CSV export, and queuing a new evaluation."""
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from workbench import jobs
from workbench.db import Job, session_scope
from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult
from workbench import auth
from helpers.review import make_generation, make_users, page_text
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "5_Evaluate.py")
UNAVAILABLE = "unavailable: torchvision:alexnet — run `workbench models pull`"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


@pytest.fixture
def stored(workspace):
    """Users, three generated images and one finished evaluation of two image sets, written as a run stores them."""
    make_users()
    gens = [make_generation(batch="ss26", seed=i, clip_score=None) for i in range(3)]
    with session_scope() as s:
        e = Evaluation(name="ckpt sweep", status="done",
                       config={"image_sets": [{"label": "base"}, {"label": "step 1000"}]},
                       reference={"dataset": "demo-aurelo", "split": "val", "n": 12},
                       backbones={"clip": {"ref": "/kit/clip", "demo_model": True},
                                  "paired": {"ref": "torchvision:alexnet", "status": "unavailable"}})
        s.add(e)
        s.flush()
        for label, step, value, tuned in (("base", None, 0.21, False), ("step 1000", 1000, 0.29, True)):
            s.add(EvaluationResult(evaluation_id=e.id, image_set=label, metric="clip_cosine", status="ok", n=3,
                                   value=value, ci_low=value - 0.02, ci_high=value + 0.02, median=value, top5=value,
                                   step=step, detail={"fine_tuned": tuned, "params": {"rank": 8} if tuned else {}}))
            s.add(EvaluationResult(evaluation_id=e.id, image_set=label, metric="fid", status="ok", n=3, value=41.5,
                                   ci_low=30.0, ci_high=60.0, reliable=False, step=step, detail={"fine_tuned": tuned}))
            s.add(EvaluationResult(evaluation_id=e.id, image_set=label, metric="lpips_ref", status="unavailable",
                                   step=step, detail={"unavailable": {"ref": "torchvision:alexnet"}}))
        for gen_id, clip in zip(gens, (0.30, 0.12, 0.25)):
            with session_scope() as s2:
                from workbench.generate.tables import Generation

                path = s2.get(Generation, gen_id).image_path
            s.add(EvaluationImage(evaluation_id=e.id, image_set="step 1000", generation_id=gen_id, image_path=path,
                                  prompt=f"prompt of image {gen_id}", scores={"clip_cosine": clip},
                                  provenance={"seed": gen_id, "model": "tiny-sdxl", "step": 1000, "batch": "ss26"}))
    return gens


def _page(user: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def test_comparison_shows_intervals_the_unreliable_badge_and_unavailable_metrics(stored):
    at = _page("ari")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["Image set"]) == ["base", "step 1000"]
    clip = table["CLIP cosine (image ↔ prompt)"].tolist()
    assert clip == ["0.21 [0.19, 0.23]", "0.29 [0.27, 0.31]"]
    fid = table["FID (Fréchet Inception Distance)"].tolist()
    assert fid == ["41.5 [30, 60] · unreliable: n=3"] * 2
    assert table["LPIPS to the product photo"].tolist() == [UNAVAILABLE] * 2
    texts = page_text(at)
    assert "unreliable: n=…" in texts and "demo models" in texts
    csv = at.get("download_button")[0]
    assert csv.proto.label == "Download CSV"


def test_drilldown_sorts_images_worst_first_by_the_chosen_metric(stored):
    at = _page("ana")  # approvers read results too
    assert not at.exception, at.exception
    at.selectbox(key="evaluate_sort").set_value("clip_cosine").run()
    images = at.dataframe[1].value
    assert images["CLIP cosine"].tolist() == [0.12, 0.25, 0.30]
    at.toggle(key="evaluate_worst_first").set_value(False).run()
    assert at.dataframe[1].value["CLIP cosine"].tolist() == [0.30, 0.25, 0.12]
    texts = page_text(at)
    assert "prompt of image" in "\n".join(c.value for c in at.code)
    assert "step 1000" in texts and "seed" in texts
    assert "Starting evaluations is for analysts" in texts


def test_metric_cards_say_what_each_number_means_and_which_models_are_missing(stored):
    at = _page("ari")
    titles = [e.label for e in at.expander]
    assert "FID (Fréchet Inception Distance) — lower is better" in titles
    assert "CLIP cosine (image ↔ prompt) — higher is better" in titles
    texts = page_text(at)
    assert "unavailable: yuvalkirstain/PickScore_v1 — run `workbench models pull`" in texts
    assert "unavailable: torch-fidelity:inception-v3-compat — run `workbench models pull`" in texts
    assert "needs no model" in texts and "~2,000 images" in texts


def test_a_marketer_is_turned_away(stored):
    at = _page("mia")
    assert not at.exception
    assert any("This page is for" in w.value for w in at.warning) and not at.dataframe


def test_an_analyst_queues_an_evaluation_of_a_batch(stored, monkeypatch):
    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)  # the job is checked, not run
    at = _page("ari")
    at.multiselect(key="evaluate_new_batches").set_value(["ss26"])
    at.multiselect(key="evaluate_new_metrics").set_value(["clip", "ocr"])
    at.button(key="FormSubmitter:evaluate_new-Evaluate").click().run()
    assert not at.exception, at.exception
    assert "Evaluation 2 queued." in page_text(at)
    with session_scope() as s:
        job = s.scalars(select(Job).where(Job.kind == "evaluate")).one()
        e = s.get(Evaluation, 2)
    assert job.config == {"evaluation_id": 2} and job.created_by == "ari" and e.job_id == job.id
    assert [x["batch"] for x in e.config["image_sets"]] == ["ss26"] and e.config["metrics"] == ["clip", "ocr"]


def test_the_products_view_shows_each_skus_fidelity_worst_first_with_a_chart(stored):
    from helpers.data import CURATOR
    from helpers.review import as_role
    from workbench.products import create_product, link_generation, record_fidelity

    mia = as_role("marketer")
    for sku in ("AUR-1", "AUR-2"):
        create_product(CURATOR, sku, f"product {sku}")
    for gid, sku, de, passed in ((stored[0], "AUR-1", 1.2, True), (stored[1], "AUR-2", 7.9, False),
                                 (stored[2], "AUR-2", 2.0, True)):
        link_generation(mia, gid, [sku])
        record_fidelity(mia, gid, sku, {"dino": None, "delta_e": de, "shape_iou": 0.9,
                                        "unavailable": {"dino": "unavailable: facebook/dinov2-base — run "
                                                                "`workbench models pull dinov2`"}},
                        passed, "colour ΔE 7.9 vs AUR-2 reference, limit 5" if not passed else "ok")
    at = _page("ari")
    assert not at.exception, at.exception
    table = at.dataframe[2].value
    assert table["sku"].tolist() == ["AUR-2", "AUR-1"]  # worst first
    assert table["pass rate"].tolist() == ["50%", "100%"] and table["mean ΔE"].tolist() == ["5.0", "1.2"]
    assert table["mean DINO"].tolist() == ["unavailable"] * 2  # never a number without the model
    assert "unavailable: facebook/dinov2-base" in page_text(at)
    charts = [c.proto.spec for c in at.get("vega_lite_chart") if '"SKU"' in c.proto.spec]
    assert len(charts) == 2 and "pass rate" in charts[0] and "mean" in charts[1]  # pass rate and mean ΔE per SKU
