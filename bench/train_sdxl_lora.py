"""SDXL LoRA training-step benchmark (issue #25): the full-size SDXL-architecture UNet (and VAE + text encoders for
uncached rows) with random weights, so every number has the real model's cost; one row per configuration.

    python bench/train_sdxl_lora.py --gpu --out /tmp/train                   # every row, CUDA (< 8 min on an H100/H200)
    python bench/train_sdxl_lora.py --gpu --rows eager-b1,fast-b1 --out /tmp/t
    python bench/train_sdxl_lora.py --gpu --out /tmp/train --write-measured workbench/train/measured.json
    python bench/train_sdxl_lora.py --cpu-smoke --out /tmp/train-smoke      # 2 rows, tiny model, CPU (< 60 s)
    python bench/train_sdxl_lora.py --pack-wheels .whl      # here, before a GPU call: the wheels the GPU machine lacks

Each row does what ``workbench.train.script`` does per optimizer step, with the same fast-path code
(``workbench.train.speed``): frozen base weights in bf16, LoRA on to_q/k/v/out (fp32 trainable weights) under
autocast, noise at random timesteps, MSE, backward, clip, optimizer step. "eager" rows are today's default step (the
loss read back with ``.item()`` every step, AdamW's default implementation); "fast" rows add regional torch.compile
of the UNet's transformer blocks (LoRA inside), fused AdamW, channels_last, and no host sync inside the step (loss
read back after the timed steps). "cached" rows read pre-computed latents and embeddings (only the UNet resident, as
the script does when augmentations allow); "uncached" rows run the VAE encoder and both text encoders each step.
The two preset rows read their settings from configs/sdxl_lora_12gb.yaml and configs/sdxl_lora_24gb.yaml
(accumulation included: their s/step is per optimizer step) and check their peak against the issue's limits.

Per row: s/step, samples/s, peak GPU memory (``max_memory_allocated`` after ``reset_peak_memory_stats`` once the
model is built: warm-up and compiling included; reserved beside it), TFLOP per optimizer step and MFU. FLOPs are
counted with ``torch.utils.flop_counter.FlopCounterMode`` over one optimizer step on a copy of the models on the
meta device (no memory, no time; matmuls, convolutions and attention, forward and backward; without checkpointing's
recomputation, so MFU counts model FLOPs, not recomputed ones); MFU = TFLOP/step / s/step / the GPU's dense bf16 peak
(PEAK_TFLOPS by device name, or --peak-tflops). JSON and a markdown table are rewritten after every row; a failing
row records its error; no row starts after --budget-s.

Light on purpose: imports torch, diffusers, transformers, peft (bitsandbytes for the 8-bit rows) and the light
``workbench.models.sdxl_arch`` / ``workbench.train.speed``, so it runs on a GPU machine without the app's
dependencies.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import torch
from gpu_info import driver_version

from workbench.train import speed

ROOT = Path(__file__).resolve().parents[1]
# Dense bf16 tensor-core peaks (TFLOP/s) from the vendor data sheets; the first name contained in the device name wins.
PEAK_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0),
               ("L4", 121.0), ("RTX 4090", 165.2)]
PRESETS = {"preset-12gb": ("configs/sdxl_lora_12gb.yaml", 11.5), "preset-24gb": ("configs/sdxl_lora_24gb.yaml", 23.0)}
DEFAULTS = dict(precision="bf16", gc=False, optimizer="adamw", cached=True, batch=1, resolution=1024, rank=16,
                accumulation=1, compile=False, compile_mode="default", fused=False, channels_last=False,
                sync_each_step=True)
FAST = dict(compile=True, fused=True, channels_last=True, sync_each_step=False)
# In priority order: with --budget-s, the rows most worth having run first.
ROWS: dict[str, dict] = {
    "eager-b1": {},
    "fast-b1": FAST,
    "fast-b4": {**FAST, "batch": 4},
    "eager-b4": {"batch": 4},
    "preset-24gb": {"preset": "preset-24gb"},
    "preset-12gb": {"preset": "preset-12gb"},
    "fast-b8": {**FAST, "batch": 8},
    "eager-b8": {"batch": 8},
    "fast-b2": {**FAST, "batch": 2},
    "eager-b2": {"batch": 2},
    "eager-gc-b1": {"gc": True},
    "fast-gc-b4": {**FAST, "gc": True, "batch": 4},
    "eager-adamw8-b1": {"optimizer": "adamw8"},
    "eager-uncached-b1": {"cached": False},
    "eager-512-b1": {"resolution": 512},
    "fast-512-b4": {**FAST, "resolution": 512, "batch": 4},
    "fast-cudagraphs-b1": {**FAST, "compile_mode": "reduce-overhead"},
}
SMOKE_ROWS = "eager-b1,fast-b1"


def preset_row(name: str) -> dict:
    """A preset config's settings as a row (the keys the training script reads)."""
    import yaml

    path, limit = PRESETS[name]
    cfg = yaml.safe_load((ROOT / path).read_text())
    cached = cfg.get("cache_latents", True) and not cfg.get("random_flip") and not cfg.get("train_text_encoder")
    fast = cfg.get("torch_compile", False)
    return dict(precision=cfg.get("mixed_precision", "no"), gc=bool(cfg.get("gradient_checkpointing")),
                optimizer="adamw8" if cfg.get("use_8bit_adam") else "adamw", cached=bool(cached),
                batch=int(cfg.get("train_batch_size", 1)), resolution=int(cfg.get("resolution", 1024)),
                rank=int(cfg.get("rank", 4)), accumulation=int(cfg.get("gradient_accumulation_steps", 1)),
                compile=bool(fast), compile_mode=cfg.get("compile_mode", "default"),
                fused=bool(cfg.get("use_fused_adam")), channels_last=bool(cfg.get("channels_last")),
                sync_each_step=int(cfg.get("logging_steps", 1)) == 1, config=path, limit_GiB=limit)


