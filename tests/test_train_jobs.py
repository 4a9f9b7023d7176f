"""Training runs as jobs through a real worker: two CPU processes through the real launcher (`accelerate launch -m
workbench.train`), one process in the job's own process (forked from the preloaded job server, the default on a CPU
machine): progress, checkpoints, validation images, TensorBoard, the LoRA registry; stop -> resume; SIGKILL -> failed
-> resume."""
import json
import os
import signal
import time

import pytest
import torch

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


def _wait_for(predicate, what, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _lora_file(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _assert_same_lora(a, b):
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed LoRA differs from the uninterrupted one"


def test_a_two_process_run_killed_under_accelerate_launch_resumes_to_the_uninterrupted_lora(kit, data, worker):
    """Two CPU ranks through the real launcher (`accelerate launch -m workbench.train`), SIGKILLed (launcher and both
    ranks) after checkpoint-4, then continued from checkpoint-2 (with crafted pickles planted in it, issue #17) the way
    a diffusers user does: the same options, --max_train_steps=4 --resume_from_checkpoint=<checkpoint-2>. The final
    LoRA equals the one the killed run saved at step 4 before it was interrupted (the learning rate is constant, so a
    400-step run's first 4 steps are a 4-step run), bit for bit; every step is in metrics.jsonl once; progress,
    checkpoints, validation images, TensorBoard and the registry are those of one run."""
    from hostile.train import plant_pickles

    options = dict(checkpointing_steps=2, report_to="tensorboard", validation_prompts=["a red shirt on white"],
                   num_validation_images=2, validation_num_inference_steps=2)
    run_id = runs.start(as_role("analyst"), _cfg(kit, data, max_train_steps=400, **options),
                        num_processes=2)
    folder = runs.run_dir(run_id)
    _wait_for(lambda: (folder / "checkpoints" / "checkpoint-4").is_dir() or not jobs.get_job(run_id).is_active,
              "checkpoint-4")
    job = jobs.get_job(run_id)
    assert job.status == "running", jobs.log_tail(run_id, 60)
    os.killpg(job.pid, signal.SIGKILL)  # the job's process group: the job, the launcher and both ranks
    assert jobs.wait_for(run_id, timeout=60).status == "failed"
    uninterrupted = _lora_file(folder / "checkpoints" / "checkpoint-4" / "pytorch_lora_weights.safetensors")
    ckpt = folder / "checkpoints" / "checkpoint-2"
    assert not list(ckpt.glob("*.pkl")) and not list(ckpt.glob("*.bin"))  # nothing accelerate would unpickle
    marker = folder.parent / "PWNED"
    plant_pickles(ckpt, marker)

    assert runs.start(as_role("analyst"), _cfg(kit, data, max_train_steps=4, output_dir=str(folder),
                                               resume_from_checkpoint=str(ckpt),
                           **options)) == run_id
    info = runs.get_run(run_id)
    second = info.jobs[-1]
    assert info.jobs == [run_id, second] and jobs.get_job(second).resumed_from == run_id
    job = jobs.wait_for(second, timeout=240)
    assert job.status == "done", jobs.log_tail(second, 60)
    assert not marker.exists(), "a pickle in the checkpoint was unpickled"
    log = jobs.log_tail(second, 400)
    assert "accelerate.commands.launch" in log and "-m workbench.train" in log and "at step 2" in log
    # two ranks really ran (see NOTES: `--cpu --num_processes 2` would silently run one) and agree on the weights
    assert job.result["extra"]["processes"] == 2 and "x 2 processes" in log and job.result["resumed_from_step"] == 2
    ranks = [json.loads(p.read_text()) for p in sorted((folder / "ranks").glob("rank-*.json"))]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert ranks[0]["lora_sha256"] == ranks[1]["lora_sha256"]
    _assert_same_lora(_lora_file(folder / "lora" / "pytorch_lora_weights.safetensors"), uninterrupted)
    # progress on the job row and in metrics.jsonl, every step once (the killed run's steps after 2 were dropped)
    assert (job.progress_step, job.progress_total) == (4, 4)
    assert {"loss", "lr", "s_per_step", "eta_s", "epoch"} <= set(job.metrics)
    rows = runs.read_metrics(run_id)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in rows)
    # checkpoints with validation images from the same prompts and seeds, so steps compare like for like; the killed
    # run's checkpoints after step 2 belong to an abandoned branch: replaced (step 4) or removed (step 6 and on)
    ckpts = runs.checkpoints(run_id)
    assert [c["step"] for c in ckpts] == [2, 4]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    grid = runs.validation_grid(run_id)
    assert sorted(grid) == [2, 4]
    assert [p.name for p in grid[2]] == [p.name for p in grid[4]] == ["p0-s1.png", "p0-s2.png"]
    assert all(os.path.exists(p) for c in ckpts for p in c["samples"])
    assert list((folder / "logs").rglob("events.out.tfevents*")), "no TensorBoard event file"
    info = runs.get_run(run_id)
    assert info.status == "done" and info.loss == pytest.approx(rows[-1]["loss"])
    lora = runs.lora_of(run_id)
    assert lora is not None and lora.created_by == "ari" and lora.step == 4 and lora.is_demo
    assert os.path.isfile(os.path.join(lora.path, "pytorch_lora_weights.safetensors"))
    with session_scope() as s:
        assert s.query(Lora).count() == 1


def test_sigkill_fails_the_run_then_resume_stop_and_resume_end_with_the_uninterrupted_lora(
        kit, data, preloaded_worker, tmp_path):
    from workbench.train.script import main

    run_id = runs.start(as_role("analyst"), _cfg(kit, data, max_train_steps=400, checkpointing_steps=5))
    folder = runs.run_dir(run_id)
    _wait_for(lambda: (folder / "checkpoints" / "checkpoint-5").is_dir() or not jobs.get_job(run_id).is_active,
              "checkpoint-5", timeout=120)
    job = jobs.get_job(run_id)
    assert job.status == "running", jobs.log_tail(run_id, 40)
    os.killpg(job.pid, signal.SIGKILL)  # the job's process group: here the job process is the trainer
    failed = jobs.wait_for(run_id, timeout=60)
    assert failed.status == "failed"
    assert "[train] step" in failed.error  # the log tail travels with the failure
    assert runs.get_run(run_id).status == "failed"
    last_ckpt = max(int(p.name.split("-")[1]) for p in (folder / "checkpoints").glob("checkpoint-*"))
    assert last_ckpt >= 5

    second = runs.resume(as_role("analyst"), run_id)
    job = _wait_step(second, last_ckpt + 3)
    assert job.status == "running", jobs.log_tail(second, 40)
    assert "resumed from" in jobs.log_tail(second, 400) and f"at step {last_ckpt}" in jobs.log_tail(second, 400)
    runs.stop(as_role("analyst"), run_id)  # from the UI or `workbench runs stop`: a checkpoint first, then the job ends
    stopped = jobs.wait_for(second, timeout=120)
    assert stopped.status == "stopped", jobs.log_tail(second, 40)
    stop_step = stopped.progress_step
    assert last_ckpt < stop_step < 400
    assert (folder / "checkpoints" / f"checkpoint-{stop_step}").is_dir()
    assert _steps(run_id) == list(range(1, stop_step + 1))  # every step once: none lost, none counted twice
    assert runs.get_run(run_id).jobs == [run_id, second]
    with pytest.raises(runs.RunError, match="not running"):
        runs.stop(as_role("analyst"), run_id)

    # Finish the run where the test can afford to: the same options with a reachable max_train_steps, continued from
    # the stop's checkpoint (constant learning rate: the schedule does not depend on the total).
    total = stop_step + 3
    assert runs.start(as_role("analyst"), _cfg(kit, data, max_train_steps=total, checkpointing_steps=5,
                                               output_dir=str(folder),
                           resume_from_checkpoint="latest")) == run_id
    third = runs.get_run(run_id).jobs[-1]
    done = jobs.wait_for(third, timeout=120)
    assert done.status == "done" and done.result["resumed_from_step"] == stop_step, jobs.log_tail(third, 40)
    assert _steps(run_id) == list(range(1, total + 1))
    reference = main(_cfg(kit, data, max_train_steps=total, checkpointing_steps=5, output_dir=str(tmp_path / "ref")))
    assert reference.step == total
    _assert_same_lora(_lora_file(folder / "lora" / "pytorch_lora_weights.safetensors"),
                      _lora_file(tmp_path / "ref" / "lora" / "pytorch_lora_weights.safetensors"))


def test_a_missing_model_or_dataset_is_refused_before_anything_is_queued(kit, data, tmp_path):
    with pytest.raises(runs.RunError, match="pretrained_model_name_or_path .*nope.*does not exist"):
        runs.start(as_role("analyst"), _cfg(kit, data, pretrained_model_name_or_path=str(tmp_path / "nope")))
    with pytest.raises(runs.RunError, match="dataset 999: there is no workspace dataset"):
        runs.start(as_role("analyst"), _cfg(kit, None, dataset="999"))
    assert jobs.list_jobs(kind=runs.KIND) == []


def test_stop_and_resume_work_on_a_run_whose_process_is_gone(kit, data):
    """Issue #17 item 12: the run's process died after its worker was replaced, so its job still says 'running'.
    Stop ends it at once (instead of waiting for ever), and resume reconciles it first and then continues."""
    import subprocess

    from workbench.db import Job, session_scope, utcnow

    def stale_run():
        run_id = runs.start(as_role("analyst"), _cfg(kit, data, max_train_steps=20, checkpointing_steps=5),
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
    job = runs.stop(as_role("analyst"), stopped)
    assert job.status == "stopped" and "already gone" in job.message
    assert runs.get_run(stopped).status == "stopped"
    new_job = runs.resume(as_role("analyst"), stopped)
    assert runs.get_run(stopped).jobs == [stopped, new_job]

    gone = stale_run()
    new_job = runs.resume(as_role("analyst"), gone)  # no stop first: resume reconciles
    assert jobs.get_job(gone).status == "failed" and "is gone" in jobs.get_job(gone).message
    assert runs.get_run(gone).jobs == [gone, new_job] and runs.get_run(gone).status == "queued"


# The seed project 003 command line (diffusers' train_text_to_image_lora_sdxl.py on the KREAM product captions), with
# the tiny model, a KREAM-shaped saved dataset and 64 px substituted; the program swapped for `workbench train`.
SEED_003 = ("--caption_column=text --resolution=64 --center_crop --random_flip --train_batch_size=1 "
            "--gradient_accumulation_steps=4 --gradient_checkpointing --learning_rate=1e-05 --max_grad_norm=1 "
            "--lr_scheduler=constant --checkpointing_steps=2 --resume_from_checkpoint=latest --seed=42 "
            "--report_to=tensorboard")


@pytest.fixture(scope="module")
def kream(tmp_path_factory):
    """A saved Hugging Face dataset shaped like hahminlew/kream-product-blip-captions (image, text)."""
    import datasets
    from PIL import Image

    captions = ["outer, The North Face 1996 Eco Nuptse Jacket Black, a photography of the north face black down jacket",
                "shoes, Nike Air Force 1 '07 Low White, a photography of a white sneaker",
                "bag, Kream, Ltd, Edition, Tote, a photography of a tote bag",
                "top, Stussy Basic Tee Red, a photography of a red t-shirt"]
    images = [Image.new("RGB", (96, 80), colour) for colour in ("black", "white", "tan", "red")]
    path = tmp_path_factory.mktemp("kream") / "kream-product-blip-captions"
    datasets.Dataset.from_dict({"image": images, "text": captions}).save_to_disk(str(path))
    return path


def test_the_seed_003_command_line_run_twice_writes_into_output_dir_and_continues(kit, kream, tmp_path, worker):
    """Issue #19 items 1-2 through `workbench train`: the first invocation (--max_train_steps=2) writes its
    checkpoints, LoRA, logs and metrics into --output_dir and says so; "latest" finds nothing and the log says it, as
    diffusers does. The same command line with --max_train_steps=4 is a new job of the same run that continues from
    checkpoint-2 (steps 3 and 4 only), and its LoRA equals an uninterrupted 4-step run's bit for bit (constant lr)."""
    import re
    import shlex

    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.settings import get_settings
    from workbench.train.config import parse_args
    from workbench.train.script import main

    out = tmp_path / "sd-kream-lora"
    flags = [f"--pretrained_model_name_or_path={kit['sdxl']}", f"--dataset_name={kream}", *shlex.split(SEED_003),
             f"--output_dir={out}"]
    first = CliRunner().invoke(app, ["train", *flags, "--max_train_steps=2"])
    assert first.exit_code == 0, first.output
    run_id = int(re.search(r"queued run (\d+) \(folder (.*)\)", first.output)[1])
    assert f"queued run {run_id} (folder {out.resolve()})" in first.output
    assert "Checkpoint 'latest' does not exist. Starting a new training run." in jobs.log_tail(run_id, 400)
    assert runs.run_dir(run_id) == out.resolve() and not get_settings().path("runs", str(run_id)).exists()
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert list((out / "logs").rglob("events.out.tfevents*")) and _steps(run_id) == [1, 2]
    assert runs.lora_of(run_id).path == str(out.resolve() / "lora")

    second = CliRunner().invoke(app, ["train", *flags, "--max_train_steps=4"])
    assert second.exit_code == 0, second.output
    info = runs.get_run(run_id)
    assert len(info.jobs) == 2 and f"run {run_id} continues as job {info.jobs[1]}" in second.output
    assert jobs.get_job(info.jobs[1]).resumed_from == run_id and info.status == "done"
    log = jobs.log_tail(info.jobs[1], 400)
    assert "at step 2" in log and "[train] step 1/" not in log and "[train] step 3/4" in log
    assert _steps(run_id) == [1, 2, 3, 4] and [r.run_id for r in runs.list_runs()] == [run_id]
    assert [c["step"] for c in runs.checkpoints(run_id)] == [2, 4] and runs.lora_of(run_id).step == 4

    reference = main(parse_args([*flags[:-1], "--max_train_steps=4", f"--output_dir={tmp_path / 'ref'}",
                                 "--resume_from_checkpoint=none", "--report_to=none"]))
    assert reference.step == 4 and reference.resumed_from_step is None
    _assert_same_lora(_lora_file(out / "lora" / "pytorch_lora_weights.safetensors"),
                      _lora_file(tmp_path / "ref" / "lora" / "pytorch_lora_weights.safetensors"))
