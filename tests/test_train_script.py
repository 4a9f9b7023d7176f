"""The training script in-process with the tiny SDXL-architecture kit on CPU: resume equals uninterrupted, learning on
held-out images, DreamBooth with prior preservation, 8-bit Adam, small datasets, NaN handling, the LoRA file."""
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workbench.models import tiny
from workbench.train.config import ConfigError, build_config
from workbench.train.data import resolve_examples
from workbench.train.script import TrainingDiverged, main
from helpers.train import demo_imagefolder

from hostile.train import crafted_pickle, plant_pickles


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The synthetic catalog at 64 px: 20 items to train on, 8 held out (different items, same brand)."""
    root = tmp_path_factory.mktemp("catalog")
    data = demo_imagefolder(root / "all", size=64)
    lines = (data / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 28
    splits = {}
    for name, part in (("train", lines[:20]), ("heldout", lines[20:])):
        folder = root / name
        folder.mkdir()
        os.symlink(data / "images", folder / "images")
        (folder / "metadata.jsonl").write_text("\n".join(part) + "\n")
        splits[name] = folder
    return splits


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")


def _cfg(kit, data, out, **extra):
    values = dict(pretrained_model_name_or_path=str(kit["sdxl"]), dataset=str(data), resolution=64, center_crop=True,
                  train_batch_size=2, max_train_steps=6, checkpointing_steps=3, learning_rate=1e-3, rank=4, seed=3,
                  output_dir=str(out))
    values.update(extra)
    return build_config(values)


def _lora(folder):
    return load_file(folder / "lora" / "pytorch_lora_weights.safetensors")


def test_stop_then_resume_ends_with_the_same_lora_as_an_uninterrupted_run(kit, catalog, tmp_path):
    whole = main(_cfg(kit, catalog["train"], tmp_path / "a"))
    first = main(_cfg(kit, catalog["train"], tmp_path / "b"), should_stop=lambda step: step == 2)
    assert first.status == "stopped" and first.step == 2
    assert (tmp_path / "b" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    # Pickles planted in the run's own checkpoint (where accelerate's load_state would unpickle them) are never
    # loaded: the checkpoint is read from JSON and safetensors only (issue #17).
    marker = tmp_path / "PWNED"
    plant_pickles(tmp_path / "b" / "checkpoints" / "checkpoint-2", marker)
    second = main(_cfg(kit, catalog["train"], tmp_path / "b", resume_from_checkpoint="latest"))
    assert not marker.exists(), "a pickle in the checkpoint was unpickled"
    assert second.status == "done" and second.resumed_from_step == 2 and second.step == whole.step == 6
    a, b = _lora(tmp_path / "a"), _lora(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert second.final_loss == pytest.approx(whole.final_loss, abs=1e-6)
    # the resumed run's metrics have each step once, in order (steps after the checkpoint were not duplicated)
    steps = [json.loads(l)["step"] for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_run_on_the_demo_catalog_lowers_the_held_out_denoising_loss(kit, catalog, tmp_path):
    from workbench.train.heldout import heldout_loss

    result = main(_cfg(kit, catalog["train"], tmp_path / "run", train_batch_size=4, max_train_steps=100,
                       checkpointing_steps=1000, learning_rate=3e-3, rank=8, seed=0))
    held, _ = resolve_examples(build_config({"dataset": str(catalog["heldout"]), "resolution": 64}))
    before = heldout_loss(str(kit["sdxl"]), held, 64)
    after = heldout_loss(str(kit["sdxl"]), held, 64, lora_dir=result.lora_dir)
    # Stated margin: at least 5% lower on 8 unseen catalog items x 4 fixed (noise, timestep) draws (measured ~9%).
    assert after < 0.95 * before, (before, after)


@pytest.fixture(scope="module")
def alpha8(kit, catalog, tmp_path_factory):
    """One tiny trained LoRA (rank 4, lora_alpha 8, kohya export), shared by the LoRA-format tests."""
    from workbench import db
    from workbench.settings import reload_settings

    root = tmp_path_factory.mktemp("alpha8")
    with pytest.MonkeyPatch.context() as mp:  # its own workspace: the registry row goes there
        mp.setenv("WORKBENCH_WORKSPACE", str(root / "workspace"))
        mp.setenv("WORKBENCH_DEVICE", "cpu")
        db.reset_for_tests()
        reload_settings()
        result = main(_cfg(kit, catalog["train"], root / "run", lora_alpha=8, max_train_steps=4, learning_rate=5e-3,
                           export_kohya=True))
        db.reset_for_tests()
    return result


def _pipe(kit):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(str(kit["sdxl"]))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(pipe, seed=0):
    out = pipe("a photo of a red t shirt", num_inference_steps=2, height=64, width=64, output_type="np",
               generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return torch.from_numpy(out)


def test_the_lora_file_loads_into_a_fresh_pipeline_and_changes_its_output(kit, alpha8):
    lora_dir = Path(alpha8.lora_dir)
    card = json.loads((lora_dir / "run_card.json").read_text())
    assert card["rank"] == 4 and card["lora_alpha"] == 8 and card["steps"] == 4
    assert card["dataset_manifest_hash"] and card["base_model"] == str(kit["sdxl"])
    assert (lora_dir / "pytorch_lora_weights_kohya.safetensors").is_file()
    kohya = load_file(lora_dir / "pytorch_lora_weights_kohya.safetensors")
    alphas = [v.item() for k, v in kohya.items() if k.startswith("lora_unet_") and k.endswith(".alpha")]
    assert alphas and set(alphas) == {8.0}  # lora_alpha, not the rank, so A1111 applies the same scale

    pipe = _pipe(kit)
    plain = _image(pipe)
    pipe.load_lora_weights(alpha8.lora_dir)
    tuned = _image(pipe)
    assert (plain - tuned).abs().max() > 1e-3  # the LoRA is loaded and does something
    torch.testing.assert_close(_image(pipe), tuned)  # and loading is deterministic


def _scalings(pipe, adapter):
    return {m.scaling[adapter] for m in pipe.unet.modules() if adapter in (getattr(m, "scaling", None) or {})}


def test_diffusers_load_lora_weights_keeps_lora_alpha(kit, alpha8, tmp_path):
    """Issue #19 item 4, checked by the real consumer: rank 4 with alpha 8 loads with scaling 8/4 = 2 (without the
    adapter metadata diffusers would assume alpha = rank, scaling 1), and draws differently from an alpha-4 copy."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = Path(alpha8.lora_dir) / "pytorch_lora_weights.safetensors"
    with safe_open(str(src), "pt") as f:
        metadata = dict(f.metadata())
    adapter = json.loads(metadata["lora_adapter_metadata"])
    assert adapter["unet.lora_alpha"] == 8 and adapter["unet.r"] == 4
    copy = tmp_path / "alpha4"
    copy.mkdir()
    metadata["lora_adapter_metadata"] = json.dumps({**adapter, "unet.lora_alpha": 4})
    save_file(load_file(src), str(copy / "pytorch_lora_weights.safetensors"), metadata=metadata)

    pipe = _pipe(kit)
    pipe.load_lora_weights(alpha8.lora_dir, adapter_name="ours")
    assert _scalings(pipe, "ours") == {2.0}
    ours = _image(pipe)
    pipe.unload_lora_weights()
    pipe.load_lora_weights(str(copy), adapter_name="alpha4")
    assert _scalings(pipe, "alpha4") == {1.0}
    assert (ours - _image(pipe)).abs().max() > 1e-3


