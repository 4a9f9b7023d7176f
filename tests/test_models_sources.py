"""Model references: availability offline, the clear error, pickle refusal, `workbench models list|pull`."""
import time

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.models import sources
from workbench.settings import get_settings

runner = CliRunner()


def test_missing_hub_model_raises_the_clear_error_fast_offline():
    ref = get_settings().models.sdxl_base
    start = time.perf_counter()
    with pytest.raises(sources.ModelUnavailable) as err:
        sources.load_sdxl_pipeline(ref)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"took {elapsed:.2f} s: something waited on the network"
    message = str(err.value)
    assert "stabilityai/stable-diffusion-xl-base-1.0" in message
    assert "workbench models pull sdxl_base" in message and "WORKBENCH_MODELS__SDXL_BASE" in message


def test_parse_ref_kinds(tmp_path):
    assert sources.parse_ref("org/name@v1.0").kind == "hub"
    assert sources.parse_ref("org/name@v1.0").revision == "v1.0"
    assert sources.parse_ref(str(tmp_path)).kind == "local_dir"
    assert sources.parse_ref(str(tmp_path / "x.safetensors")).kind == "single_file"
    assert sources.parse_ref("torchvision:alexnet").kind == "torch_hub_file"
    with pytest.raises(ValueError, match="neither an existing local path nor a hub id"):
        sources.parse_ref("just-a-name")


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt"])
def test_pickle_weights_are_refused(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04K\x01.")  # a real (harmless) pickle: refused by name, never opened
    a = sources.availability(str(path))
    assert a.status == "refused" and ".safetensors" in a.remedy
    with pytest.raises(sources.UnsafeWeights, match="pickle"):
        sources.load_sdxl_pipeline(str(path))


def test_folder_with_only_pickle_weights_is_refused(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    assert sources.availability(str(tmp_path)).status == "refused"


def test_local_paths_and_single_safetensors_files(tmp_path):
    assert sources.availability(str(tmp_path / "nope")).status == "missing"
    f = tmp_path / "sdxl.safetensors"
    assert sources.availability(str(f)).status == "missing"
    f.write_bytes(b"0")
    a = sources.availability(str(f))
    assert a.status == "available" and a.local_path == str(f)


def test_models_list_shows_every_default_missing_with_remedy_offline():
    start = time.perf_counter()
    result = runner.invoke(app, ["models", "list"])
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert elapsed < 10
    out = result.output
    for name, ref in get_settings().models.model_dump().items():
        assert name in out and ref in out
    hub_like = ["sdxl_base", "vae", "clip_scorer", "blip_itm", "blip_captioner", "fid_inception", "lpips_backbone"]
    assert out.count("missing") >= len(hub_like)
    assert out.count("fix: Run `workbench models pull") >= len(hub_like)
    assert "rapidocr" in out


def test_models_list_records_state_for_the_ui():
    from workbench.db import ModelCacheState, session_scope

    sources.list_models()
    with session_scope() as s:
        rows = {r.name: r.status for r in s.query(ModelCacheState)}
    assert rows["sdxl_base"] == "missing" and rows["ocr_backend"] == "available"


def test_pull_offline_fails_clearly_with_nonzero_exit():
    result = runner.invoke(app, ["models", "pull", "vae"])
    assert result.exit_code == 1
    assert "vae: FAILED" in result.output and "HF_HUB_OFFLINE" in result.output


def test_pull_unknown_name_names_the_known_ones():
    result = runner.invoke(app, ["models", "pull", "sdxl"])
    assert result.exit_code == 2 and "sdxl_base" in result.output


def test_native_size_reads_a_diffusers_folder_and_falls_back_to_sdxl(tmp_path):
    """The Generate page's default size: a 64 px demo model must not be asked for 1024 px images."""
    import json

    (tmp_path / "unet").mkdir()
    (tmp_path / "vae").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"sample_size": 8}))
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [16, 32, 32, 32]}))
    assert sources.native_size(str(tmp_path)) == 64
    (tmp_path / "vae" / "config.json").write_text("{not json")
    assert sources.native_size(str(tmp_path)) == 1024
    assert sources.native_size("stabilityai/stable-diffusion-xl-base-1.0") == 1024
    assert sources.native_size(None) == 1024
