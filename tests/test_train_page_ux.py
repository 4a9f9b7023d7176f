"""Training page (AppTest), issue #26: a chosen preset sets every option it names (edits kept only on request), the
runs table and the run view read the same step, several runs' loss curves overlay in one chart, plain labels."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from helpers.review import page_text
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "2_Training.py")


@pytest.fixture(autouse=True)
def setup(workspace, monkeypatch, tmp_path):
    from helpers.train import training_page_setup

    return training_page_setup(monkeypatch, tmp_path)


def _page(user: str = "mia") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def _form(at: AppTest) -> dict:
    return {"steps": at.number_input(key="training_steps").value, "lr": at.number_input(key="training_lr").value,
            "rank": at.number_input(key="training_rank").value, "batch": at.number_input(key="training_batch").value,
            "res": at.number_input(key="training_res").value, "mp": at.selectbox(key="training_mp").value,
            "gc": at.checkbox(key="training_gc").value, "8bit": at.checkbox(key="training_8bit").value}


def test_choosing_a_preset_sets_every_option_it_names_and_the_24gb_preset_fits_24gb():
    at = _page()
    assert at.selectbox(key="training_preset").value == "tiny_cpu_demo"
    assert _form(at) == {"steps": 120, "lr": 2e-3, "rank": 8, "batch": 4, "res": 64, "mp": "no", "gc": False,
                         "8bit": False}
    at.selectbox(key="training_preset").set_value("sdxl_lora_24gb").run()
    assert not at.exception
    assert _form(at) == {"steps": 2000, "lr": 1e-4, "rank": 16, "batch": 1, "res": 1024, "mp": "bf16", "gc": False,
                         "8bit": False}
    assert at.number_input(key="training_ckpt").value == 250
    assert [s.value for s in at.success] == ["Fits a 24 GiB GPU."], page_text(at)
    assert not any("does not fit" in w.value for w in at.warning)
    at.selectbox(key="training_preset").set_value("sdxl_lora_12gb").run()
    assert _form(at) | {} == {"steps": 2000, "lr": 1e-4, "rank": 8, "batch": 1, "res": 1024, "mp": "bf16", "gc": True,
                              "8bit": True}


def test_edited_fields_are_kept_only_when_the_user_asks():
    at = _page()
    at.number_input(key="training_rank").set_value(32).run()
    at.selectbox(key="training_preset").set_value("sdxl_lora_24gb").run()
    assert at.number_input(key="training_rank").value == 16  # the preset wins by default
    at.number_input(key="training_rank").set_value(32)
    at.checkbox(key="training_keep_edits").check().run()
    at.selectbox(key="training_preset").set_value("sdxl_lora_12gb").run()
    assert not at.exception
    assert at.number_input(key="training_rank").value == 32  # kept: the user asked
    assert at.checkbox(key="training_gc").value is True and at.checkbox(key="training_8bit").value is True
    assert at.number_input(key="training_res").value == 1024


def _queued_run(dataset: int | None = None, **over) -> int:
    from workbench.data.demo import import_demo_catalog
    from helpers.data import CURATOR
    from workbench.train import runs
    from workbench.train.config import build_config, load_config

    dataset = dataset or import_demo_catalog(CURATOR, size=64, colours=1).dataset_id
    values = load_config(Path(PAGE).parents[1] / "configs" / "tiny_cpu_demo.yaml")
    values.update(dataset=str(dataset), max_train_steps=20, **over)
    return runs.start("mia", build_config(values, "in the test"))


def _progress(run_id: int, step: int, total: int, loss: float | None = None, s_per_step: float = 2.7) -> None:
    """What the training script writes at a step: the job row and the metrics.jsonl rows so far."""
    from workbench.db import Job, session_scope
    from workbench.train import runs

    folder = runs.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": s, "epoch": 0, "loss": 1.0 / s if loss is None else loss, "lr": 1e-3, "s_per_step": s_per_step,
         "eta_s": s_per_step * (total - s), "gpu_mem_gb": None}) + "\n" for s in range(1, step + 1)))
    with session_scope() as s:
        job = s.get(Job, run_id)
        job.status, job.progress_step, job.progress_total = "running", step, total
        job.message = f"step {step}/{total}, loss {1.0 / step:.4f}"
        job.metrics = {"loss": 1.0 / step, "s_per_step": s_per_step}


def test_the_runs_table_and_the_run_view_show_the_same_step_as_the_run_moves_on():
    """Issue #26: the runs table said "0 %, 0/?, None" while the run view said step 10/20. The table was drawn once,
    outside the run view's self-refreshing fragment: in the browser it kept the page's first read."""
    from helpers.fragments import full_run, refresh_fragments

    run_id = _queued_run()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = "mia"
    full_run(at)
    assert not at.exception
    table = at.dataframe[0].value
    assert table["Step"].tolist() == ["not started"] and table["Loss"].tolist() == ["—"]
    assert "unknown until the first steps" in table["Time left"].tolist()

    _progress(run_id, 10, 20)  # the run moves on; the page's fragments refresh themselves
    refresh_fragments(at)
    assert not at.exception
    table = at.dataframe[0].value
    assert any("step 10 of 20" in p.proto.text for p in at.get("progress")), "the run view is not at step 10"
    row = table.iloc[0]
    assert row["Step"] == "10 of 20" and row["Progress"] == 0.5 and row["Loss"] == "0.1000"
    assert row["Time left"] == "~27 s"  # 10 steps left at the measured 2.7 s/step
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()


def test_loss_curves_of_the_chosen_runs_overlay_in_one_chart():
    import pandas as pd
    import pyarrow as pa

    from workbench.train import runs

    first = _queued_run(run_name="rank 8")
    second = _queued_run(int(runs.get_run(first).config["dataset"]), run_name="rank 4", rank=4)
    _progress(first, 12, 20, loss=0.5)
    _progress(second, 8, 20, loss=0.7)
    at = _page()
    assert not at.exception
    assert sorted(at.multiselect(key="training_overlay").value) == sorted([first, second])
    [chart] = [c for c in at.get("vega_lite_chart") if "training loss (avg of 10 steps)" in c.proto.spec]
    data = pd.concat([pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets])
    assert data.groupby("run")["step"].max().to_dict() == {f"run {first}: rank 8": 12, f"run {second}: rank 4": 8}
    at.multiselect(key="training_overlay").unselect(second).run()
    [chart] = [c for c in at.get("vega_lite_chart") if "training loss (avg of 10 steps)" in c.proto.spec]
    data = pd.concat([pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets])
    assert set(data["run"]) == {f"run {first}: rank 8"}


def test_a_sweeps_loss_curves_overlay_in_one_chart_one_line_per_member():
    import pandas as pd
    import pyarrow as pa

    from workbench.data.demo import import_demo_catalog
    from helpers.data import CURATOR
    from workbench.train import runs
    from workbench.train.config import load_config

    base = load_config(Path(PAGE).parents[1] / "configs" / "tiny_cpu_demo.yaml")
    base["dataset"] = str(import_demo_catalog(CURATOR, size=64, colours=1).dataset_id)
    sweep_id, ids = runs.start_sweep("mia", base, runs.parse_grid(["rank=2,4"]))
    for run_id, steps in zip(ids, (5, 9)):
        _progress(run_id, steps, 20)
    at = _page()
    assert not at.exception
    overlays = [pd.concat([pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in c.proto.datasets])
                for c in at.get("vega_lite_chart") if "training loss (avg of 10 steps)" in c.proto.spec]
    [data] = [d for d in overlays if d["run"].str.contains("Rank").all()]  # the Sweeps tab's (Runs has its own)
    assert data.groupby("run")["step"].max().to_dict() == {f"run {ids[0]} (Rank 2)": 5, f"run {ids[1]} (Rank 4)": 9}
    table = at.dataframe[-1].value  # the sweep's table: plain column names, no None cells
    assert {"Run", "Rank", "Status", "Final loss"} <= set(table.columns)
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
