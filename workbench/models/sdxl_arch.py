"""Full-size SDXL base 1.0 architecture built from config, with random weights: the real compute and memory cost,
no download. For GPU benchmarks (``bench/generate_sdxl.py``, ``bench/train_sdxl_lora.py``) and size estimates.

Light on purpose: it imports only torch, diffusers and transformers, so the benches run on a GPU machine that has
none of the workbench's app dependencies (pydantic, SQLAlchemy, ...).

    parts = build_parts(torch.bfloat16, device="cuda")     # {"unet", "text_encoder", "text_encoder_2"}
    vae = build_vae(torch.bfloat16, device="cuda")
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import torch

# The configs of stabilityai/stable-diffusion-xl-base-1.0 (UNet 2.567 B parameters, CLIP ViT-L/14 and
# OpenCLIP ViT-bigG/14 text encoders, the 4-level VAE).
UNET = dict(sample_size=128, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
            cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)
TE1 = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
           max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
TE2 = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
           max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, sample_size=1024,
           scaling_factor=0.13025)
LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # the diffusers scripts' UNet LoRA targets


def build_parts(dtype=torch.float16, device: str | torch.device = "cpu") -> dict[str, torch.nn.Module]:
    """UNet and both text encoders, seeded random weights, created directly on ``device`` (fast on a GPU)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    with torch.device(device), default_dtype(dtype):  # created in `dtype`: no fp32 copy ever exists
        parts = {"unet": UNet2DConditionModel(**UNET), "text_encoder": CLIPTextModel(CLIPTextConfig(**TE1)),
                 "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**TE2))}
    return {k: v.to(dtype).eval() for k, v in parts.items()}


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_vae(dtype=torch.float16, device: str | torch.device = "cpu"):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    with torch.device(device), default_dtype(dtype):
        vae = AutoencoderKL(**VAE)
    return vae.to(dtype).eval()


def bench_tokenizer(pad_token: str = "<|endoftext|>"):
    """A CLIPTokenizer over single printable characters (77-token limit): prompts tokenize offline. Only the token
    count matters to a benchmark; the weights are random anyway."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77,
                             pad_token=pad_token)


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's state dict (quantized tensors count their int8/fp8 data and scales)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())