def row_spec(name: str) -> dict:
    spec = ROWS[name]
    return {**DEFAULTS, **(preset_row(spec["preset"]) if "preset" in spec else spec)}


def peak_tflops(device_name: str) -> tuple[float | None, str]:
    for key, value in PEAK_TFLOPS:
        if key in device_name:
            return value, f"{key} dense bf16 data-sheet peak"
    return None, f"no peak known for {device_name!r}: pass --peak-tflops"


# -- models ------------------------------------------------------------------------------------------------------

def build_models(spec: dict, device: str, smoke: bool, dtype) -> dict:
    """UNet (+ VAE and text encoders when uncached) with random weights on ``device``, the LoRA injected."""
    from peft import LoraConfig

    if smoke:
        from workbench.models import tiny

        pipe = tiny.build_tiny_sdxl(0)
        parts = {"unet": pipe.unet, "text_encoder": pipe.text_encoder, "text_encoder_2": pipe.text_encoder_2,
                 "vae": pipe.vae}
        parts = {k: v.to(device, dtype) for k, v in parts.items()}
    else:
        from workbench.models.sdxl_arch import build_parts, build_vae

        parts = build_parts(dtype, device=device)
        parts["vae"] = build_vae(dtype, device=device)
    if spec["cached"]:  # the script parks the encoders off the GPU once latents and embeddings are cached
        parts = {"unet": parts["unet"]}
    for m in parts.values():
        m.requires_grad_(False)
    unet = parts["unet"]
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=spec["rank"], lora_alpha=spec["rank"], init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    if spec["gc"]:
        unet.enable_gradient_checkpointing()
    unet.train()
    return parts


_FLOPS: dict[tuple, int] = {}


def count_step_flops(parts: dict, spec: dict, dtype) -> int:
    """FLOPs of one optimizer step, counted on meta-device copies of the models (see the module docstring). Counted
    once per (resolution, rank, cached) for one sample and one pass, then x batch x accumulation: every counted op
    (matmul, convolution, attention) is per sample, so the count is linear in both (checked: batch 2 counts exactly
    2x batch 1), and counting the full-size UNet on the meta device takes seconds to a minute of CPU."""
    key = (spec["resolution"], spec["rank"], spec["cached"], repr(dtype))
    if key not in _FLOPS:
        _FLOPS[key] = _count_one_sample(parts, {**spec, "batch": 1, "accumulation": 1}, dtype)
    return _FLOPS[key] * spec["batch"] * spec["accumulation"]


