"""Training options: diffusers command lines, YAML configs, unknown flags, the shipped configs, the estimate, sweeps,
and the `workbench train` / `runs` / `sweep` commands (no training here: see test_train_script / test_train_jobs)."""
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from helpers.review import as_role
from workbench.train import estimate as est_mod
from workbench.train import runs
from workbench.train.config import ConfigError, build_config, load_config, parse_args

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# An existing diffusers DreamBooth-LoRA command line (flags from the diffusers README), program swapped.
DREAMBOOTH = """--pretrained_model_name_or_path=stabilityai/stable-diffusion-xl-base-1.0
  --pretrained_vae_model_name_or_path=madebyollin/sdxl-vae-fp16-fix --instance_data_dir=dog
  --output_dir=lora-trained-xl --mixed_precision=fp16 --instance_prompt="a photo of sks dog" --resolution=1024
  --train_batch_size=1 --gradient_accumulation_steps=4 --learning_rate=1e-4 --report_to=tensorboard
  --lr_scheduler=constant --lr_warmup_steps=0 --max_train_steps=500 --validation_prompt="A photo of sks dog in a bucket"
  --validation_epochs=25 --seed=0 --use_8bit_adam --gradient_checkpointing --rank 8 --snr_gamma 5.0
  --with_prior_preservation --class_prompt "a photo of dog" --num_class_images 50 --checkpointing_steps 100
  --checkpoints_total_limit 2 --resume_from_checkpoint latest --train_text_encoder --noise_offset 0.05"""


def test_a_diffusers_dreambooth_command_line_parses_with_the_same_meaning():
    cfg = parse_args(shlex.split(DREAMBOOTH))
    assert cfg.method == "dreambooth_lora" and cfg.instance_prompt == "a photo of sks dog"
    assert cfg.instance_data_dir == "dog" and cfg.mixed_precision == "fp16" and cfg.use_8bit_adam
    assert cfg.gradient_checkpointing and cfg.train_text_encoder and cfg.with_prior_preservation
    assert (cfg.rank, cfg.alpha, cfg.max_train_steps, cfg.gradient_accumulation_steps) == (8, 8.0, 500, 4)
    assert cfg.validation_prompt == "A photo of sks dog in a bucket" and cfg.validation_epochs == 25
    assert cfg.snr_gamma == 5.0 and cfg.noise_offset == 0.05 and cfg.resume_from_checkpoint == "latest"
    assert cfg.checkpoints_total_limit == 2 and cfg.report_to == "tensorboard"
    # and the flags the job passes on round-trip to the same config
    assert parse_args(cfg.to_flags()) == cfg


