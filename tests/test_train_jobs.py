"""Training runs as jobs through a real worker: two CPU processes through the real launcher (`accelerate launch -m
workbench.train`), one process in the job's own process (forked from the preloaded job server, the default on a CPU
machine): progress, checkpoints, validation images, TensorBoard, the LoRA registry; stop -> resume; SIGKILL -> failed
-> resume."""
import json
import os
import signal
import time

import pytest

from workbench import jobs
from workbench.db import session_scope
from workbench.models import tiny
from helpers.review import as_role
from workbench.train import runs
from workbench.train.config import build_config
from workbench.train.tables import Lora
from helpers.train import demo_imagefolder


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return demo_imagefolder(tmp_path_factory.mktemp("catalog") / "train", size=64, limit=12)


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    monkeypatch.setenv("WORKBENCH_STOP_GRACE_SECONDS", "60")  # the script stops itself; no SIGTERM race in tests


def _cfg(kit, data, **extra):
    values = dict(pretrained_model_name_or_path=str(kit["sdxl"]), dataset=str(data), resolution=64, center_crop=True,
                  train_batch_size=2, learning_rate=1e-3, rank=4, seed=1)
    values.update(extra)
    return build_config(values)


def _wait_step(job_id, at_least, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(job_id)
        if job.progress_step >= at_least or not job.is_active:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach step {at_least}")


def _steps(run_id):
    return [row["step"] for row in runs.read_metrics(run_id)]


def test_a_two_process_run_through_accelerate_launch_reports_checkpoints_validates_and_registers_its_lora(
        kit, data, worker):
    run_id = runs.start(_cfg(kit, data, max_train_steps=4, checkpointing_steps=2, report_to="tensorboard",
                             validation_prompts=["a red shirt on white"], num_validation_images=2,
                             validation_num_inference_steps=2), created_by=as_role("analyst"), num_processes=2)
    job = jobs.wait_for(run_id, timeout=240)
    assert job.status == "done", jobs.log_tail(run_id, 60)
    log = jobs.log_tail(run_id, 400)
    assert "accelerate.commands.launch" in log and "-m workbench.train" in log
    # two ranks really ran (see NOTES: `--cpu --num_processes 2` would silently run one) and agree on the weights
    assert job.result["extra"]["processes"] == 2 and "x 2 processes" in log
    ranks = [json.loads(p.read_text()) for p in sorted((runs.run_dir(run_id) / "ranks").glob("rank-*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert ranks[0]["lora_sha256"] == ranks[1]["lora_sha256"]
    # progress on the job row and in metrics.jsonl, every step
    assert (job.progress_step, job.progress_total) == (4, 4)
    assert {"loss", "lr", "s_per_step", "eta_s", "epoch"} <= set(job.metrics)
    rows = runs.read_metrics(run_id)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in rows)
    # checkpoints with validation images from the same prompts and seeds, so steps compare like for like
    ckpts = runs.checkpoints(run_id)
    assert [c["step"] for c in ckpts] == [2, 4]
    grid = runs.validation_grid(run_id)
    assert sorted(grid) == [2, 4]
    assert [p.name for p in grid[2]] == [p.name for p in grid[4]] == ["p0-s1.png", "p0-s2.png"]
    assert all(os.path.exists(p) for c in ckpts for p in c["samples"])
    assert list((runs.run_dir(run_id) / "logs").rglob("events.out.tfevents*")), "no TensorBoard event file"
    info = runs.get_run(run_id)
    assert info.status == "done" and info.loss == pytest.approx(rows[-1]["loss"])
    lora = runs.lora_of(run_id)
    assert lora is not None and lora.created_by == "ari" and lora.step == 4 and lora.is_demo
    assert os.path.isfile(os.path.join(lora.path, "pytorch_lora_weights.safetensors"))
    with session_scope() as s:
        assert s.query(Lora).count() == 1


def test_sigkill_fails_the_run_with_its_log_then_resume_and_stop_continue_from_checkpoints(
        kit, data, preloaded_worker):
    run_id = runs.start(_cfg(kit, data, max_train_steps=400, checkpointing_steps=5), created_by=as_role("analyst"))
    job = _wait_step(run_id, 12)
    assert job.status == "running", jobs.log_tail(run_id, 40)
    os.killpg(job.pid, signal.SIGKILL)  # the job's process group: here the job process is the trainer
    failed = jobs.wait_for(run_id, timeout=60)
    assert failed.status == "failed"
    assert "[train] step" in failed.error  # the log tail travels with the failure
    assert runs.get_run(run_id).status == "failed"
    last_ckpt = max(int(p.name.split("-")[1]) for p in (runs.run_dir(run_id) / "checkpoints").glob("checkpoint-*"))
    assert last_ckpt >= 10

    second = runs.resume(run_id, created_by=as_role("analyst"))
    job = _wait_step(second, last_ckpt + 3)
    assert job.status == "running", jobs.log_tail(second, 40)
    assert "resumed from" in jobs.log_tail(second, 400) and f"at step {last_ckpt}" in jobs.log_tail(second, 400)
    runs.stop(run_id, as_role("analyst"))  # from the UI or `workbench runs stop`: a checkpoint first, then the job ends
    stopped = jobs.wait_for(second, timeout=120)
    assert stopped.status == "stopped", jobs.log_tail(second, 40)
    stop_step = stopped.progress_step
    assert last_ckpt < stop_step < 400
    assert (runs.run_dir(run_id) / "checkpoints" / f"checkpoint-{stop_step}").is_dir()
    assert _steps(run_id) == list(range(1, stop_step + 1))  # every step once: none lost, none counted twice
    assert runs.get_run(run_id).jobs == [run_id, second]
    with pytest.raises(runs.RunError, match="not running"):
        runs.stop(run_id, as_role("analyst"))


def test_a_missing_model_or_dataset_is_refused_before_anything_is_queued(kit, data, tmp_path):
    with pytest.raises(runs.RunError, match="pretrained_model_name_or_path .*nope.*does not exist"):
        runs.start(_cfg(kit, data, pretrained_model_name_or_path=str(tmp_path / "nope")), created_by=as_role("analyst"))
    with pytest.raises(runs.RunError, match="dataset 999: there is no workspace dataset"):
        runs.start(_cfg(kit, None, dataset="999"), created_by=as_role("analyst"))
    assert jobs.list_jobs(kind=runs.KIND) == []


@pytest.mark.slow
def test_a_two_process_run_resumes_exactly_from_its_own_checkpoint_without_unpickling(kit, data, tmp_path):
    """Issue #17: checkpoints hold no pickle, and two ranks under the real launcher still resume to the same LoRA:
    an uninterrupted 4-step run vs one resumed from a copy of its step-2 checkpoint (with crafted pickles planted)."""
    import shutil
    import subprocess

    from safetensors.torch import load_file

    from hostile.train import plant_pickles

    def launch(out, **extra):
        cfg = _cfg(kit, data, max_train_steps=4, checkpointing_steps=2, output_dir=str(out), **extra)
        proc = subprocess.run(runs.launch_command(cfg, 2, cpu=True), capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "result.json").read_text())

    whole = launch(tmp_path / "a")
    assert whole["extra"]["processes"] == 2
    ckpt = tmp_path / "b" / "checkpoints" / "checkpoint-2"
    shutil.copytree(tmp_path / "a" / "checkpoints" / "checkpoint-2", ckpt)
    assert not list(ckpt.glob("*.pkl")) and not list(ckpt.glob("*.bin"))  # nothing accelerate would unpickle
    marker = tmp_path / "PWNED"
    plant_pickles(ckpt, marker)
    resumed = launch(tmp_path / "b", resume_from_checkpoint="latest")
    assert resumed["resumed_from_step"] == 2 and resumed["step"] == 4 and not marker.exists()
    a, b = (load_file(p / "lora" / "pytorch_lora_weights.safetensors") for p in (tmp_path / "a", tmp_path / "b"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_stop_and_resume_work_on_a_run_whose_process_is_gone(kit, data):
    """Issue #17 item 12: the run's process died after its worker was replaced, so its job still says 'running'.
    Stop ends it at once (instead of waiting for ever), and resume reconciles it first and then continues."""
    import subprocess

    from workbench.db import Job, session_scope, utcnow

    def stale_run():
        run_id = runs.start(_cfg(kit, data, max_train_steps=20, checkpointing_steps=5), created_by=as_role("analyst"),
                            queue=False)
        proc = subprocess.Popen(["true"])
        proc.wait()
        with session_scope() as s:
            row = s.get(Job, run_id)
            row.status, row.pid, row.host, row.started_at = "running", proc.pid, jobs.HOST, utcnow()
        ckpt = runs.run_dir(run_id) / "checkpoints" / "checkpoint-5"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text('{"step": 5}')
        return run_id

    stopped = stale_run()
    job = runs.stop(stopped, as_role("analyst"))
    assert job.status == "stopped" and "already gone" in job.message
    assert runs.get_run(stopped).status == "stopped"
    new_job = runs.resume(stopped, created_by=as_role("analyst"))
    assert runs.get_run(stopped).jobs == [stopped, new_job]

    gone = stale_run()
    new_job = runs.resume(gone, created_by=as_role("analyst"))  # no stop first: resume reconciles
    assert jobs.get_job(gone).status == "failed" and "is gone" in jobs.get_job(gone).message
    assert runs.get_run(gone).jobs == [gone, new_job] and runs.get_run(gone).status == "queued"