def _count_one_sample(parts: dict, spec: dict, dtype) -> int:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from peft import LoraConfig
    from torch.utils.flop_counter import FlopCounterMode

    batch, res = spec["batch"], spec["resolution"]
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(parts["unet"].config).to(dtype)
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=spec["rank"], lora_alpha=spec["rank"], init_lora_weights="gaussian",
                                    target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        extra = {}
        if not spec["cached"]:
            extra = {"vae": AutoencoderKL.from_config(parts["vae"].config).to(dtype),
                     "te1": type(parts["text_encoder"])(parts["text_encoder"].config).to(dtype),
                     "te2": type(parts["text_encoder_2"])(parts["text_encoder_2"].config).to(dtype)}
        inputs = step_inputs(unet.config, batch, res, "meta", dtype)
    with FlopCounterMode(display=False) as fc:
        for _ in range(spec["accumulation"]):
            if extra:
                with torch.no_grad():
                    extra["vae"].encode(torch.empty(batch, 3, res, res, device="meta", dtype=dtype))
                    ids = torch.zeros(batch, 77, dtype=torch.long, device="meta")
                    extra["te1"](ids, output_hidden_states=True)
                    extra["te2"](ids, output_hidden_states=True)
            pred = unet(inputs["latents"], inputs["t"], inputs["emb"], added_cond_kwargs=inputs["cond"],
                        return_dict=False)[0]
            pred.float().pow(2).mean().backward()
    return fc.get_total_flops()


def step_inputs(config, batch: int, res: int, device, dtype, generator=None) -> dict:
    side = res // 8
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    kw = dict(device=device, dtype=dtype)
    if str(device) == "meta":
        rand = lambda *shape: torch.empty(*shape, **kw)  # noqa: E731
    else:
        rand = lambda *shape: torch.randn(*shape, generator=generator, **kw)  # noqa: E731
    return {"latents": rand(batch, config.in_channels, side, side), "emb": rand(batch, 77, config.cross_attention_dim),
            "cond": {"text_embeds": rand(batch, pooled), "time_ids": time_ids(batch, res, device, dtype)},
            "t": torch.zeros(batch, dtype=torch.long, device=device)}


def time_ids(batch: int, res: int, device, dtype):
    """SDXL's size conditioning, copied to the device the way the script does (pinned, no host sync)."""
    ids = torch.tensor([[res, res, 0, 0, res, res]] * batch, dtype=dtype)
    return ids.to(device) if str(device) in ("meta", "cpu") else speed.to_device(ids, device)


# -- one row -----------------------------------------------------------------------------------------------------

