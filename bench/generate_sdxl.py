"""SDXL generation benchmark: the full-size SDXL architecture with random weights (real cost, no download), one row
per speed configuration, at 1024x1024, 30 steps, guidance 5 (two UNet passes per step), batch 1 and batch 4.

    python bench/generate_sdxl.py --cpu-bytes                    # anywhere: bytes of UNet + text encoders, fp16 vs INT8
    python bench/generate_sdxl.py --gpu --out /tmp/gen           # CUDA: every row -> /tmp/gen.json + /tmp/gen.md
    python bench/generate_sdxl.py --gpu --rows bf16,bf16+compile --batches 1
    python bench/generate_sdxl.py --cpu-smoke                    # every row on the tiny model on the CPU (< 2 min)

Per row and batch size: s/image, images/s, peak GPU memory (allocated; the peak is reset after the model build and
again before each batch size, so a batch-1 peak includes the warm-up and any compile), weights in memory, and MFU:
the FLOPs of one image (counted with torch.utils.flop_counter on this model: text encoders + steps x the guided UNet
call + VAE decode) over s/image, against the GPU's bf16 dense peak (``--peak-tflops``; ~790 TFLOP/s measured on
the H100 and H200 here, NOTES.md). The speed options are applied by ``workbench.generate.speed``, the code the app
uses. Each row is built, warmed up (2 steps; compiling happens there: ``warmup_s``), timed once per batch size and
freed; a row that fails records its error and the bench goes on. JSON and markdown are rewritten after every row, so a
run cut short keeps what it measured; ``--budget-s`` skips what would start after that many seconds.

``--cpu-smoke`` runs every row on the tiny SDXL kit at 64 px, 2 steps, on the CPU, to check the script end to end:
fp16 rows run in fp32 there (the CPU lacks fp16 kernels) and compile rows use the ``aot_eager`` backend (inductor's
C++ build takes minutes on 2 cores). Its timings say nothing about a GPU.

Light imports (torch, diffusers, transformers, and optimum-quanto / bitsandbytes / torchao for their rows): it runs on
a GPU machine that has none of the app's dependencies (docs/PERFORMANCE.md says how).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import time
from pathlib import Path

import torch
from gpu_info import driver_version

from workbench.generate import speed
from workbench.models.sdxl_arch import LORA_TARGETS, bench_tokenizer, build_parts, build_vae, module_bytes

QUANTIZED_PARTS = ("unet", "text_encoder", "text_encoder_2")
# name -> settings (PipelineSpec field names; "lora": a random rank-16 LoRA fused before quantizing)
ROWS: dict[str, dict] = {
    "fp16": dict(dtype="fp16"),
    "bf16": dict(dtype="bf16"),
    "bf16+compile": dict(dtype="bf16", compile="regional", channels_last=True),
    "bf16+compile+fused-qkv": dict(dtype="bf16", compile="regional", channels_last=True, fuse_qkv=True),
    "int8-quanto": dict(dtype="bf16", quantization="int8"),
    "int8-quanto+fused-lora": dict(dtype="bf16", quantization="int8", lora=True),
    "int8-quanto+compile": dict(dtype="bf16", quantization="int8", compile="regional", channels_last=True),
    "fp8-quanto": dict(dtype="bf16", quantization="fp8"),
    "int8-dynamic-torchao": dict(dtype="bf16", quantization="torchao-int8-dynamic", fuse_qkv=True),
    "int8-dynamic-torchao+compile": dict(dtype="bf16", quantization="torchao-int8-dynamic", fuse_qkv=True,
                                         compile="regional", channels_last=True),
    "bnb8": dict(dtype="bf16", quantization="bnb8"),
}
DEFAULTS = dict(dtype="bf16", quantization="none", compile="off", fuse_qkv=False, channels_last=False, lora=False,
                attention="sdpa", vae_dtype="auto")
PROMPT = "a navy jacket on a white background, studio light"


# -- anywhere: bytes ------------------------------------------------------------------------------------------------

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


# -- building a row -------------------------------------------------------------------------------------------------

def _dtype(row: dict, smoke: bool) -> torch.dtype:
    name = "fp32" if smoke and row["dtype"] == "fp16" else row["dtype"]
    return speed.torch_dtype(name)


def _parts(dtype: torch.dtype, device: str, smoke: bool) -> dict:
    if smoke:
        from workbench.models.tiny import build_tiny_sdxl

        pipe = build_tiny_sdxl(seed=0).to(dtype)
        return {name: getattr(pipe, name) for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer",
                                                        "tokenizer_2")}
    parts = build_parts(dtype, device=device)
    return {**parts, "vae": build_vae(dtype, device=device), "tokenizer": bench_tokenizer(),
            "tokenizer_2": bench_tokenizer("!")}


def build_row(row: dict, device: str, smoke: bool, backend: str, compile_mode: str | None, notes: list[str]):
    """The pipeline of one row, in build_pipeline's order: attention, LoRA fused, fused QKV, quanto/bnb, placement,
    torchao, channels_last, VAE precision, compile."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    dtype = _dtype(row, smoke)
    parts = _parts(dtype, device, smoke)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(scheduler=scheduler, **parts)
    pipe.set_progress_bar_config(disable=True)
    speed.set_attention(pipe, row["attention"])
    if row["lora"]:  # a rank-16 LoRA with non-zero weights, fused into the UNet before quantizing
        from peft import LoraConfig

        pipe.unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                         target_modules=LORA_TARGETS))
        with torch.no_grad():
            for name, p in pipe.unet.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.01)
        pipe.unet.fuse_lora(lora_scale=1.0)
        pipe.unet.unload_lora()
        notes.append("rank-16 LoRA fused before quantizing")
    if row["fuse_qkv"]:
        speed.fuse_qkv(pipe)
    quant = row["quantization"]
    if quant in ("int8", "fp8"):
        from optimum.quanto import freeze, qfloat8, qint8, quantize

        for name in QUANTIZED_PARTS:
            quantize(getattr(pipe, name), weights=qint8 if quant == "int8" else qfloat8)
            freeze(getattr(pipe, name))
    elif quant == "bnb8":  # bitsandbytes quantizes on the move to the GPU: swap on the CPU first
        from workbench.generate.bnb8 import swap_linear_to_bnb8

        for name in QUANTIZED_PARTS:
            module = getattr(pipe, name).to("cpu")
            swap_linear_to_bnb8(module, dtype=dtype)
    pipe.to(device)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        getattr(pipe, name).requires_grad_(False).eval()
    if quant in speed.TORCHAO_MODES:
        speed.torchao_quantize(pipe, quant)
    if row["channels_last"]:
        speed.to_channels_last(pipe)
    note = speed.set_vae_dtype(pipe, row["vae_dtype"], "fp32" if dtype == torch.float32 else row["dtype"])
    if note:
        notes.append(note)
    if row["compile"] != "off":
        speed.compile_unet(pipe.unet, row["compile"], backend=backend, mode=compile_mode)
    return pipe


