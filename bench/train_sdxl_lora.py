"""SDXL LoRA training-step benchmark: full-size SDXL-architecture UNet (and text encoders, VAE where the config needs
them) with random weights, so every number has the real model's cost. CUDA only.

    python bench/train_sdxl_lora.py --out train.json            # the whole table (about 3 minutes on an H100)
    python bench/train_sdxl_lora.py --only bf16-gc-adamw8        # one row

Each row does what workbench.train.script does per optimizer step: frozen base weights in the mixed-precision dtype,
LoRA (rank 16 on to_q/k/v/out, fp32 trainable weights) under autocast, noise at random timesteps, MSE, backward,
clip, optimizer step. "cached" rows read pre-computed latents and text embeddings (the script caches them when
augmentations allow: only the UNet is resident); "uncached" rows encode a 1024x1024 image with the VAE and the
prompt with both text encoders every step. The measured table feeds workbench/train/estimate.py via
workbench/train/measured.json and is printed in docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import time

import torch

from workbench.models.sdxl_arch import LORA_TARGETS, build_parts, build_vae

# name: (mixed_precision, gradient_checkpointing, optimizer, cached, batch, resolution)
ROWS = {
    "bf16-adamw": ("bf16", False, "adamw", True, 1, 1024),
    "bf16-gc-adamw": ("bf16", True, "adamw", True, 1, 1024),
    "bf16-adamw8": ("bf16", False, "adamw8", True, 1, 1024),
    "bf16-gc-adamw8": ("bf16", True, "adamw8", True, 1, 1024),
    "fp16-adamw": ("fp16", False, "adamw", True, 1, 1024),
    "fp16-gc-adamw": ("fp16", True, "adamw", True, 1, 1024),
    "bf16-adamw-uncached": ("bf16", False, "adamw", False, 1, 1024),
    "bf16-gc-adamw-b2": ("bf16", True, "adamw", True, 2, 1024),
    "bf16-adamw-b2": ("bf16", False, "adamw", True, 2, 1024),
    "bf16-gc-adamw-512": ("bf16", True, "adamw", True, 1, 512),
    "bf16-adamw-b4": ("bf16", False, "adamw", True, 4, 1024),
    "bf16-gc-adamw-b4": ("bf16", True, "adamw", True, 4, 1024),
}


def bench_row(name: str, rank: int = 16, warmup: int = 3, steps: int = 8, peak_tflops: float = 790.0) -> dict:
    from diffusers import DDPMScheduler
    from peft import LoraConfig
    from torch.utils.flop_counter import FlopCounterMode

    precision, gc_on, optim, cached, batch, res = ROWS[name]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    gc.collect()
    torch.cuda.empty_cache()
    parts = build_parts(dtype, device="cuda")
    unet = parts["unet"]
    te1, te2 = parts["text_encoder"], parts["text_encoder_2"]
    vae = None
    if cached:  # the script moves the encoders off the GPU once embeddings and latents are cached
        del parts["text_encoder"], parts["text_encoder_2"], te1, te2
        te1 = te2 = None
    else:
        vae = build_vae(torch.float32 if precision == "fp16" else dtype, device="cuda")
    for m in parts.values():
        m.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    if gc_on:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()  # the peak below is training's: weights, LoRA, optimizer, activations
    if optim == "adamw8":
        import bitsandbytes as bnb

        opt = bnb.optim.AdamW8bit(params, lr=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    lat = res // 8
    g = torch.Generator("cuda").manual_seed(0)
    ids = torch.randint(0, 49408, (batch, 77), device="cuda", generator=g)

    def step() -> float:
        if cached:
            latents = torch.randn(batch, 4, lat, lat, device="cuda", dtype=dtype, generator=g)
            emb = torch.randn(batch, 77, 2048, device="cuda", dtype=dtype, generator=g)
            pooled = torch.randn(batch, 1280, device="cuda", dtype=dtype, generator=g)
        else:
            with torch.no_grad():
                pixels = torch.rand(batch, 3, res, res, device="cuda", generator=g) * 2 - 1
                latents = vae.encode(pixels.to(vae.dtype)).latent_dist.sample(g).to(dtype) * 0.13025
                o1 = te1(ids, output_hidden_states=True)
                o2 = te2(ids, output_hidden_states=True)
                emb = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
                pooled = o2[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (batch,), device="cuda", generator=g)
        noisy = sched.add_noise(latents, noise, t)
        time_ids = torch.tensor([[res, res, 0, 0, res, res]] * batch, device="cuda", dtype=dtype)
        with torch.autocast("cuda", dtype=dtype):
            pred = unet(noisy, t, emb, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    s_per_step = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    out = {"mixed_precision": precision, "gradient_checkpointing": gc_on, "optimizer": optim, "cached": cached,
           "batch": batch, "resolution": res, "rank": rank, "s_per_step": round(s_per_step, 4),
           "peak_GiB": round(peak, 2), "step_TFLOP": round(flops / 1e12, 2),
           "mfu": round(flops / s_per_step / (peak_tflops * 1e12), 3)}
    del unet, parts, opt, params, vae, te1, te2
    gc.collect()
    torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated row names: " + ", ".join(ROWS))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--peak-tflops", type=float, default=790.0, help="the GPU's dense bf16 peak (H100/H200 ~790)")
    ap.add_argument("--out")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs CUDA"
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "gpu_total_GiB": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
              "date": time.strftime("%Y-%m-%d"), "peak_tflops": args.peak_tflops, "rows": {}}
    for name in (args.only.split(",") if args.only else ROWS):
        try:
            result["rows"][name] = bench_row(name, steps=args.steps, peak_tflops=args.peak_tflops)
        except torch.OutOfMemoryError as exc:
            result["rows"][name] = {"error": f"out of memory: {str(exc)[:200]}"}
            gc.collect()
            torch.cuda.empty_cache()
        print(name, json.dumps(result["rows"][name]), flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
