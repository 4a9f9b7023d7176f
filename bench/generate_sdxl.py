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

from workbench.models.sdxl_arch import LORA_TARGETS, bench_tokenizer, build_parts, build_vae, module_bytes

MODES = ("fp16", "bf16", "int8", "int8+lora", "fp8", "bnb8", "fp16+compile")


def cpu_bytes() -> dict:
    from optimum.quanto import freeze, qint8, quantize

    out = {}
    for name, module in build_parts().items():
        params = sum(p.numel() for p in module.parameters())
        fp16 = module_bytes(module)
        t = time.perf_counter()
        quantize(module, weights=qint8)
        freeze(module)
        out[name] = {"params": params, "fp16_bytes": fp16, "int8_bytes": module_bytes(module),
                     "quantize_s": round(time.perf_counter() - t, 1)}
        del module
        gc.collect()
    total16 = sum(v["fp16_bytes"] for v in out.values())
    total8 = sum(v["int8_bytes"] for v in out.values())
    out["total"] = {"fp16_GiB": round(total16 / 2**30, 3), "int8_GiB": round(total8 / 2**30, 3),
                    "ratio": round(total8 / total16, 3)}
    return out


def count_flops(pipe, steps: int, guidance: float) -> dict:
    """FLOPs of one image, counted with torch.utils.flop_counter: the UNet call once (x steps), the VAE decode."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2 if guidance > 1 else 1
    latents = torch.randn(batch, 4, 128, 128, device="cuda", dtype=pipe.unet.dtype)
    emb = torch.randn(batch, 77, 2048, device="cuda", dtype=pipe.unet.dtype)
    cond = {"text_embeds": torch.randn(batch, 1280, device="cuda", dtype=pipe.unet.dtype),
            "time_ids": torch.tensor([[1024, 1024, 0, 0, 1024, 1024]] * batch, device="cuda", dtype=pipe.unet.dtype)}
    with torch.no_grad():
        with FlopCounterMode(display=False) as unet_fc:
            pipe.unet(latents, torch.tensor([500] * batch, device="cuda"), emb, added_cond_kwargs=cond)
        with FlopCounterMode(display=False) as vae_fc:
            pipe.vae.decode(latents[:1].to(pipe.vae.dtype))
    unet_flops, vae_flops = unet_fc.get_total_flops(), vae_fc.get_total_flops()
    return {"unet_call_TFLOP": round(unet_flops / 1e12, 2), "vae_decode_TFLOP": round(vae_flops / 1e12, 2),
            "image_TFLOP": round((steps * unet_flops + vae_flops) / 1e12, 1)}


def gpu(steps: int, modes: tuple[str, ...] = MODES, peak_tflops: float = 790.0) -> dict:
    """s/image and peak memory per mode on CUDA at 1024x1024, guidance 5 (two UNet passes per step), batch 1."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from optimum.quanto import freeze, qfloat8, qint8, quantize
    from peft import LoraConfig

    assert torch.cuda.is_available(), "--gpu needs CUDA"
    results: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "steps": steps,
                     "size": 1024, "guidance": 5.0, "batch": 1, "modes": {}}
    for mode in modes:
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
        parts = build_parts(dtype, device="cuda")
        if mode == "int8+lora":  # a rank-16 LoRA (random, non-zero) fused into the UNet before quantizing
            parts["unet"].add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                                 target_modules=LORA_TARGETS))
            parts["unet"].fuse_lora(lora_scale=1.0)
            parts["unet"].unload_lora()
        pipe = StableDiffusionXLPipeline(vae=build_vae(dtype, device="cuda"), tokenizer=bench_tokenizer(),
                                         tokenizer_2=bench_tokenizer("!"), scheduler=EulerDiscreteScheduler(),
                                         **parts)
        if mode.startswith(("int8", "fp8")):
            for name in ("unet", "text_encoder", "text_encoder_2"):
                quantize(getattr(pipe, name), weights=qint8 if mode.startswith("int8") else qfloat8)
                freeze(getattr(pipe, name))
        elif mode == "bnb8":
            from workbench.generate.bnb8 import swap_linear_to_bnb8

            for name in ("unet", "text_encoder", "text_encoder_2"):
                swap_linear_to_bnb8(getattr(pipe, name))
        pipe.to("cuda")
        gc.collect()
        torch.cuda.empty_cache()
        if mode == "fp16":
            results["flops"] = count_flops(pipe, steps, 5.0)
        weights = sum(module_bytes(getattr(pipe, n)) for n in ("unet", "text_encoder", "text_encoder_2", "vae"))
        if mode.endswith("compile"):
            pipe.unet = torch.compile(pipe.unet)
        pipe.set_progress_bar_config(disable=True)
        kw = dict(height=1024, width=1024, guidance_scale=5.0)
        pipe("warm-up", num_inference_steps=3 if mode.endswith("compile") else 2, **kw)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(2):
            t = time.perf_counter()
            pipe("a jacket on white", num_inference_steps=steps, **kw)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        results["modes"][mode] = {"s_per_image": round(min(times), 3), "peak_GiB": round(
            torch.cuda.max_memory_allocated() / 2**30, 2), "weights_GiB": round(weights / 2**30, 2)}
        print(mode, results["modes"][mode], flush=True)
        del pipe, parts
        gc.collect()
        torch.cuda.empty_cache()
    base = results["modes"].get("fp16")
    if base and "flops" in results:
        floor = results["flops"]["image_TFLOP"] / peak_tflops
        for mode, row in results["modes"].items():
            row["vs_fp16_time"] = round(row["s_per_image"] / base["s_per_image"], 2)
            row["vs_fp16_peak_mem"] = round(row["peak_GiB"] / base["peak_GiB"], 2)
            row["bf16_peak_fraction"] = round(floor / row["s_per_image"], 3)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-bytes", action="store_true")
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()
    if args.cpu_bytes:
        print(json.dumps(cpu_bytes(), indent=2))
    if args.gpu:
        res = gpu(args.steps, tuple(args.modes.split(",")))
        print(json.dumps(res, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
