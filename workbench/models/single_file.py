"""Single-file SDXL checkpoints in the original (Stability / A1111 / ComfyUI) key layout, loaded offline.

diffusers' ``from_single_file`` converts such a file's keys to diffusers' own, but it needs the pipeline's configs
(model_index.json, each component's config, the tokenizers, the scheduler): with ``config=`` a local folder nothing
is downloaded. ``config_folder(file)`` finds that folder: ``<file>.config/`` beside the file when there is one, else
the ``sdxl_base`` setting's local diffusers folder (the shipped defaults point it at the hub id, which is only a config
source once pulled). ``save_original_sdxl`` writes a diffusers pipeline as such a file plus its ``.config`` folder.

diffusers 0.42.1 converts original -> diffusers only (the reverse script lives in its repository, hard-wired to
SDXL's block counts), so ``to_original_sdxl`` is diffusers' single-file conversion tables
(``loaders/single_file_utils.py``: ``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``,
``convert_ldm_clip_checkpoint``, ``convert_open_clip_checkpoint``) run in reverse, for any number of blocks and layers;
the round trip through diffusers' own converter is the test.

    save_original_sdxl(pipe, Path("model.safetensors"))            # model.safetensors + model.safetensors.config/
    pipe = load_sdxl_pipeline("model.safetensors")                  # offline, configs from that folder
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP_L = "conditioner.embedders.0.transformer."
CLIP_G = "conditioner.embedders.1.model."
CONFIG_SUFFIX = ".config"

_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
                "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_CLIP_G_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                 "self_attn.out_proj": "attn.out_proj"}


def config_folder(path: str | Path) -> Path | None:
    """The diffusers config folder for the single file ``path`` (see the module docstring), or None."""
    beside = Path(str(path) + CONFIG_SUFFIX)
    if (beside / "model_index.json").is_file():
        return beside
    return None


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_UNET_RESNET.get(head, head)}.{tail}"


def _unet_key(key: str, cfg: dict[str, Any]) -> str:
    per = int(cfg["layers_per_block"]) + 1  # an input block per layer plus the downsampler's
    for old, new in _UNET_FIXED.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"input_blocks.{per * b + j + 1}." + (f"0.{_resnet(rest)}" if kind == "resnets" else f"1.{rest}")
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{per * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"output_blocks.{per * b + j}." + (f"0.{_resnet(rest)}" if kind == "resnets" else f"1.{rest}")
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        b = int(m[1])
        has_attention = "CrossAttn" in cfg["up_block_types"][b]
        return f"output_blocks.{per * b + per - 1}.{2 if has_attention else 1}.conv.{m[2]}"
    raise ValueError(f"UNet key {key!r} has no place in the original SDXL layout")


def _vae_key(key: str, n_blocks: int) -> str:
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"decoder.up.{n_blocks - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
        return f"decoder.up.{n_blocks - 1 - int(m[1])}.upsample.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        return f"{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"
    return key  # conv_in, conv_out, norm_out, quant_conv, post_quant_conv keep their names


def _clip_g(state: dict[str, Any]) -> dict[str, Any]:
    """CLIPTextModelWithProjection -> OpenCLIP text tower keys (q, k, v joined into in_proj; projection transposed)."""
    import torch

    out: dict[str, Any] = {}
    fixed = {"text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.final_layer_norm.weight": "ln_final.weight",
             "text_model.final_layer_norm.bias": "ln_final.bias"}
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.+)", key):
            i, rest = m[1], m[2]
            if q := re.match(r"self_attn\.q_proj\.(weight|bias)", rest):
                parts = [state[f"text_model.encoder.layers.{i}.self_attn.{p}_proj.{q[1]}"] for p in "qkv"]
                out[f"transformer.resblocks.{i}.attn.in_proj_{q[1]}"] = torch.cat(parts, 0)
            elif not re.match(r"self_attn\.[kv]_proj\.", rest):
                for old, new in _CLIP_G_LAYER.items():
                    if rest.startswith(old + "."):
                        rest = new + rest[len(old):]
                        break
                out[f"transformer.resblocks.{i}.{rest}"] = value
        elif "position_ids" not in key:
            raise ValueError(f"text_encoder_2 key {key!r} has no place in the OpenCLIP layout")
    return out


def to_original_sdxl(pipe) -> dict[str, Any]:
    """A diffusers StableDiffusionXLPipeline's weights in the original single-file layout (one flat state dict)."""
    state: dict[str, Any] = {}
    for key, value in pipe.unet.state_dict().items():
        state[UNET + _unet_key(key, pipe.unet.config)] = value
    n_blocks = len(pipe.vae.config.block_out_channels)
    for key, value in pipe.vae.state_dict().items():
        new = _vae_key(key, n_blocks)
        if ".mid.attn_1." in new and value.ndim == 2:
            value = value[:, :, None, None]  # the original's 1x1 convolutions
        state[VAE + new] = value
    for key, value in pipe.text_encoder.state_dict().items():
        if "position_ids" not in key:
            state[CLIP_L + (key if key.startswith("text_model.") else "text_model." + key)] = value
    for key, value in _clip_g(pipe.text_encoder_2.state_dict()).items():
        state[CLIP_G + key] = value
    return {k: v.detach().contiguous() for k, v in state.items()}


def save_original_sdxl(pipe, path: str | Path) -> Path:
    """Write ``pipe`` as one original-layout ``.safetensors`` file and its configs as ``<path>.config/`` (everything
    but the weights: model_index.json, component configs, tokenizers, scheduler), so it loads offline."""
    from safetensors.torch import save

    from workbench.files import write_bytes_atomic

    path = Path(path)
    folder = Path(str(path) + CONFIG_SUFFIX)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    for weights in list(tmp.rglob("*.safetensors")):
        weights.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return write_bytes_atomic(path, save(to_original_sdxl(pipe)))
