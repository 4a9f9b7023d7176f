"""Evaluate page (AppTest), issue #26: several metrics side by side with unreliable values marked on the bars, one
name per image set, plain labels (no raw metric keys, no None cells, no server paths, plain error sentences)."""
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from workbench import auth
from workbench.db import session_scope
from workbench.evaluate.tables import Evaluation, EvaluationImage, EvaluationResult
from helpers.review import make_generation, make_users, page_text
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "5_Evaluate.py")


@pytest.fixture
def stored(workspace, monkeypatch):
    """One finished evaluation as the demo's is stored: the set "demo LoRA" made from the batch "demo-aurelo", three
    metrics, FID unreliable at n=3, a model folder on the server that is missing."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()
    gens = [make_generation(batch="demo-aurelo", seed=i) for i in range(3)]
    with session_scope() as s:
        e = Evaluation(name="demo: AURELO tees", status="done",
                       config={"image_sets": [{"label": "demo LoRA", "batch": "demo-aurelo"}]},
                       reference={"dataset": "demo-aurelo", "split": "val", "n": 12},
                       backbones={"clip": {"ref": "/srv/ws/models/tiny-clip", "demo_model": True}})
        s.add(e)
        s.flush()
        detail = {"fine_tuned": True, "batch": "demo-aurelo", "params": {}}
        for metric, value, reliable in (("clip_cosine", 0.29, None), ("fid", 41.5, False), ("kid", 0.02, False),
                                        ("brand_consistency", 0.7, None)):
            s.add(EvaluationResult(evaluation_id=e.id, image_set="demo LoRA", metric=metric, status="ok", n=3,
                                   value=value, ci_low=value * 0.9, ci_high=value * 1.1, median=value, top5=value,
                                   reliable=reliable, detail=detail))
        s.add(EvaluationResult(evaluation_id=e.id, image_set="demo LoRA", metric="pickscore", status="unavailable",
                               detail={**detail, "unavailable": {"ref": "/srv/ws/models/pickscore"}}))
        for gen_id, clip in zip(gens, (0.30, 0.12, 0.25)):
            s.add(EvaluationImage(evaluation_id=e.id, image_set="demo LoRA", generation_id=gen_id, image_path="",
                                  prompt=f"prompt of image {gen_id}",
                                  scores={"clip_cosine": clip, "clip_score_100": None},
                                  provenance={"seed": gen_id, "model": "/srv/ws/models/demo-base", "step": None,
                                              "batch": "demo-aurelo", "loras": []}))
    return gens


def _page(user: str = "ari") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def _data(chart) -> pd.DataFrame:
    return pd.concat([pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets])


def test_several_metrics_side_by_side_with_the_unreliable_values_marked_on_the_bars(stored):
    at = _page()
    assert not at.exception, at.exception
    assert at.multiselect(key="evaluate_multi").value == ["fid", "kid", "clip_cosine", "brand_consistency"]
    [chart] = [c for c in at.get("vega_lite_chart") if '"facet"' in c.proto.spec]
    data = _data(chart)
    assert sorted(data["chart"]) == ["Brand consistency (higher is better)", "CLIP cosine (higher is better)",
                                     "FID (lower is better)", "KID (lower is better)"]  # one small chart per metric
    marked = dict(zip(data["metric"], data["flag"]))
    assert marked == {"fid": "unreliable: n=3", "kid": "unreliable: n=3", "clip_cosine": "", "brand_consistency": ""}
    spec = chart.proto.spec
    assert '"opacity"' in spec and '"strokeDash"' in spec and '"flag"' in spec  # faded, dashed and labelled
    at.multiselect(key="evaluate_multi").unselect("kid").unselect("brand_consistency").run()
    [chart] = [c for c in at.get("vega_lite_chart") if '"facet"' in c.proto.spec]
    assert set(_data(chart)["metric"]) == {"fid", "clip_cosine"}


def test_one_name_per_image_set_plain_labels_and_no_server_paths(stored):
    at = _page()
    table = at.dataframe[0].value
    assert table["Image set"].tolist() == ["demo LoRA (batch demo-aurelo)"]
    assert list(table.columns[:3]) == ["Evaluation", "Image set", "Training step"]
    assert table["PickScore (preference)"].tolist() == ["unavailable: pickscore — run `workbench models pull`"]
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    images = at.dataframe[1].value
    assert set(images["Image set"]) == {"demo LoRA (batch demo-aurelo)"}  # the same name as in Compare
    assert "CLIP cosine" in images.columns and "clip_cosine" not in images.columns
    assert at.selectbox(key="evaluate_drill_set").options == ["All image sets", "demo LoRA (batch demo-aurelo)"]
    assert "/srv/ws" not in page_text(at)
    assert "model demo-base" in page_text(at)
    metrics = at.multiselect(key="evaluate_new_metrics")
    assert "FID and KID (the set vs the reference photos)" in metrics.options


def test_an_empty_form_says_what_to_choose_in_a_sentence(stored):
    at = _page()
    at.button(key="FormSubmitter:evaluate_new-Evaluate").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Choose at least one image set (a generation batch) to evaluate."]