# -- measuring ------------------------------------------------------------------------------------------------------

def count_flops(pipe, size: int, steps: int, guidance: float) -> dict:
    """FLOPs of one image: both text encoders once, the UNet call (with guidance: batch 2) x steps, the VAE decode."""
    from torch.utils.flop_counter import FlopCounterMode

    device, dtype = pipe.unet.device, pipe.unet.dtype
    batch = 2 if guidance > 1 else 1
    lat = size // 8
    cfg = pipe.unet.config
    latents = torch.randn(batch, cfg.in_channels, lat, lat, device=device, dtype=dtype)
    emb = torch.randn(batch, 77, cfg.cross_attention_dim, device=device, dtype=dtype)
    pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    cond = {"text_embeds": torch.randn(batch, pooled, device=device, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch, device=device, dtype=dtype)}
    ids = torch.zeros(batch, 77, dtype=torch.long, device=device)
    with torch.no_grad():
        with FlopCounterMode(display=False) as text_fc:
            pipe.text_encoder(ids, output_hidden_states=True)
            pipe.text_encoder_2(ids, output_hidden_states=True)
        with FlopCounterMode(display=False) as unet_fc:
            pipe.unet(latents, torch.tensor([500] * batch, device=device), emb, added_cond_kwargs=cond)
        with FlopCounterMode(display=False) as vae_fc:
            pipe.vae.decode(latents[:1].to(pipe.vae.dtype))
    text, unet, vae = text_fc.get_total_flops(), unet_fc.get_total_flops(), vae_fc.get_total_flops()
    return {"text_encoders_TFLOP": text / 1e12, "unet_call_TFLOP": unet / 1e12, "vae_decode_TFLOP": vae / 1e12,
            "image_TFLOP": (text + steps * unet + vae) / 1e12, "steps": steps, "size": size,
            "guidance_batch": batch}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def measure(pipe, batch: int, size: int, steps: int, guidance: float, device: str, repeats: int,
            warmup_steps: int = 2) -> dict:
    kw = dict(height=size, width=size, guidance_scale=guidance, num_images_per_prompt=batch, output_type="np")
    _reset_peak(device)
    t = time.perf_counter()
    pipe(PROMPT, num_inference_steps=warmup_steps, generator=torch.Generator().manual_seed(0), **kw)  # compiles
    _sync(device)
    warm = time.perf_counter() - t
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        pipe(PROMPT, num_inference_steps=steps, generator=torch.Generator().manual_seed(i), **kw)
        _sync(device)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {"batch": batch, "s_per_image": round(best / batch, 4), "images_per_s": round(batch / best, 3),
            "peak_GiB": _peak_gib(device), "warmup_s": round(warm, 2), "times_s": [round(x, 3) for x in times]}