def test_the_kohya_export_loads_in_diffusers_and_draws_the_same_images(kit, alpha8):
    """Issue #19 item 4: diffusers' load_lora_weights reads kohya/A1111 keys (lora_unet_*.lora_down/up + .alpha) and
    folds each alpha into the weights; the images equal those of our diffusers file up to float rounding (max abs
    difference 1e-5 on [0, 1] pixels: the scale is applied to the weights instead of the activations)."""
    pipe = _pipe(kit)
    pipe.load_lora_weights(alpha8.lora_dir, adapter_name="diffusers")
    ours = _image(pipe, seed=5)
    pipe.unload_lora_weights()
    pipe.load_lora_weights(alpha8.lora_dir, weight_name="pytorch_lora_weights_kohya.safetensors", adapter_name="kohya")
    kohya = _image(pipe, seed=5)
    plain = _image(_pipe(kit), seed=5)
    assert (ours - plain).abs().max() > 1e-3  # the comparison is not between two no-ops
    torch.testing.assert_close(kohya, ours, rtol=0, atol=1e-5)


def test_dreambooth_with_prior_preservation_generates_class_images_and_trains(kit, catalog, tmp_path):
    data = tmp_path / "instance"
    data.mkdir()
    for name in sorted(os.listdir(catalog["train"] / "images"))[:3]:  # the 3-5 photo DreamBooth case
        (data / name).write_bytes((catalog["train"] / "images" / name).read_bytes())
    cfg = _cfg(kit, None, tmp_path / "db", dataset=None, instance_data_dir=str(data),
               instance_prompt="a photo of TOK shirt", class_prompt="a photo of a shirt", with_prior_preservation=True,
               num_class_images=2, class_num_inference_steps=2, train_batch_size=4, max_train_steps=2,
               checkpointing_steps=10)
    result = main(cfg)
    assert result.status == "done" and result.final_loss is not None
    assert sorted(p.name for p in (tmp_path / "db" / "class_images").iterdir()) == ["class-00000.png",
                                                                                   "class-00001.png"]
    card = json.loads((tmp_path / "db" / "lora" / "run_card.json").read_text())
    assert card["method"] == "dreambooth_lora" and card["trigger"] == "a photo of TOK shirt"