def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_row(spec: dict, device: str, smoke: bool, backend: str, peak: float | None, warmup: int,
              samples: int) -> dict:
    from diffusers import DDPMScheduler

    cuda = device.startswith("cuda")
    dtype = torch.float32 if smoke or spec["precision"] == "no" else {"bf16": torch.bfloat16,
                                                                       "fp16": torch.float16}[spec["precision"]]
    t0 = time.perf_counter()
    parts = build_models(spec, device, smoke, dtype)
    unet = parts["unet"]
    params = [p for p in unet.parameters() if p.requires_grad]
    _sync(device)
    build_s = time.perf_counter() - t0
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # the peak below is training's: weights, LoRA, optimizer, activations
    notes = []
    if spec["optimizer"] == "adamw8":
        import bitsandbytes as bnb

        opt = bnb.optim.AdamW8bit(params, lr=1e-4)
    else:
        opt, note = speed.make_adamw([{"params": params}], spec["fused"], lr=1e-4)
        notes += [note] if note else []
    if spec["channels_last"]:
        speed.to_channels_last(unet)
    graphs = False
    if spec["compile"]:
        speed.compile_unet(unet, backend=backend, mode=spec["compile_mode"])
        graphs = speed.uses_cuda_graphs(spec["compile_mode"], device)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and spec["precision"] == "fp16")
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    batch, res = spec["batch"], spec["resolution"]
    g = torch.Generator(device).manual_seed(0)
    cfg = unet.config
    ids = torch.randint(0, 256, (batch, 77), device=device, generator=g)
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32)

    def micro_step():
        if spec["cached"]:
            x = step_inputs(cfg, batch, res, device, dtype, g)
            latents, emb, cond = x["latents"], x["emb"], x["cond"]
        else:
            with torch.no_grad():
                pixels = torch.rand(batch, 3, res, res, device=device, generator=g) * 2 - 1
                latents = parts["vae"].encode(pixels.to(dtype)).latent_dist.sample(g) * 0.13025
                o1 = parts["text_encoder"](ids, output_hidden_states=True)
                o2 = parts["text_encoder_2"](ids, output_hidden_states=True)
                emb = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
                cond = {"text_embeds": o2[0], "time_ids": time_ids(batch, res, device, dtype)}
        noise = torch.randn(latents.shape, device=device, dtype=dtype, generator=g)
        t = torch.randint(0, 1000, (batch,), device=device, generator=g)
        noisy = sched.add_noise(latents, noise, t)
        if spec["channels_last"]:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        with autocast:
            pred = unet(noisy, t, emb, added_cond_kwargs=cond, return_dict=False)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        scaler.scale(loss / spec["accumulation"]).backward()
        return loss.detach()

    def step():
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        losses = [micro_step() for _ in range(spec["accumulation"])]
        scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        loss = torch.stack(losses).mean()
        if spec["sync_each_step"]:
            loss.item()  # today's script reads the loss back every step (a host sync)
        return loss, norm

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warmup_s = time.perf_counter() - t0
    steps = max(2, math.ceil(samples / (batch * spec["accumulation"])))
    t0 = time.perf_counter()
    out = [step() for _ in range(steps)]
    _sync(device)
    s_per_step = (time.perf_counter() - t0) / steps
    last_loss = out[-1][0].item()
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    reserved_gib = torch.cuda.max_memory_reserved() / 2**30 if cuda else None
    flops = count_step_flops(parts, spec, torch.bfloat16 if not smoke else torch.float32)
    per_step_samples = batch * spec["accumulation"]
    row = {"mixed_precision": "no" if smoke else spec["precision"], "gradient_checkpointing": spec["gc"],
           "optimizer": spec["optimizer"], "cached": spec["cached"], "batch": batch, "resolution": res,
           "rank": spec["rank"], "gradient_accumulation_steps": spec["accumulation"], "compile": spec["compile"],
           "compile_mode": spec["compile_mode"] if spec["compile"] else None, "fused_adam": spec["fused"],
           "channels_last": spec["channels_last"], "sync_each_step": spec["sync_each_step"],
           "s_per_step": round(s_per_step, 4), "samples_per_s": round(per_step_samples / s_per_step, 3),
           "peak_GiB": None if peak_gib is None else round(peak_gib, 2),
           "reserved_GiB": None if reserved_gib is None else round(reserved_gib, 2),
           "step_TFLOP": float(f"{flops / 1e12:.4g}"),
           "mfu": round(flops / s_per_step / (peak * 1e12), 4) if peak else None,
           "warmup_s": round(warmup_s, 1), "build_s": round(build_s, 1), "timed_steps": steps,
           "loss": round(last_loss, 4), "notes": notes}
    if "limit_GiB" in spec:
        row.update(config=spec["config"], limit_GiB=spec["limit_GiB"],
                   fits=None if peak_gib is None else peak_gib < spec["limit_GiB"])
    if not math.isfinite(last_loss):
        row["notes"].append(f"loss {last_loss}: diverged")
    del parts, unet, opt, params, out
    return row


# -- the table -----------------------------------------------------------------------------------------------------