@pytest.mark.parametrize("flag, expected", [
    ("--enable_xformers_memory_efficient_attention", "not supported: PyTorch's scaled-dot-product"),
    ("--learning_rat=1e-4", "unknown training option 'learning_rat'.*did you mean 'learning_rate'"),
    ("--push_to_hub", "not supported: runs stay in the workspace"),
    ("--rank=-1", "option rank=.*greater than or equal to 1"),
    ("--mixed_precision=fp8", "option mixed_precision="),
    ("--center_crop=maybe", "switch"),
    ("--resolution=1020", "multiple of 8"),
])
def test_unsupported_unknown_and_bad_flags_are_errors_naming_the_flag(flag, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_args(["--dataset", "x", flag])


def test_prior_preservation_without_a_class_prompt_is_explained():
    with pytest.raises(ConfigError, match="with_prior_preservation needs class_prompt"):
        parse_args(["--instance_prompt", "a photo of TOK bag", "--with_prior_preservation"])


def test_config_file_then_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("rank: 8\nlearning_rate: 3.0e-4\nvalidation_prompts: [a, b]\n")
    cfg = parse_args(["--config", str(path), "--rank", "16", "--dataset", "7"])
    assert (cfg.rank, cfg.learning_rate, cfg.validation_prompts, cfg.dataset) == (16, 3e-4, ["a", "b"], "7")
    path.write_text("rank: 8\nlerning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"'lerning_rate' in .*run.yaml.*did you mean 'learning_rate'"):
        parse_args(["--config", str(path)])


@pytest.mark.parametrize("name", ["sdxl_lora_24gb.yaml", "sdxl_lora_12gb.yaml", "sdxl_dreambooth_lora_24gb.yaml",
                                  "tiny_cpu_demo.yaml"])
def test_every_shipped_config_is_valid(name):
    values = load_config(CONFIGS / name)
    source = "instance_data_dir" if "dreambooth" in name else "dataset"
    cfg = build_config({**values, source: "photos"})
    assert cfg.data_source == "photos"


def _gpu(gib):
    return est_mod.Gpu(f"test {gib} GiB", gib)


def test_the_estimate_uses_the_measured_row_and_names_what_would_make_it_fit():
    table = est_mod.measured()["rows"]
    base = "stabilityai/stable-diffusion-xl-base-1.0"
    cfg = build_config({**load_config(CONFIGS / "sdxl_lora_24gb.yaml"), "dataset": "1",
                        "gradient_accumulation_steps": 1, "pretrained_model_name_or_path": base})
    est = est_mod.estimate(cfg, gpu=_gpu(80))
    assert est.basis == "measured: bf16-adamw" and est.s_per_step == table["bf16-adamw"]["s_per_step"]
    assert est.fits and est.peak_is_bound and est.total_s == pytest.approx(2000 * est.s_per_step)
    # batch 2 at 1024 px is a measured row: 19.8 GiB does not fit a 16 GiB card; checkpointing or batch 1 would
    big = cfg.model_copy(update={"train_batch_size": 2})
    est = est_mod.estimate(big, gpu=_gpu(16))
    assert est.basis == "measured: bf16-adamw-b2" and est.peak_gib == table["bf16-adamw-b2"]["peak_GiB"]
    assert est.fits is False
    assert any(s.startswith("gradient_checkpointing: true") for s in est.suggestions)
    assert any(s.startswith("train_batch_size: 1") for s in est.suggestions)
    assert "does NOT fit" in est_mod.describe(est) and "gradient_checkpointing" in est_mod.describe(est)
    # an unmeasured combination says which row it came from and how it was scaled
    odd = cfg.model_copy(update={"train_batch_size": 4, "mixed_precision": "no"})
    est = est_mod.estimate(odd, gpu=_gpu(24))
    assert est.basis.startswith("nearest measured row") and len(est.notes) == 2 and est.fits is False


def test_the_estimate_for_the_demo_model_says_cpu(tmp_path):
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    cfg = build_config({**load_config(CONFIGS / "tiny_cpu_demo.yaml"), "dataset": "1",
                        "pretrained_model_name_or_path": str(kit["sdxl"])})
    est = est_mod.estimate(cfg)
    assert est.fits and "CPU" in est.basis and est.total_s == pytest.approx(cfg.max_train_steps * est.s_per_step)


def test_a_sweep_grid_makes_every_combination_and_one_bad_value_fails_the_whole_sweep():
    grid = runs.parse_grid(["rank=4,8", "learning_rate=1e-4,3e-4", "train_batch_size=1,2"])
    points = runs.sweep_configs({"dataset": "1"}, grid)
    assert len(points) == 8
    assert {(c.rank, c.learning_rate, c.train_batch_size) for _, c in points} == {
        (r, lr, b) for r in (4, 8) for lr in (1e-4, 3e-4) for b in (1, 2)}
    with pytest.raises(ConfigError, match="sweep point rank=0"):
        runs.sweep_configs({"dataset": "1"}, runs.parse_grid(["rank=4,0"]))
    with pytest.raises(ConfigError, match="'rnak'.*did you mean 'rank'"):
        runs.parse_grid(["rnak=4,8"])


def test_sweep_queues_runs_sharing_an_id_and_compares_them(tmp_path, monkeypatch):
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    monkeypatch.setattr(runs, "enqueue", _fake_enqueue())  # queue rows only: no worker runs them here
    sweep_id, run_ids = runs.start_sweep(as_role("analyst"), {"dataset": str(tmp_path / "photos"),
                                                              "pretrained_model_name_or_path":
                                          str(kit["sdxl"])}, {"rank": ["4", "8"], "learning_rate": ["1e-4", "1e-3"]},
                                         name="s1")
    assert sweep_id == "s1" and len(run_ids) == 4
    rows = runs.sweep_table("s1")
    assert [set(r) >= {"run", "rank", "learning_rate", "status", "final_loss", "minutes"} for r in rows] == [True] * 4
    assert sorted((r["rank"], r["learning_rate"]) for r in rows) == [(4, 1e-4), (4, 1e-3), (8, 1e-4), (8, 1e-3)]
    assert runs.sweep_ids() == ["s1"] and {r.run_id for r in runs.list_runs(sweep_id="s1")} == set(run_ids)


def _fake_enqueue():
    """jobs.enqueue without handing the job to the queue (the rows are what the sweep table reads)."""
    from workbench.db import Job, session_scope

    def enqueue(kind, config, title="", created_by="", resumed_from=None, queue=True):
        with session_scope() as s:
            job = Job(kind=kind, title=title, config=config, created_by=created_by, metrics={}, result={})
            s.add(job)
            s.flush()
            return job.id
    return enqueue


def test_cli_train_rejects_an_unknown_flag_and_lists_options():
    result = CliRunner().invoke(app, ["train", "--dataset", "1", "--learning_rat", "1e-4"])
    assert result.exit_code == 2 and "unknown training option 'learning_rat'" in result.output
    result = CliRunner().invoke(app, ["train", "--help-options"])
    assert result.exit_code == 0 and "--snr_gamma" in result.output and "--instance_prompt" in result.output


def test_cli_train_estimate_only_queues_nothing(tmp_path):
    from workbench import jobs
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    result = CliRunner().invoke(app, ["train", "--config", str(CONFIGS / "tiny_cpu_demo.yaml"), "--dataset", "3",
                                      "--pretrained_model_name_or_path", str(kit["sdxl"]), "--estimate"])
    assert result.exit_code == 0, result.output
    assert "estimate:" in result.output and "CPU" in result.output
    assert jobs.list_jobs(kind="train_lora") == []
    result = CliRunner().invoke(app, ["train", "--config", str(CONFIGS / "tiny_cpu_demo.yaml"), "--dataset", "3",
                                      "--pretrained_model_name_or_path", str(kit["sdxl"]), "--detach"])
    assert result.exit_code == 2 and "dataset 3: there is no workspace dataset" in result.output


def test_cli_train_takes_a_workspace_dataset_by_its_name(tmp_path, monkeypatch):
    """`workbench train --dataset "ss26 shirts"`: the name the Datasets page shows, recorded as the dataset's id (what
    the run, the delete guard and the lineage read); a name that is no dataset says which ones there are."""
    from helpers.data import image_bytes, write
    from workbench.data.importer import import_dataset
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    for i in range(2):
        write(tmp_path / "src" / f"shirt{i}.png", image_bytes(color=(40 * i, 90, 200)))
    ds = import_dataset(as_role("admin"), tmp_path / "src", name="ss26 shirts", workers=1).dataset_id
    monkeypatch.setattr(runs, "enqueue", _fake_enqueue())
    base = ["train", "--config", str(CONFIGS / "tiny_cpu_demo.yaml"), "--pretrained_model_name_or_path",
            str(kit["sdxl"]), "--detach"]
    result = CliRunner().invoke(app, base + ["--dataset", "ss26 shirts"])
    assert result.exit_code == 0, result.output
    (run,) = runs.list_runs()
    assert runs.get_run(run.run_id).config["dataset"] == str(ds)
    result = CliRunner().invoke(app, base + ["--dataset", "aw27 coats"])
    assert result.exit_code == 2 and "no dataset 'aw27 coats' (datasets: ss26 shirts)" in result.output


def test_cli_runs_commands_name_a_missing_run():
    for args in (["runs", "show", "42"], ["runs", "stop", "42"], ["runs", "resume", "42"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "no training run with id 42" in result.output
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 0 and "no training runs yet" in result.output
    result = CliRunner().invoke(app, ["sweep", "run", "--grid", "rank=4,8", "--dry-run", "--dataset", "1"])
    assert result.exit_code == 0 and "rank=4" in result.output and "2 runs" in result.output


def test_the_sweep_table_shows_each_runs_latest_evaluation_scores(tmp_path, monkeypatch):
    from workbench.db import session_scope
    from workbench.evaluate.tables import Evaluation, EvaluationImage
    from workbench.models import tiny
    from helpers.review import make_generation

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    monkeypatch.setattr(runs, "enqueue", _fake_enqueue())
    _, (r4, r8) = runs.start_sweep(as_role("analyst"), {"dataset": str(tmp_path / "photos"),
                                                        "pretrained_model_name_or_path":
                                    str(kit["sdxl"])}, {"rank": ["4", "8"]}, name="s2")
    lora_of_r8 = str(runs.run_dir(r8) / "lora")
    gens = [make_generation(loras=[{"path": lora_of_r8, "scale": 1.0, "name": "r8"}]) for _ in range(2)]
    with session_scope() as s:
        old, new = Evaluation(name="old"), Evaluation(name="new")
        s.add_all([old, new])
        s.flush()
        for evaluation, clips in ((old, (0.1, 0.1)), (new, (0.2, 0.3))):
            for gen_id, clip in zip(gens, clips):
                s.add(EvaluationImage(evaluation_id=evaluation.id, image_set="r8", generation_id=gen_id,
                                      image_path="x.png", scores={"clip_cosine": clip, "lpips_ref": None}))
    from workbench.evaluate.results import sweep_rows

    rows = {row["run"]: row for row in sweep_rows("s2")}
    assert rows[r8]["eval_clip_cosine"] == pytest.approx(0.25)  # the latest evaluation, mean over its images
    assert "eval_lpips_ref" not in rows[r8]
    assert "eval_clip_cosine" not in rows[r4]  # never evaluated


# -- issue #17: a path is not a sweep axis, and a new run never resumes from a folder of someone's choosing --

@pytest.mark.parametrize("axis", ["resume_from_checkpoint", "output_dir", "pretrained_model_name_or_path",
                                  "pretrained_vae_model_name_or_path", "dataset", "train_data_dir", "instance_data_dir",
                                  "class_data_dir", "dataset_name", "logging_dir", "revision"])
def test_the_sweep_grid_refuses_paths_and_anything_but_hyperparameters(axis, tmp_path):
    with pytest.raises(ConfigError, match=f"{axis}.*cannot be swept.*rank"):
        runs.parse_grid([f"{axis}={tmp_path}/a,{tmp_path}/b"])
    with pytest.raises(ConfigError, match=f"{axis}.*cannot be swept"):  # the library call, not only the parser
        runs.sweep_configs({"dataset": "1"}, {"rank": ["4"], axis: [str(tmp_path / "a")]})
    assert {"rank", "learning_rate", "lr_scheduler", "snr_gamma", "seed"} <= set(runs.SWEEPABLE)
    assert not {"resume_from_checkpoint", "output_dir", "dataset"} & set(runs.SWEEPABLE)


def _hostile(tmp_path):
    from hostile.train import hostile_checkpoint

    marker = tmp_path / "PWNED"
    return hostile_checkpoint(tmp_path / "elsewhere" / "checkpoints" / "checkpoint-1", marker), marker


def test_a_new_run_or_sweep_cannot_resume_from_a_planted_checkpoint(tmp_path, monkeypatch):
    from workbench import jobs
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    ckpt, marker = _hostile(tmp_path)
    base = {"dataset": str(tmp_path / "photos"), "pretrained_model_name_or_path": str(kit["sdxl"])}
    cfg = build_config({**base, "resume_from_checkpoint": str(ckpt)})
    assert any("resume_from_checkpoint" in p for p in runs.preflight(cfg))
    hub_data = build_config({**base, "dataset": None, "dataset_name": "someone/data",
                             "resume_from_checkpoint": str(ckpt)})
    assert any("resume_from_checkpoint" in p for p in runs.preflight(hub_data))  # whatever the data source
    with pytest.raises(runs.RunError, match="resume_from_checkpoint.*runs resume"):
        runs.start(as_role("analyst"), cfg)
    with pytest.raises(ConfigError, match="resume_from_checkpoint.*cannot be swept"):
        runs.start_sweep(as_role("analyst"), base, {"rank": ["4", "8"], "resume_from_checkpoint": [str(ckpt)]})
    with pytest.raises(runs.RunError, match="resume_from_checkpoint"):  # in the base config instead of an axis
        runs.start_sweep(as_role("analyst"), {**base, "resume_from_checkpoint": str(ckpt)}, {"rank": ["4", "8"]})
    assert jobs.list_jobs(kind=runs.KIND) == [] and not marker.exists()


def test_the_cli_refuses_a_planted_checkpoint_and_a_path_axis(tmp_path):
    from workbench import jobs
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    ckpt, marker = _hostile(tmp_path)
    flags = ["--dataset", str(tmp_path / "photos"), "--pretrained_model_name_or_path", str(kit["sdxl"])]
    result = CliRunner().invoke(app, ["train", *flags, "--resume_from_checkpoint", str(ckpt), "--detach"])
    assert result.exit_code == 2 and "resume_from_checkpoint" in result.output, result.output
    # issue #19: the planted folder as output_dir with "latest" is a folder no workbench run wrote
    result = CliRunner().invoke(app, ["train", *flags, "--output_dir", str(ckpt.parent.parent),
                                      "--resume_from_checkpoint", "latest", "--detach"])
    assert result.exit_code == 2 and "not empty and no workbench run wrote it" in result.output, result.output
    result = CliRunner().invoke(app, ["sweep", "run", "--grid", f"resume_from_checkpoint={ckpt}", "--grid", "rank=4,8",
                                      *flags])
    assert result.exit_code == 2 and "cannot be swept" in result.output, result.output
    result = CliRunner().invoke(app, ["sweep", "run", "--grid", "rank=4,8", *flags, "--resume_from_checkpoint",
                                      str(ckpt)])
    assert result.exit_code == 2 and "resume_from_checkpoint" in result.output, result.output
    assert jobs.list_jobs(kind=runs.KIND) == [] and not marker.exists()


def test_resume_from_checkpoint_names_a_checkpoint_folder_or_latest():
    for ok in (None, "latest", "checkpoint-20", "/somewhere/checkpoints/checkpoint-20"):
        assert build_config({"resume_from_checkpoint": ok}).resume_from_checkpoint == ok
    with pytest.raises(ConfigError, match="resume_from_checkpoint.*'latest' or a checkpoint-<step> folder"):
        build_config({"resume_from_checkpoint": "/tmp/evil"})


# -- issue #19 item 1: --output_dir is where the run writes, and only a folder the workbench may write into --------

def test_output_dir_is_the_runs_folder_and_a_foreign_or_another_runs_folder_is_refused(tmp_path):
    from workbench import jobs
    from workbench.models import tiny
    from workbench.settings import get_settings

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    base = {"dataset": str(tmp_path / "photos"), "pretrained_model_name_or_path": str(kit["sdxl"])}
    analyst = as_role("analyst")
    mine = tmp_path / "out" / "mine"
    run_id = runs.start(analyst, build_config({**base, "output_dir": str(mine)}), queue=False)
    # recorded with the run: every reader of the run's files looks there
    assert runs.run_dir(run_id) == mine.resolve() and runs.get_run(run_id).folder == mine.resolve()
    assert jobs.get_job(run_id).config["output_dir"] == str(mine.resolve())
    plain = runs.start(analyst, build_config(base), queue=False)
    assert runs.run_dir(plain) == get_settings().path("runs", str(plain))

    foreign = tmp_path / "out" / "foreign"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("someone's files")
    refusals = {
        str(foreign): "output_dir .*foreign is not empty and no workbench run wrote it",
        str(mine): f"output_dir .*mine is run {run_id}'s folder: add --resume_from_checkpoint latest",
        str(mine / "sub"): f"output_dir .*sub is inside run {run_id}'s folder",
        str(get_settings().path("runs", "99")): "output_dir .*inside the workspace's runs folder",
        str(foreign / "notes.txt"): "output_dir .*notes.txt is a file",
    }
    for folder, message in refusals.items():
        cfg = build_config({**base, "output_dir": folder})
        assert any(re.search(message, p) for p in runs.preflight(cfg)), (folder, runs.preflight(cfg))
        with pytest.raises(runs.RunError, match=message):
            runs.start(analyst, cfg, queue=False)
    with pytest.raises(runs.RunError, match="output_dir: every run of a sweep needs its own folder"):
        runs.start_sweep(analyst, {**base, "output_dir": str(tmp_path / "out" / "sweep")}, {"rank": ["4", "8"]})
    # a checkpoint path is accepted only inside the folder of the run being continued
    outside = build_config({**base, "output_dir": str(tmp_path / "out" / "new"),
                            "resume_from_checkpoint": str(mine / "checkpoints" / "checkpoint-2")})
    with pytest.raises(runs.RunError, match="resume_from_checkpoint"):
        runs.start(analyst, outside, queue=False)
    assert [j.id for j in jobs.list_jobs(kind=runs.KIND)] == [plain, run_id]


def test_the_same_command_line_with_resume_continues_the_run_whose_folder_is_output_dir(tmp_path):
    """The diffusers flow: `--output_dir DIR` again with `--resume_from_checkpoint latest` is a new job of the run
    that owns DIR (same run id, resumed_from its last job), not a second run in the same folder."""
    from workbench import jobs
    from workbench.db import Job, session_scope
    from workbench.models import tiny

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    (tmp_path / "photos").mkdir()
    out = tmp_path / "DIR"
    base = {"dataset": str(tmp_path / "photos"), "pretrained_model_name_or_path": str(kit["sdxl"]),
            "output_dir": str(out), "checkpointing_steps": 2, "max_train_steps": 2}
    analyst = as_role("analyst")
    run_id = runs.start(analyst, build_config(base), queue=False, num_processes=2)
    with pytest.raises(runs.RunError, match=f"run {run_id} .*is queued: wait for it or stop it"):
        runs.start(analyst, build_config({**base, "resume_from_checkpoint": "latest"}), queue=False)
    with session_scope() as s:
        s.get(Job, run_id).status = "done"
    ckpt = out / "checkpoints" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"step": 2}')
    with pytest.raises(runs.RunError, match="max_train_steps 2: run .* is already at step 2"):
        runs.start(analyst, build_config({**base, "resume_from_checkpoint": "latest"}), queue=False)
    more = build_config({**base, "max_train_steps": 4, "resume_from_checkpoint": str(ckpt)})
    assert runs.preflight(more) == []
    assert runs.start(analyst, more, queue=False) == run_id
    first, second = jobs.list_jobs(kind=runs.KIND)[::-1]
    assert (first.id, second.resumed_from, second.config["run_id"]) == (run_id, run_id, run_id)
    assert second.config["config"]["max_train_steps"] == 4 and second.config["num_processes"] == 2
    assert runs.run_dir(run_id) == out.resolve() and runs.get_run(run_id).jobs == [run_id, second.id]
    assert "continued at step 2" in second.title


# -- issue #19 item 5: the GPU table is for full-size SDXL only ----------------------------------------------------

def test_the_estimate_never_quotes_the_sdxl_table_for_a_small_model(tmp_path):
    """An unmarked copy of the tiny kit (1.0 M UNet parameters) at 64 px used to get "at most 25.6 GiB" from the
    H100 SDXL rows. A model that is not SDXL-sized gets no GPU memory figure, and says why."""
    import shutil

    from workbench.models import demo_base, tiny
    from workbench.models.sources import DEMO_MARKER

    kit = tiny.make_tiny_kit(tmp_path / "kit")
    plain = tmp_path / "my-small-model"
    shutil.copytree(kit["sdxl"], plain)
    (plain / DEMO_MARKER).unlink(missing_ok=True)
    cfg = build_config({"dataset": "1", "pretrained_model_name_or_path": str(plain), "resolution": 64})
    for gpu in (None, _gpu(24)):
        est = est_mod.estimate(cfg, gpu=gpu)
        text = est_mod.describe(est)
        assert est.peak_gib is None and est.s_per_step is None and est.fits is None, text
        assert "no measured row applies" in text and "1.0 M" in text and "2,567 M" in text, text
        assert "GiB" not in est.summary() and "H100" not in text, text
    assert est_mod.unet_parameters(str(plain)) == est_mod.unet_parameters(str(kit["sdxl"])) == 1_028_708
    # The demo models (marked) use the CPU row, scaled to their parameters and samples x pixels
    demo_row = est_mod.measured()["cpu_demo"]
    demo = est_mod.estimate(cfg.model_copy(update={"pretrained_model_name_or_path": str(kit["sdxl"]),
                                                   "train_batch_size": 4}))
    assert demo.peak_gib is None and demo.fits and demo.s_per_step == pytest.approx(demo_row["s_per_step"])
    bigger = est_mod.estimate(cfg.model_copy(update={"pretrained_model_name_or_path": str(kit["sdxl"]),
                                                     "train_batch_size": 4, "resolution": 128}))
    assert bigger.s_per_step == pytest.approx(4 * demo_row["s_per_step"])
    shipped = str(demo_base.shipped_demo_base())
    base = est_mod.estimate(cfg.model_copy(update={"pretrained_model_name_or_path": shipped, "train_batch_size": 4}))
    ratio = est_mod.unet_parameters(shipped) / demo_row["unet_parameters"]
    assert ratio > 2 and base.s_per_step == pytest.approx(ratio * demo_row["s_per_step"], rel=1e-3)
    assert "GiB" not in base.summary() and "2.9 M" in est_mod.describe(base)
    # full-size SDXL (a hub id, or a folder whose UNet has SDXL's parameter count) still gets the table
    assert est_mod.estimate(build_config({"dataset": "1", "mixed_precision": "bf16", "pretrained_model_name_or_path":
                                          "stabilityai/stable-diffusion-xl-base-1.0"})).peak_gib is not None
