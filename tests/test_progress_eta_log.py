"""Issue #26 item 3: the time left corrected from real step times, the clean job log, and the demo build's nested
progress ("training… step 7/20")."""
import threading
import time

import pytest

from workbench.train.estimate import corrected_eta, duration_text
from workbench.ui.jobs import clean_log


def test_the_eta_follows_the_real_step_times_not_the_estimate_made_before_launch():
    # before any step: the estimate made before launch, or unknown
    assert corrected_eta([], 0, 20, prior_s_per_step=0.06).remaining_s == pytest.approx(20 * 0.06)
    unknown = corrected_eta([], 0, 20)
    assert unknown.remaining_s is None and unknown.text() == "unknown until the first steps"
    # the estimate said 0.06 s/step; the run takes 2.7 s/step (the first step pays for warm-up and is left out)
    eta = corrected_eta([9.0, 2.6, 2.7, 2.8], 4, 20, prior_s_per_step=0.06)
    assert eta.s_per_step == pytest.approx(2.7) and eta.remaining_s == pytest.approx(16 * 2.7)
    assert eta.measured_steps == 3 and eta.text() == "~43 s"
    # the pace changes (the machine got busy): the recent window follows it
    eta = corrected_eta([1.0] * 30 + [3.0] * 20, 50, 100, window=20)
    assert eta.s_per_step == pytest.approx(3.0) and eta.remaining_s == pytest.approx(150)
    one = corrected_eta([4.0], 1, 11)  # a single step is all there is: it is used
    assert one.remaining_s == pytest.approx(40)
    assert corrected_eta([2.0, 2.0], 20, 20).remaining_s == 0
    assert corrected_eta([2.0], 3, None).text() == "unknown until the first steps"
    assert [duration_text(s) for s in (45, 139, 7200)] == ["~45 s", "~2 min", "~2.0 h"]


RAW = """\
[train] loading models
/venv/lib/python3.11/site-packages/diffusers/models/lora.py:393: FutureWarning: `LoRACompatibleLinear` is deprecated
  deprecate("LoRACompatibleLinear", "1.0.0", deprecation_message)
Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'.
W1203 16:18:21.573000 18414 torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an Enum subclass
2026-12-03 16:13:40.363 WARNING streamlit.runtime.scriptrunner_utils.script_run_context: Thread 'MainThread'
Loading pipeline components...: 100%|██████████| 7/7 [00:00<00:00, 41.22it/s]
[train] step 1/20 loss 0.1234 lr 0.002 2.70 s/step eta 51 s
[train] checkpoint checkpoint-10 saved in /ws/runs/3/checkpoints
Traceback (most recent call last):
  File "/ws/workbench/train/script.py", line 12, in main
    loss = step()
  File "/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1, in _call_impl
    return forward(*args)
RuntimeError: the loss diverged (NaN/inf)
"""


def test_the_clean_log_keeps_the_jobs_own_lines_and_the_error_and_hides_library_internals():
    clean = clean_log(RAW, workspace="/ws")
    assert clean.text.splitlines() == [
        "[train] loading models",
        "[train] step 1/20 loss 0.1234 lr 0.002 2.70 s/step eta 51 s",
        "[train] checkpoint checkpoint-10 saved in workspace/runs/3/checkpoints",
        "RuntimeError: the loss diverged (NaN/inf)"]
    assert clean.hidden == len(RAW.splitlines()) - 4  # every other line: in the full log, not lost
    assert clean_log("").text == "" and clean_log("").hidden == 0


def test_the_demo_build_passes_the_training_runs_steps_into_its_own_progress_message(workspace):
    from workbench import jobs
    from workbench.db import Job, init_db, session_scope
    from workbench.demo import STEPS, nested_progress

    init_db()
    shown: list[str] = []
    step = STEPS.index("training")
    report = lambda inner: shown.append(f"{step}/{len(STEPS)} training… {inner}")  # noqa: E731 - as build_demo does
    with nested_progress(report, every=0.02):
        run = jobs.enqueue("train_lora", {"config": {}}, title="demo LoRA", queue=False)  # the stage's inner job
        for done in (7, 8):
            with session_scope() as s:
                row = s.get(Job, run)
                row.progress_step, row.progress_total = done, 20
            deadline = time.monotonic() + 5
            while not any(m.endswith(f"step {done}/20") for m in shown) and time.monotonic() < deadline:
                time.sleep(0.02)
    assert shown[:2] == [f"{step}/{len(STEPS)} training… step 7/20", f"{step}/{len(STEPS)} training… step 8/20"], shown
    assert not [t for t in threading.enumerate() if t.name == "demo-progress"]  # the watcher ended with the stage


def test_a_short_measurement_times_the_models_training_step_on_this_machine():
    from pathlib import Path

    from workbench.train.config import build_config
    from workbench.train.estimate import measure_step

    demo_base = Path(__file__).resolve().parents[1] / "workbench" / "models" / "demo_base"  # only its UNet config
    cfg = build_config({"pretrained_model_name_or_path": str(demo_base), "dataset": "x", "resolution": 64,
                        "train_batch_size": 1, "rank": 4}, "in the test")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared, busy 2-core machine two OpenMP threads spin: 7.3 s/step against 0.21
    try:
        seconds = measure_step(cfg, steps=1)
    finally:
        torch.set_num_threads(threads)
    assert seconds is not None and 0 < seconds < 30
    hub = cfg.model_copy(update={"pretrained_model_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0"})
    assert measure_step(hub) is None  # nothing local to time: the page says "unknown until the first steps"