def run(rows: list[str], batches: list[int], size: int, steps: int, guidance: float, device: str, smoke: bool,
        backend: str, compile_mode: str | None, peak_tflops: float | None, budget_s: float, repeats: int,
        out: str | None) -> dict:
    started = time.perf_counter()
    res: dict = {"about": "bench/generate_sdxl.py" + (" --cpu-smoke: tiny model on the CPU; timings say nothing "
                                                       "about a GPU" if smoke else ": full-size SDXL architecture, "
                                                       "random weights"),
                 "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else
                 f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
                 "torch": torch.__version__, "date": datetime.date.today().isoformat(), "peak_tflops": peak_tflops,
                 "size": size, "steps": steps, "guidance": guidance, "compile_backend": backend,
                 "compile_mode": compile_mode or "default", "model": "tiny SDXL kit" if smoke else "SDXL base 1.0 "
                 "architecture", "rows": {}}
    if device.startswith("cuda"):
        res["driver"] = driver_version()
    for name in rows:
        row = {**DEFAULTS, **ROWS[name]}
        if smoke and row["dtype"] == "fp16":
            row_note = ["fp16 runs as fp32 on the CPU"]
        else:
            row_note = []
        settings = {k: row[k] for k in ("dtype", "quantization", "fuse_qkv", "channels_last", "lora")}
        settings["compile"] = row["compile"] != "off"
        if time.perf_counter() - started > budget_s:
            for b in batches:
                res["rows"][f"{name}@b{b}"] = {**settings, "batch": b, "skipped": "time budget spent"}
            continue
        pipe = None
        try:
            t = time.perf_counter()
            pipe = build_row(row, device, smoke, backend, compile_mode, row_note)
            _sync(device)
            build_s = round(time.perf_counter() - t, 2)
            _free(device)
            weights = sum(module_bytes(getattr(pipe, n)) for n in ("unet", "text_encoder", "text_encoder_2", "vae"))
            if "flops" not in res and row["quantization"] == "none":
                res["flops"] = count_flops(pipe, size, steps, guidance)
            for b in batches:
                key = f"{name}@b{b}"
                if time.perf_counter() - started > budget_s:
                    res["rows"][key] = {**settings, "batch": b, "skipped": "time budget spent"}
                    continue
                m = measure(pipe, b, size, steps, guidance, device, repeats, warmup_steps=1 if smoke else 2)
                res["rows"][key] = {**settings, **m, "weights_GiB": round(weights / 2**30, 3), "build_s": build_s,
                                    "notes": row_note}
                print(key, json.dumps(res["rows"][key]), flush=True)
        except Exception as exc:  # one row failing (a kernel missing on this GPU ...) must not lose the others
            for b in batches:
                res["rows"].setdefault(f"{name}@b{b}", {**settings, "batch": b,
                                                        "error": f"{type(exc).__name__}: {exc}"[:500]})
            print(name, "FAILED", type(exc).__name__, str(exc)[:300], flush=True)
        finally:
            del pipe
            torch._dynamo.reset()
            _free(device)
        _derive(res)
        if out:
            write(res, out)
    res["total_s"] = round(time.perf_counter() - started, 1)
    _derive(res)
    if out:
        write(res, out)
    return res