def test_prior_preservation_with_fewer_class_images_than_photos_cycles_the_class_images(kit, catalog, tmp_path,
                                                                                         capsys):
    """Five product photos, one class image already there, batch 1: each step pairs a photo with that class image
    (the class images' own epochs), instead of asking for a class batch past the end of the class images."""
    data, classes = tmp_path / "instance", tmp_path / "classes"
    data.mkdir()
    classes.mkdir()
    names = sorted(os.listdir(catalog["train"] / "images"))
    for name in names[:5]:
        (data / name).write_bytes((catalog["train"] / "images" / name).read_bytes())
    (classes / "class-00000.png").write_bytes((catalog["train"] / "images" / names[10]).read_bytes())
    cfg = _cfg(kit, None, tmp_path / "db", dataset=None, instance_data_dir=str(data),
               instance_prompt="a photo of TOK shirt", class_prompt="a photo of a shirt", with_prior_preservation=True,
               class_data_dir=str(classes), num_class_images=1, train_batch_size=1, max_train_steps=3,
               checkpointing_steps=10)
    result = main(cfg)
    assert result.status == "done" and result.step == 3 and result.final_loss is not None
    assert [p.name for p in classes.iterdir()] == ["class-00000.png"]  # enough class images: none generated
    log = capsys.readouterr().out
    assert "5 training images" in log and "1 class images" in log


def test_8bit_adam_is_used_when_asked(kit, catalog, tmp_path):
    result = main(_cfg(kit, catalog["train"], tmp_path / "run", use_8bit_adam=True, max_train_steps=2))
    assert result.extra["optimizer"] == "AdamW8bit"
    assert result.status == "done"
    plain = main(_cfg(kit, catalog["train"], tmp_path / "plain", max_train_steps=1))
    assert plain.extra["optimizer"] == "AdamW"


def test_a_dataset_smaller_than_the_batch_still_trains(kit, catalog, tmp_path):
    data = tmp_path / "three"
    data.mkdir()
    for name in sorted(os.listdir(catalog["train"] / "images"))[:3]:
        (data / name).write_bytes((catalog["train"] / "images" / name).read_bytes())
        (data / name).with_suffix(".txt").write_text("a photo of a garment")  # kohya-style captions
    result = main(_cfg(kit, data, tmp_path / "run", train_batch_size=4, max_train_steps=2))
    assert result.status == "done" and result.step == 2


