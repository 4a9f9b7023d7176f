"""What the training script (``script.main``) checks and produces besides training: validation images, DreamBooth
class images, the run card, each rank's LoRA checksum, the kohya export, the NaN message.

    run_validation(cfg, m, unet, adapted, unwrap, out, step, device, dtype, accelerator, reporter)
        -> samples/step-<step>/p<prompt>-s<seed>.png (+ prompts.json), same prompts and seeds at every checkpoint
    generate_class_images(cfg, m, class_dir, device, dtype, reporter)   # prior preservation: the base model's images
    run_card(cfg, base, vae_ref, data_info, result, accelerator)        # lora/run_card.json
    write_rank_checksum(out, rank, world, lora_state_dicts)            # ranks/rank-<i>.json: ranks must agree
    export_kohya(lora_dir, alpha)                                       # pytorch_lora_weights_kohya.safetensors
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from workbench.files import write_json_atomic
from workbench.train.config import TrainConfig
from workbench.train.data import class_image_paths

LORA_FILE = "pytorch_lora_weights.safetensors"


def is_demo(ref: str) -> bool:
    """Tiny demo models are labelled as such wherever a LoRA trained on them appears."""
    try:
        from workbench.models.sources import is_demo_model
    except ImportError:
        return "tiny" in Path(ref).name.lower()
    return bool(is_demo_model(ref))


def write_rank_checksum(out: Path, rank: int, world: int, lora: dict[str, dict]) -> None:
    """Each process writes ranks/rank-<i>.json with a hash of its LoRA weights: under data parallelism every rank
    must end with identical weights (a run that silently trained one rank shows up as one file)."""
    import hashlib

    digest = hashlib.sha256()
    for name, sd in sorted(lora.items()):
        for key in sorted(sd):
            digest.update(f"{name}.{key}".encode())
            digest.update(sd[key].detach().float().cpu().contiguous().numpy().tobytes())
    folder = out / "ranks"
    folder.mkdir(exist_ok=True)
    write_json_atomic(folder / f"rank-{rank}.json", {"rank": rank, "world": world, "pid": os.getpid(),
                                                           "lora_sha256": digest.hexdigest()})


def export_kohya(lora_dir: Path, alpha: float) -> Path:
    """pytorch_lora_weights_kohya.safetensors for A1111 / ComfyUI (kohya key names and alphas).
    diffusers' converter writes alpha = rank; the run's lora_alpha is written instead, so the scale survives."""
    import torch
    from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    sd = load_file(str(lora_dir / LORA_FILE))
    kohya = convert_state_dict_to_kohya(convert_all_state_dict_to_peft(sd))
    for key in kohya:
        if key.endswith(".alpha"):
            kohya[key] = torch.tensor(float(alpha))
    out = lora_dir / "pytorch_lora_weights_kohya.safetensors"
    save_file(kohya, str(out))
    return out


def nan_message(cfg: TrainConfig, vae_ref: str | None, step: int, loss: float) -> str:
    causes = []
    if cfg.mixed_precision == "fp16" and not vae_ref:
        causes.append("the SDXL VAE overflows in fp16: set pretrained_vae_model_name_or_path to "
                      "madebyollin/sdxl-vae-fp16-fix, or use mixed_precision bf16")
    elif cfg.mixed_precision == "fp16":
        causes.append("fp16 overflow: try mixed_precision bf16")
    causes.append(f"learning_rate {cfg.learning_rate:g} may be too high: try {cfg.learning_rate / 10:g}"
                  + (" or lower max_grad_norm" if cfg.max_grad_norm > 1 else ""))
    return f"loss became {loss} at step {step}; likely cause: " + "; or ".join(causes)


@contextlib.contextmanager
def _resident(m: dict[str, Any]):
    """Bring the models parked on the CPU (cached training) back to the GPU for validation, then park them again."""
    parked, device = m.get("parked") or [], m.get("device")
    moved = device is not None and device.type == "cuda" and bool(parked)
    if moved:
        for model in parked:
            model.to(device)
    try:
        yield
    finally:
        if moved:
            import torch

            for model in parked:
                model.to("cpu")
            torch.cuda.empty_cache()


def _pipeline(m: dict[str, Any], unet, text_encoders, device, dtype):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=m["vae"], text_encoder=text_encoders[0], text_encoder_2=text_encoders[1], tokenizer=m["tokenizer"],
        tokenizer_2=m["tokenizer_2"], unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(m["noise_scheduler"].config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_validation(cfg: TrainConfig, m, unet, adapted, unwrap, out: Path, step: int, device, dtype, accelerator,
                   reporter) -> list[str]:
    """Images for every validation prompt with seeds seed..seed+n-1, so checkpoints compare like for like."""
    import torch

    prompts = cfg.all_validation_prompts
    if not prompts or not cfg.num_validation_images:
        return []
    paths: list[str] = []
    if accelerator.is_main_process:
        tes = [unwrap(adapted["text_encoder"] or m["text_encoder"]), unwrap(adapted["text_encoder_2"] or
                                                                             m["text_encoder_2"])]
        stack = contextlib.ExitStack()
        stack.enter_context(_resident(m))
        pipe = _pipeline(m, unet, tes, device, dtype)
        folder = out / "samples" / f"step-{step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        was_training = unet.training
        unet.eval()
        autocast = (torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            for p, prompt in enumerate(prompts):
                for j in range(cfg.num_validation_images):
                    seed = cfg.seed + j
                    image = pipe(prompt, num_inference_steps=cfg.validation_num_inference_steps,
                                 guidance_scale=cfg.validation_guidance_scale, height=cfg.resolution,
                                 width=cfg.resolution, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
                    path = folder / f"p{p}-s{seed}.png"
                    image.save(path)
                    paths.append(str(path.relative_to(out)))
        (folder / "prompts.json").write_text(json.dumps({"step": step, "prompts": prompts,
                                                          "seeds": [cfg.seed + j for j in range(
                                                              cfg.num_validation_images)]}, indent=1))
        unet.train(was_training)
        stack.close()
        reporter.log(f"validation: {len(paths)} images in samples/step-{step:06d}")
    accelerator.wait_for_everyone()
    return paths


def generate_class_images(cfg: TrainConfig, m, class_dir: Path, device, dtype, reporter) -> None:
    """DreamBooth prior preservation: generate the missing class images with the base model (no LoRA yet)."""
    import torch

    class_dir.mkdir(parents=True, exist_ok=True)
    have = len(class_image_paths(class_dir))
    missing = cfg.num_class_images - have
    reporter.log(f"generating {missing} class images for {cfg.class_prompt!r} into {class_dir}")
    pipe = _pipeline(m, m["unet"], [m["text_encoder"], m["text_encoder_2"]], device, dtype)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    index = have
    with torch.no_grad(), autocast:
        while index < cfg.num_class_images:
            n = min(cfg.sample_batch_size, cfg.num_class_images - index)
            gens = [torch.Generator("cpu").manual_seed(cfg.seed + 10_000 + index + k) for k in range(n)]
            images = pipe([cfg.class_prompt] * n, num_inference_steps=cfg.class_num_inference_steps,
                          height=cfg.resolution, width=cfg.resolution, generator=gens).images
            for image in images:
                tmp = class_dir / f".class-{index:05d}.png"
                image.save(tmp)
                os.replace(tmp, class_dir / f"class-{index:05d}.png")
                index += 1


def run_card(cfg: TrainConfig, base: str, vae_ref: str | None, data_info: dict, result,
             accelerator) -> dict[str, Any]:
    import platform

    import torch

    hardware = {"device": str(accelerator.device), "processes": accelerator.num_processes,
                "platform": platform.platform(), "torch": torch.__version__}
    if torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(0)
        hardware["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return {"method": cfg.method, "base_model": base, "vae": vae_ref or f"{base} (vae)", "is_demo": is_demo(base),
            "rank": cfg.rank, "lora_alpha": cfg.alpha, "train_text_encoder": cfg.train_text_encoder,
            "trigger": cfg.instance_prompt or "", "dataset": data_info.get("source"),
            "dataset_manifest_hash": data_info.get("manifest_hash"), "images": data_info.get("count"),
            "steps": result.step, "final_loss": result.final_loss, "seconds": round(result.seconds, 2),
            "resumed_from_step": result.resumed_from_step, "hardware": hardware, "config": cfg.model_dump()}