def run(rows: list[str], device: str, smoke: bool, backend: str, peak: float | None, peak_source: str,
        budget_s: float, warmup: int, samples: int, out: str | None) -> dict:
    started = time.perf_counter()
    cuda = device.startswith("cuda")
    res: dict = {"about": "bench/train_sdxl_lora.py" + (" --cpu-smoke: the tiny model on the CPU; its timings say "
                                                          "nothing about a GPU" if smoke else ": full-size SDXL "
                                                          "architecture, random weights"),
                 "device": torch.cuda.get_device_name(0) if cuda else
                 f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
                 "driver": driver_version() if cuda else None, "torch": torch.__version__,
                 "date": datetime.date.today().isoformat(), "peak_tflops": peak, "peak_source": peak_source,
                 "compile_backend": backend, "model": "tiny SDXL kit (64 px)" if smoke else "SDXL base 1.0 "
                 "architecture", "rows": {}}
    for name in rows:
        spec = row_spec(name)
        if smoke:
            spec.update(resolution=64, precision="no")
        if time.perf_counter() - started > budget_s:
            res["rows"][name] = {"skipped": f"time budget spent ({budget_s:.0f} s)"}
            continue
        try:
            res["rows"][name] = bench_row(spec, device, smoke, backend, peak, warmup, samples)
        except Exception as exc:  # one row failing (out of memory, a missing library) must not lose the others
            res["rows"][name] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
        finally:
            torch._dynamo.reset()
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
        print(name, json.dumps(res["rows"][name]), flush=True)
        res["total_s"] = round(time.perf_counter() - started, 1)
        if out:
            write(res, out)
    res["total_s"] = round(time.perf_counter() - started, 1)
    if out:
        write(res, out)
    return res