def test_empty_and_uncaptioned_datasets_get_a_message_naming_the_dataset(kit, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        main(_cfg(kit, empty, tmp_path / "run"))
    bare = tmp_path / "bare"
    bare.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(bare / "a.png")
    with pytest.raises(ConfigError, match="no captions.*instance_prompt"):
        main(_cfg(kit, bare, tmp_path / "run2"))


def test_a_nan_loss_stops_the_run_naming_the_cause(kit, catalog, tmp_path):
    with pytest.raises(TrainingDiverged, match="learning_rate"):
        main(_cfg(kit, catalog["train"], tmp_path / "run", noise_offset=float("inf"), max_train_steps=2))


def test_a_checkpoint_outside_the_runs_own_folder_is_refused_and_never_unpickled(kit, catalog, tmp_path):
    """Issue #17: a folder that looks like a checkpoint (a copy of a real one, its scheduler state swapped for a
    crafted pickle) given as resume_from_checkpoint: refused before anything in it is read, even through a symlink."""
    import shutil

    main(_cfg(kit, catalog["train"], tmp_path / "src", max_train_steps=1, checkpointing_steps=1))
    planted = tmp_path / "elsewhere" / "checkpoints" / "checkpoint-1"
    shutil.copytree(tmp_path / "src" / "checkpoints" / "checkpoint-1", planted)
    marker = tmp_path / "PWNED"
    plant_pickles(planted, marker, names=["custom_checkpoint_0.pkl"])
    (tmp_path / "c" / "checkpoints").mkdir(parents=True)
    os.symlink(planted, tmp_path / "c" / "checkpoints" / "checkpoint-1")  # inside by name, outside in fact
    for which in (str(planted), str(tmp_path / "c" / "checkpoints" / "checkpoint-1")):
        with pytest.raises(ConfigError, match="resume_from_checkpoint.*only a checkpoint of this run"):
            main(_cfg(kit, catalog["train"], tmp_path / "c", resume_from_checkpoint=which))
    assert not marker.exists()
    assert not (tmp_path / "c" / "lora").exists()


def test_a_tampered_checkpoint_file_is_refused_with_a_message_naming_it(kit, catalog, tmp_path):
    main(_cfg(kit, catalog["train"], tmp_path / "r", max_train_steps=2, checkpointing_steps=1),
         should_stop=lambda step: step == 1)
    ckpt = tmp_path / "r" / "checkpoints" / "checkpoint-1"
    marker = tmp_path / "PWNED"
    assert {"optimizer.safetensors", "optimizer.json", "scheduler.json", "lora_unet.safetensors"} <= {
        p.name for p in ckpt.iterdir()}
    assert not [p for p in ckpt.iterdir() if p.suffix in (".pkl", ".bin", ".pt")]  # no pickle is written
    crafted_pickle(ckpt / "optimizer.safetensors", marker)
    with pytest.raises(ConfigError, match="checkpoint-1.*optimizer.safetensors.*changed since it was saved"):
        main(_cfg(kit, catalog["train"], tmp_path / "r", max_train_steps=2, resume_from_checkpoint="latest"))
    assert not marker.exists()


def test_optimizer_scheduler_and_scaler_states_round_trip_through_json_and_safetensors(tmp_path):
    """What a checkpoint stores instead of pickles: AdamW, 8-bit AdamW and the fp16 gradient scaler come back equal
    (int keys, tuples, 0-d tensors, None), and an entry that is not a plain value is refused."""
    import bitsandbytes as bnb
    from diffusers.optimization import get_scheduler

    from workbench.train.checkpoints import _read_state, _write_state

    def same(a, b):
        assert type(a) is type(b), (a, b)
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        elif isinstance(a, dict):
            assert list(a) == list(b) and all(same(a[k], b[k]) is None for k in a)
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b) and all(same(x, y) is None for x, y in zip(a, b))
        else:
            assert a == b

    torch.manual_seed(0)
    for optimizer_cls in (torch.optim.AdamW, bnb.optim.AdamW8bit):
        params = [torch.nn.Parameter(torch.randn(70, 70)), torch.nn.Parameter(torch.randn(3))]
        opt = optimizer_cls(params, lr=1e-3, betas=(0.9, 0.99))
        sched = get_scheduler("cosine", optimizer=opt, num_warmup_steps=2, num_training_steps=10)
        for _ in range(3):
            sum((p ** 2).sum() for p in params).backward()
            opt.step()
            sched.step()
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        for name, state in (("optimizer", opt.state_dict()), ("scheduler", sched.state_dict()),
                            ("scaler", scaler.state_dict())):
            files = {f: "" for f in _write_state(tmp_path, name, state)}
            same(state, _read_state(tmp_path, name, files))
    with pytest.raises(TypeError, match="cannot store a object in a checkpoint"):
        _write_state(tmp_path, "bad", {"x": object()})


def test_a_checkpoint_in_the_old_pickle_format_is_refused_before_the_models_load(kit, catalog, tmp_path):
    from hostile.train import hostile_checkpoint

    marker = tmp_path / "PWNED"
    hostile_checkpoint(tmp_path / "r" / "checkpoints" / "checkpoint-4", marker, step=4)  # the run's own folder
    with pytest.raises(ConfigError, match="checkpoint-4 was written by an earlier workbench version.*pickle"):
        main(_cfg(kit, catalog["train"], tmp_path / "r", resume_from_checkpoint="latest"))
    assert not marker.exists() and not (tmp_path / "r" / "metrics.jsonl").exists()
