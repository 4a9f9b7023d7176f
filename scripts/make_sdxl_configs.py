"""Regenerate workbench/models/sdxl_configs/: the configs of SDXL 1.0 base as a diffusers folder without weights.

A single-file SDXL checkpoint (A1111/ComfyUI layout) loads with ``from_single_file(config=<this folder>)``, offline
(``workbench.models.sources.single_file_config``). Everything here is generated, never hand-edited:

- unet/vae: ``UNet2DConditionModel`` / ``AutoencoderKL`` built under ``accelerate.init_empty_weights()`` from
  ``workbench.models.sdxl_arch`` (UNET, VAE), written with ``save_config``;
- text_encoder / text_encoder_2: ``CLIPTextConfig`` from ``sdxl_arch`` (TE1: CLIP ViT-L/14 text, TE2: OpenCLIP
  ViT-bigG/14 text with projection);
- scheduler: ``EulerDiscreteScheduler`` with SDXL's values;
- tokenizer / tokenizer_2: CLIP's BPE vocabulary (49,408 tokens) built from open_clip's bundled
  ``bpe_simple_vocab_16e6.txt.gz`` exactly as ``workbench.prompts.tokens`` builds it; tokenizer_2 pads with "!".

    python scripts/make_sdxl_configs.py            # rewrites the package folder
    python scripts/make_sdxl_configs.py /tmp/out   # or writes elsewhere (the test compares the two)
"""
from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "workbench" / "models" / "sdxl_configs"

SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 steps_offset=1, timestep_spacing="leading", prediction_type="epsilon", interpolation_type="linear",
                 use_karras_sigmas=False)
MODEL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
               "feature_extractor": [None, None], "image_encoder": [None, None],
               "scheduler": ["diffusers", "EulerDiscreteScheduler"],
               "text_encoder": ["transformers", "CLIPTextModel"],
               "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
               "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
START, END = "<|startoftext|>", "<|endoftext|>"


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _strip(config: dict) -> dict:
    """A saved config without the library version stamp, so regenerating with another diffusers/transformers
    version changes only what really changed."""
    return {k: v for k, v in config.items() if k not in ("_diffusers_version", "transformers_version",
                                                        "_use_default_values", "_name_or_path")}


def clip_vocabulary() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary and merges, as OpenAI's CLIP (and ``workbench.prompts.tokens``) build them."""
    from workbench.models.clip_bytes import bytes_to_unicode
    from workbench.prompts.tokens import vocab_path

    lines = gzip.open(vocab_path()).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m.split()) for m in merges), START, END]
    assert len(tokens) == 49408 and len(set(tokens)) == len(tokens)
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(folder: Path, vocab: dict[str, int], merges: list[str], pad: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n",
                                       encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    _json(folder / "tokenizer_config.json",
          {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, "errors": "replace",
           "add_prefix_space": False, "clean_up_tokenization_spaces": True,
           "bos_token": START, "eos_token": END, "unk_token": END, "pad_token": pad})
    _json(folder / "special_tokens_map.json", {"bos_token": START, "eos_token": END, "unk_token": END,
                                               "pad_token": pad})


def write(target: Path) -> Path:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig

    from workbench.models import sdxl_arch

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _json(tmp / "model_index.json", MODEL_INDEX)
    _json(tmp / "scheduler" / "scheduler_config.json",
          {"_class_name": "EulerDiscreteScheduler", **_strip(dict(EulerDiscreteScheduler(**SCHEDULER).config))})
    with init_empty_weights():
        unet = UNet2DConditionModel(**sdxl_arch.UNET)
        vae = AutoencoderKL(**sdxl_arch.VAE, force_upcast=True)
    _json(tmp / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", **_strip(dict(unet.config))})
    _json(tmp / "vae" / "config.json", {"_class_name": "AutoencoderKL", **_strip(dict(vae.config))})
    # bos/eos are CLIP's start/end ids: the pooled output is taken at the first end token
    ids = dict(bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
    for name, arch, cls in (("text_encoder", sdxl_arch.TE1, "CLIPTextModel"),
                            ("text_encoder_2", sdxl_arch.TE2, "CLIPTextModelWithProjection")):
        config = CLIPTextConfig(**arch, **ids, architectures=[cls], dtype="float16").to_dict()
        _json(tmp / name / "config.json", _strip(config))
    vocab, merges = clip_vocabulary()
    write_tokenizer(tmp / "tokenizer", vocab, merges, pad=END)
    write_tokenizer(tmp / "tokenizer_2", vocab, merges, pad="!")  # SDXL's tokenizer_2 pads with "!" (id 0)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    out = write(Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