def _derive(res: dict) -> None:
    """MFU per row, and time and peak memory relative to bf16 eager at the same batch size."""
    image = (res.get("flops") or {}).get("image_TFLOP")
    for key, row in res["rows"].items():
        if "s_per_image" not in row:
            continue
        if image and res.get("peak_tflops"):
            row["mfu"] = round(image / row["s_per_image"] / res["peak_tflops"], 4)
        base = res["rows"].get(f"bf16@b{row['batch']}", {})
        if base.get("s_per_image"):
            row["vs_bf16_time"] = round(row["s_per_image"] / base["s_per_image"], 3)
        if base.get("peak_GiB") and row.get("peak_GiB"):
            row["vs_bf16_peak"] = round(row["peak_GiB"] / base["peak_GiB"], 3)


def markdown(res: dict) -> str:
    f = res.get("flops") or {}
    lines = [f"{res['model']}, {res['size']}², {res['steps']} steps, guidance {res['guidance']}; {res['device']}"
             + (f", driver {res['driver']}" if res.get("driver") else "") + f", torch {res['torch']}, {res['date']}; "
             f"compile backend {res['compile_backend']} ({res['compile_mode']}).",
             f"FLOPs of one image (flop_counter): {f.get('image_TFLOP', 0):.4g} TFLOP (UNet call "
             f"{f.get('unet_call_TFLOP', 0):.4g} x {res['steps']}, VAE decode {f.get('vae_decode_TFLOP', 0):.4g}, "
             f"text encoders {f.get('text_encoders_TFLOP', 0):.3g}); MFU against {res.get('peak_tflops') or 'n/a'} "
             "TFLOP/s.", "",
             "| row | batch | s/image | images/s | peak GiB | weights GiB | MFU | vs bf16 time | vs bf16 peak | "
             "warm-up s | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    for key, row in res["rows"].items():
        name = key.rsplit("@", 1)[0]
        if "s_per_image" not in row:
            lines.append(f"| {name} | {row['batch']} | | | | | | | | | {row.get('error') or row.get('skipped')} |")
            continue
        lines.append(f"| {name} | {row['batch']} | {fmt(row['s_per_image'], '.3f')} | "
                     f"{fmt(row['images_per_s'], '.2f')} | {fmt(row.get('peak_GiB'), '.2f')} | "
                     f"{fmt(row.get('weights_GiB'), '.3g')} | {fmt(row.get('mfu'), '.1%')} | "
                     f"{fmt(row.get('vs_bf16_time'), '.2f')} | {fmt(row.get('vs_bf16_peak'), '.2f')} | "
                     f"{fmt(row.get('warmup_s'), '.1f')} | {'; '.join(row.get('notes') or [])} |")
    return "\n".join(lines) + "\n"


def write(res: dict, out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out + ".json").write_text(json.dumps(res, indent=1))
    Path(out + ".md").write_text(markdown(res))


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-bytes", action="store_true", help="bytes of the full-size parts, fp16 vs INT8 (any machine)")
    ap.add_argument("--gpu", action="store_true", help="time every row on CUDA at full size")
    ap.add_argument("--cpu-smoke", action="store_true", help="every row on the tiny model on the CPU")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of: " + ", ".join(ROWS))
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per batch size (the best counts)")
    ap.add_argument("--compile-backend", help="default: inductor (aot_eager with --cpu-smoke)")
    ap.add_argument("--compile-mode", help="torch.compile mode, e.g. max-autotune-no-cudagraphs (default: default)")
    ap.add_argument("--peak-tflops", type=float, help="the GPU's bf16 dense peak (default 790 on CUDA)")
    ap.add_argument("--budget-s", type=float, default=1e9, help="start nothing after this many seconds")
    ap.add_argument("--out", help="write OUT.json and OUT.md (rewritten after every row)")
    args = ap.parse_args(argv)
    rows = [r for r in args.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    batches = [int(b) for b in args.batches.split(",")]
    if args.cpu_bytes:
        print(json.dumps(cpu_bytes(), indent=2))
    res = None
    if args.gpu or args.cpu_smoke:
        smoke = args.cpu_smoke
        if not smoke and not torch.cuda.is_available():
            ap.error("--gpu needs CUDA; use --cpu-smoke to check the script on the CPU")
        res = run(rows, batches, size=args.size or (64 if smoke else 1024), steps=args.steps or (2 if smoke else 30),
                  guidance=args.guidance, device="cpu" if smoke else "cuda", smoke=smoke,
                  backend=args.compile_backend or ("aot_eager" if smoke else "inductor"),
                  compile_mode=args.compile_mode,
                  peak_tflops=args.peak_tflops or (None if smoke else 790.0), budget_s=args.budget_s,
                  repeats=args.repeats, out=args.out)
        print(markdown(res))
    return res


if __name__ == "__main__":
    main()
