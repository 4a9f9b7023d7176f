"""SDXL generation benchmark with the full-size architecture and random weights (real cost, no download).

    python bench/generate_sdxl.py --cpu-bytes          # anywhere: bytes of the UNet + text encoders, fp16 vs INT8
    python bench/generate_sdxl.py --gpu [--steps 30]   # CUDA: s/image and peak memory per mode at 1024x1024

The configs are SDXL base 1.0's (UNet 2.567 B parameters, CLIP ViT-L and OpenCLIP ViT-bigG text encoders). Random
weights give the real compute and memory cost, not real images. Results go to docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import time

import torch

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


def _bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def build_parts(dtype=torch.float16):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    parts = {"unet": UNet2DConditionModel(**UNET), "text_encoder": CLIPTextModel(CLIPTextConfig(**TE1)),
             "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**TE2))}
    return {k: v.to(dtype).eval() for k, v in parts.items()}


def cpu_bytes() -> dict:
    from optimum.quanto import freeze, qint8, quantize

    out = {}
    for name, module in build_parts().items():
        params = sum(p.numel() for p in module.parameters())
        fp16 = _bytes(module)
        t = time.perf_counter()
        quantize(module, weights=qint8)
        freeze(module)
        out[name] = {"params": params, "fp16_bytes": fp16, "int8_bytes": _bytes(module),
                     "quantize_s": round(time.perf_counter() - t, 1)}
        del module
        gc.collect()
    total16 = sum(v["fp16_bytes"] for v in out.values())
    total8 = sum(v["int8_bytes"] for v in out.values())
    out["total"] = {"fp16_GiB": round(total16 / 2**30, 3), "int8_GiB": round(total8 / 2**30, 3),
                    "ratio": round(total8 / total16, 3)}
    return out


def gpu(steps: int) -> dict:
    """s/image and peak memory per mode on CUDA (fp16, bf16, int8, fp8, fp16 + torch.compile)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline
    from optimum.quanto import freeze, qfloat8, qint8, quantize

    from workbench.models.tiny import tiny_clip_tokenizer

    assert torch.cuda.is_available(), "--gpu needs CUDA"
    results = {}
    for mode in ("fp16", "bf16", "int8", "fp8", "fp16+compile"):
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        parts = build_parts(dtype)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                            sample_size=1024).to(dtype)
        pipe = StableDiffusionXLPipeline(vae=vae, tokenizer=tiny_clip_tokenizer(), tokenizer_2=tiny_clip_tokenizer("!"),
                                         scheduler=EulerDiscreteScheduler(), **parts)
        if mode in ("int8", "fp8"):
            for name in ("unet", "text_encoder", "text_encoder_2"):
                quantize(getattr(pipe, name), weights=qint8 if mode == "int8" else qfloat8)
                freeze(getattr(pipe, name))
        pipe.to("cuda")
        if mode.endswith("compile"):
            pipe.unet = torch.compile(pipe.unet)
        pipe.set_progress_bar_config(disable=True)
        pipe("warm-up", num_inference_steps=2, height=1024, width=1024)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        pipe("a jacket", num_inference_steps=steps, height=1024, width=1024)
        torch.cuda.synchronize()
        results[mode] = {"s_per_image": round(time.perf_counter() - t, 3),
                         "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
        print(mode, results[mode], flush=True)
        del pipe, parts
        gc.collect()
        torch.cuda.empty_cache()
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-bytes", action="store_true")
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    if args.cpu_bytes:
        print(json.dumps(cpu_bytes(), indent=2))
    if args.gpu:
        print(json.dumps(gpu(args.steps), indent=2))