def markdown(res: dict) -> str:
    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    lines = [f"{res['model']}; {res['device']}" + (f", driver {res['driver']}" if res.get("driver") else "") +
             f", torch {res['torch']}, {res['date']}; compile backend {res['compile_backend']}; MFU against "
             f"{res['peak_tflops'] or 'n/a'} TFLOP/s ({res['peak_source']}); {res.get('total_s', 0):.0f} s in all.", "",
             "| row | batch × accum. | res. | checkp. | optimizer | inputs | path | s/step | samples/s | peak GiB "
             "(reserved) | TFLOP/step | MFU | warm-up s | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        if "s_per_step" not in r:
            lines.append(f"| {name} | | | | | | | | | | | | | {r.get('error') or r.get('skipped')} |")
            continue
        path = (f"compiled ({r['compile_mode']})" if r["compile"] else "eager") + \
            (", fused AdamW" if r["fused_adam"] else "") + (", channels_last" if r["channels_last"] else "") + \
            ("" if r["sync_each_step"] else ", no per-step sync")
        note = list(r.get("notes") or [])
        if "limit_GiB" in r:
            note.append(f"{r['config']}: limit {r['limit_GiB']} GiB, " +
                        {True: "fits", False: "OVER", None: "no GPU"}[r["fits"]])
        peak = "—" if r["peak_GiB"] is None else f"{r['peak_GiB']:.2f} ({r['reserved_GiB']:.2f})"
        lines.append(f"| {name} | {r['batch']} × {r['gradient_accumulation_steps']} | {r['resolution']} | "
                     f"{'on' if r['gradient_checkpointing'] else 'off'} | {r['optimizer']} | "
                     f"{'cached' if r['cached'] else 'VAE + TEs'} | {path} | {fmt(r['s_per_step'], '.3f')} | "
                     f"{fmt(r['samples_per_s'], '.2f')} | {peak} | {fmt(r['step_TFLOP'], '.4g')} | "
                     f"{fmt(r.get('mfu'), '.1%')} | {fmt(r['warmup_s'], '.1f')} | {'; '.join(note)} |")
    return "\n".join(lines) + "\n"


def write(res: dict, out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out + ".json").write_text(json.dumps(res, indent=1))
    Path(out + ".md").write_text(markdown(res))


ESTIMATE_KEYS = ("mixed_precision", "gradient_checkpointing", "optimizer", "cached", "batch", "resolution", "rank",
                 "gradient_accumulation_steps", "compile", "compile_mode", "fused_adam", "channels_last",
                 "s_per_step", "samples_per_s", "peak_GiB", "reserved_GiB", "step_TFLOP", "mfu")


def write_measured(res: dict, path: str) -> dict:
    """The table the Training page's estimate reads (workbench/train/estimate.py): the measured rows only (errors and
    skipped rows left out), the file's CPU demo row kept."""
    target = Path(path)
    source = target if target.is_file() else ROOT / "workbench" / "train" / "measured.json"
    old = json.loads(source.read_text()) if source.is_file() else {}
    table = {"about": "bench/train_sdxl_lora.py on a GPU: full-size SDXL-architecture UNet with random weights (real "
                      "cost), LoRA on to_q/k/v/out; s_per_step per optimizer step (accumulation included), peak_GiB "
                      "= max_memory_allocated after the model build (exact). See docs/PERFORMANCE.md.",
             **{k: res[k] for k in ("device", "driver", "torch", "date", "peak_tflops")},
             "rows": {name: {k: r[k] for k in ESTIMATE_KEYS}
                      for name, r in res["rows"].items() if "s_per_step" in r}}
    if "cpu_demo" in old:
        table["cpu_demo"] = old["cpu_demo"]
    target.write_text(json.dumps(table, indent=1) + "\n")
    return table


GPU_WHEELS = ("diffusers==0.42.1", "bitsandbytes==0.50.2")  # what the GPU image lacks (docs/NOTES)


def pack_wheels(folder: str, cudas: tuple[str, ...] = ("130", "132")) -> list[Path]:
    """Download the wheels the GPU machine lacks (Python 3.12) into ``folder`` and trim bitsandbytes' wheel to the CPU
    library and those for CUDA 13.x (torch 2.11 there is built for CUDA 13): 43 MB -> ~6 MB, so both fit beside the
    working tree in one call's 64 MiB."""
    import zipfile

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python", "-m", "pip", "download", "--python-version", "3.12", "--only-binary=:all:", "--no-deps",
                    "-d", str(out), *GPU_WHEELS], check=True)
    for wheel in out.glob("bitsandbytes-*.whl"):
        keep = ("libbitsandbytes_cpu.so", *(f"libbitsandbytes_cuda{c}.so" for c in cudas))
        trimmed = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                name = item.filename
                if name.endswith(".so") and not name.endswith(keep):
                    continue
                data = src.read(item)
                if name.endswith(".dist-info/RECORD"):  # drop the removed libraries' lines
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if not (b".so," in line and not any(k.encode() + b"," in line for k in keep)))
                dst.writestr(item, data)
        trimmed.replace(wheel)
    return sorted(out.glob("*.whl"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--gpu", action="store_true", help="full-size SDXL on CUDA")
    mode.add_argument("--pack-wheels", metavar="DIR", help="download (and trim) the wheels the GPU machine lacks")
    mode.add_argument("--cpu-smoke", action="store_true", help=f"rows {SMOKE_ROWS} on the tiny model on the CPU")
    ap.add_argument("--rows", help="comma-separated subset of: " + ", ".join(ROWS))
    ap.add_argument("--compile-backend", help="default inductor (eager with --cpu-smoke: inductor's C++ build and "
                                              "aot_eager take minutes on 2 cores)")
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: PEAK_TFLOPS by name)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no row after this many seconds")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per row (compiling, CUDA-graph recording)")
    ap.add_argument("--samples", type=int, default=8, help="timed samples per row (at least 2 steps)")
    ap.add_argument("--out", help="write OUT.json and OUT.md (rewritten after every row)")
    ap.add_argument("--write-measured", help="also write the estimate's table (workbench/train/measured.json)")
    args = ap.parse_args(argv)
    if args.pack_wheels:
        wheels = pack_wheels(args.pack_wheels)
        print("\n".join(f"{w} {w.stat().st_size / 2**20:.1f} MiB" for w in wheels))
        return {"wheels": [str(w) for w in wheels]}
    rows = [r for r in (args.rows or (SMOKE_ROWS if args.cpu_smoke else ",".join(ROWS))).split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    if args.gpu and not torch.cuda.is_available():
        ap.error("--gpu needs CUDA; use --cpu-smoke to check the script on the CPU")
    if args.write_measured and args.cpu_smoke:
        ap.error("--write-measured takes GPU rows only: tiny-model CPU timings are not the estimate's table")
    device = "cuda" if args.gpu else "cpu"
    if args.peak_tflops:
        peak, source = args.peak_tflops, "--peak-tflops"
    elif args.gpu:
        peak, source = peak_tflops(torch.cuda.get_device_name(0))
    else:
        peak, source = None, "CPU: no MFU"
    res = run(rows, device, args.cpu_smoke, args.compile_backend or ("eager" if args.cpu_smoke else "inductor"),
              peak, source, args.budget_s, warmup=1 if args.cpu_smoke else args.warmup,
              samples=2 if args.cpu_smoke else args.samples, out=args.out)
    if args.write_measured:
        write_measured(res, args.write_measured)
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
