"""Training page (AppTest): who may open it, the form with a preset and the estimate, launch -> a queued run, the run
view with curves, validation grid, log and resume, the sweep launcher and comparison."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.data.demo import import_demo_catalog
from helpers.data import CURATOR
from helpers.review import lose_role_in_fragment, page_text
from workbench.train import runs
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "2_Training.py")


@pytest.fixture(autouse=True)
def setup(workspace, monkeypatch, tmp_path):
    from helpers.train import training_page_setup

    return training_page_setup(monkeypatch, tmp_path)


def _page(user: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def test_an_approver_is_sent_away_and_a_marketer_sees_the_form_with_the_estimate():
    at = _page("ana")  # approver
    assert not at.exception and "This page is for: admin, analyst, marketer" in page_text(at)
    assert "training_launch" not in {b.key for b in at.button}
    at = _page("mia")  # marketer
    assert not at.exception
    assert [t.label for t in at.tabs] == ["New run", "Runs", "Sweeps"]
    assert at.selectbox(key="training_preset").value == "tiny_cpu_demo"
    assert "**Estimate**" in page_text(at) and "tiny demo model: runs on CPU" in page_text(at)
    assert "No training data" in page_text(at)  # no dataset yet: launch is disabled with the reason
    assert at.button(key="training_launch").disabled


def test_launch_queues_a_run_then_its_view_shows_curves_grid_and_resume(tmp_path):
    import_demo_catalog(CURATOR, size=64)
    at = _page("mia")
    assert at.button(key="training_launch").disabled is False, page_text(at)
    at.number_input(key="training_steps").set_value(12)
    at.button(key="training_launch").click().run()
    assert not at.exception
    [run] = runs.list_runs()
    assert run.config["max_train_steps"] == 12 and run.created_by == "mia" and run.status == "queued"
    assert f"Run {run.run_id} queued" in page_text(at)

    # what a finished-then-stopped run looks like: metrics, a checkpoint with validation images, a stopped job
    folder = runs.run_dir(run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": s, "epoch": 0, "loss": 1.0 / s, "lr": 1e-3, "s_per_step": 0.1, "eta_s": 1.0, "gpu_mem_gb": None})
        + "\n" for s in range(1, 7)))
    (folder / "checkpoints" / "checkpoint-6").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-6" / "trainer_state.json").write_text('{"step": 6}')
    from PIL import Image

    (folder / "samples" / "step-000006").mkdir(parents=True)
    Image.new("RGB", (64, 64), "red").save(folder / "samples" / "step-000006" / "p0-s0.png")
    (folder / "samples" / "step-000006" / "prompts.json").write_text(
        json.dumps({"step": 6, "prompts": ["a red cap by aurelo"], "seeds": [0]}))
    from workbench.db import Job, session_scope

    with session_scope() as s:
        job = s.get(Job, run.run_id)
        job.status, job.progress_step, job.progress_total, job.message = "stopped", 6, 12, "stopped on request"
    at = _page("mia")
    assert not at.exception
    assert "**run 1** — " in page_text(at) and "stopped" in page_text(at)
    assert any("step 6 of 12" in p.proto.text for p in at.get("progress"))
    assert len(at.get("vega_lite_chart")) == 3  # loss and learning-rate curves, and the runs' loss overlay
    assert any(m.label == "Loss" and m.value == "0.1667" for m in at.metric)
    assert len(at.get("image")) == 1, "the validation image of checkpoint 6 is not shown"
    assert "**prompt 1**: a red cap by aurelo" in page_text(at)  # the grid says which prompt each column is
    assert "prompt 1 · seed 0" in str(at.get("image")[0].proto)
    at.button(key=f"training_resume_{run.run_id}").click().run()
    assert not at.exception
    assert runs.get_run(run.run_id).jobs[-1] != run.run_id  # a resume job was queued for the same run
    assert runs.get_run(run.run_id).status == "queued"


def test_sweep_launcher_queues_the_grid_and_the_comparison_lists_it():
    import_demo_catalog(CURATOR, size=64)
    at = _page("mia")
    at.selectbox(key="training_sweep_preset").set_value("tiny_cpu_demo")
    at.text_input(key="training_sweep_rank").input("2,4")
    at.text_input(key="training_sweep_lr").input("1e-3")
    at.run()
    assert "2 runs will be queued" in page_text(at)
    at.button(key="training_sweep_go").click().run()
    assert not at.exception
    listed = runs.list_runs()
    assert len(listed) == 2 and len({r.sweep_id for r in listed}) == 1
    assert sorted(r.config["rank"] for r in listed) == [2, 4]
    at = _page("mia")
    assert at.selectbox(key="training_sweep_pick").value == listed[0].sweep_id
    assert at.dataframe  # the comparison table


def test_stop_and_resume_after_losing_the_role_say_why(monkeypatch):
    from workbench.db import Job, session_scope

    import_demo_catalog(CURATOR, size=64)
    at = _page("mia")
    at.number_input(key="training_steps").set_value(12)
    at.button(key="training_launch").click().run()
    [run] = runs.list_runs()
    at.run()
    assert not at.exception and at.button(key=f"training_stop_{run.run_id}")
    lose_role_in_fragment(monkeypatch, "mia", "approver")  # the run view is an st.fragment
    at.button(key=f"training_stop_{run.run_id}").click().run()
    assert not at.exception, at.exception
    assert "'train' needs the role" in page_text(at), [e.value for e in at.error]
    assert runs.get_run(run.run_id).status == "queued"

    with session_scope() as s:
        s.get(Job, run.run_id).status = "stopped"
    at.run()
    at.button(key=f"training_resume_{run.run_id}").click().run()
    assert not at.exception, at.exception
    assert "'train' needs the role" in page_text(at), [e.value for e in at.error]
    assert runs.get_run(run.run_id).jobs == [run.run_id]  # nothing queued
