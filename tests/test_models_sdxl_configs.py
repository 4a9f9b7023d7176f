"""The SDXL 1.0 base configs shipped in the package (workbench/models/sdxl_configs, scripts/make_sdxl_configs.py):
they build SDXL's real sizes, their tokenizers equal CLIP's, and a single file without its own configs uses them.
A real SDXL single file cannot be loaded here (no weights on this machine): sizes and tokens are what is checked."""
from __future__ import annotations

import json

import pytest

from workbench.models.single_file import SHIPPED_CONFIGS
from workbench.models.sources import single_file_config

PROMPT = "a photo of a red shirt"


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_shipped_configs_build_sdxl_base_at_its_real_size():
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    index = json.loads((SHIPPED_CONFIGS / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    with torch.device("meta"):  # built directly as meta tensors: sizes without memory or init time
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SHIPPED_CONFIGS / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(SHIPPED_CONFIGS / "vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_pretrained(SHIPPED_CONFIGS / "text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(SHIPPED_CONFIGS / "text_encoder_2"))
    sizes = {name: float(f"{_params(m):.3g}") for name, m in
             (("unet", unet), ("vae", vae), ("text_encoder", te1), ("text_encoder_2", te2))}
    assert sizes == {"unet": 2.57e9, "vae": 8.37e7, "text_encoder": 1.23e8, "text_encoder_2": 6.95e8}
    assert abs(_params(unet) / 1e9 - 2.567) < 0.0005  # NOTES: 2.567 B
    assert unet.config.cross_attention_dim == 768 + 1280 and vae.config.scaling_factor == 0.13025
    scheduler = EulerDiscreteScheduler.from_pretrained(SHIPPED_CONFIGS / "scheduler")
    cfg = scheduler.config
    assert (cfg.beta_start, cfg.beta_end, cfg.beta_schedule, cfg.num_train_timesteps, cfg.steps_offset,
            cfg.timestep_spacing, cfg.prediction_type) == (0.00085, 0.012, "scaled_linear", 1000, 1, "leading",
                                                           "epsilon")


def test_the_shipped_tokenizers_load_offline_and_equal_open_clips():
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    reference = SimpleTokenizer()(PROMPT)[0].tolist()  # the bundled vocabulary, 77 positions, padded with 0
    content = [t for t in reference if t]
    assert content[0] == 49406 and content[-1] == 49407 and len(content) > 4
    tok1 = CLIPTokenizer.from_pretrained(SHIPPED_CONFIGS / "tokenizer", local_files_only=True)
    tok2 = CLIPTokenizer.from_pretrained(SHIPPED_CONFIGS / "tokenizer_2", local_files_only=True)
    assert len(tok1) == len(tok2) == 49408 and tok1.model_max_length == tok2.model_max_length == 77
    assert tok1(PROMPT).input_ids == tok2(PROMPT).input_ids == content
    # padded to 77 as the pipeline does: tokenizer with the end token, tokenizer_2 with "!" (id 0) like open_clip
    assert tok2(PROMPT, padding="max_length", max_length=77).input_ids == reference
    assert tok1(PROMPT, padding="max_length", max_length=77).input_ids == content + [49407] * (77 - len(content))
    assert tok2.pad_token == "!" and tok1.pad_token == "<|endoftext|>"


def test_a_single_file_without_configs_beside_it_uses_the_shipped_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(tmp_path / "no-such-sdxl"))  # no local sdxl_base
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    assert single_file_config(str(path), path) == SHIPPED_CONFIGS
    beside = tmp_path / "model.safetensors.config"
    beside.mkdir()
    (beside / "model_index.json").write_text("{}")
    assert single_file_config(str(path), path) == beside  # its own configs come first


def test_a_file_of_another_size_names_the_config_folder_it_needs(tmp_path):
    from workbench.models import tiny
    from workbench.models.single_file import save_original_sdxl
    from workbench.models.sources import ModelUnavailable, load_sdxl_pipeline

    path = save_original_sdxl(tiny.build_tiny_sdxl(seed=1, text_hidden_2=48), tmp_path / "model.safetensors")
    import shutil

    shutil.rmtree(str(path) + ".config")
    with pytest.raises(ModelUnavailable, match=r"shipped SDXL 1\.0 base configs.*model\.safetensors\.config/"):
        load_sdxl_pipeline(str(path))
