"""The training script: SDXL text-to-image LoRA and DreamBooth-LoRA, one readable ``main()`` in numbered steps.

    accelerate launch -m workbench.train --config configs/tiny_cpu_demo.yaml --max_train_steps 10
    python -m workbench.train --config run.yaml            # one process, no launcher

    from workbench.train.script import main
    result = main(cfg)                                     # in-process (tests); result.status "done" | "stopped"

What it does each optimizer step: reseed every RNG from (seed, step, rank), take the step's micro-batches from a
seeded per-epoch permutation, encode (or read cached) latents and text embeddings, add noise at random timesteps,
predict it with the LoRA-adapted UNet, MSE (optionally Min-SNR weighted, plus the prior-preservation loss), backward,
clip, step. Because nothing random is carried from step to step, a run resumed from a checkpoint produces the same
LoRA as an uninterrupted one. Progress goes to ``metrics.jsonl`` and (as a job) to the job row; a stop request saves a
checkpoint and exits cleanly.

Run folder (``output_dir``): config.json, metrics.jsonl, checkpoints/checkpoint-<step>/ (the LoRA, optimizer and
scheduler state as safetensors + JSON, never pickle: see checkpoints.py), samples/step-<step>/ (validation images, fixed
seeds), lora/ (pytorch_lora_weights.safetensors + run_card.json), logs/ (TensorBoard when report_to=tensorboard),
result.json.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.files import write_json_atomic
from workbench.train import progress as progress_mod
from workbench.train.checkpoints import (  # noqa: F401 - list_checkpoints: also imported from here
    checkpoint_root, discard_checkpoints_after, list_checkpoints, load_checkpoint, read_trainer_state,
    resolve_checkpoint, save_checkpoint)
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.data import Example, class_image_paths, is_cacheable, load_example, resolve_examples
from workbench.train import speed
from workbench.train.validation import (  # noqa: F401 - is_demo, export_kohya: also imported from here
    LORA_FILE, export_kohya, generate_class_images, is_demo, nan_message, run_card, run_validation, write_rank_checksum)

UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the likely cause and the fix."""


@dataclass
class TrainResult:
    status: str  # done | stopped
    output_dir: str
    step: int
    max_train_steps: int
    final_loss: float | None = None
    lora_dir: str | None = None
    checkpoint: str | None = None
    resumed_from_step: int | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# -- helpers the steps below use ----------------------------------------------------------------------------------

def resolve_output_dir(cfg: TrainConfig) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir).expanduser().resolve()
    from workbench.settings import get_settings

    run_id = os.environ.get("WORKBENCH_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
    return get_settings().path("runs", str(run_id))


def resolve_base(cfg: TrainConfig) -> tuple[str, str | None]:
    """(base model ref, separate VAE ref or None), applying the fp16-fix VAE default."""
    from workbench.settings import get_settings

    models = get_settings().models
    base = cfg.pretrained_model_name_or_path or models.sdxl_base
    vae = cfg.pretrained_vae_model_name_or_path or None
    if vae is None and cfg.mixed_precision == "fp16" and not Path(base).expanduser().exists():
        vae = models.vae  # the stock SDXL VAE overflows to NaN in fp16
    return base, vae


def load_models(base: str, vae_ref: str | None, cfg: TrainConfig) -> dict[str, Any]:
    """Tokenizers, text encoders, VAE, UNet and the noise scheduler of an SDXL model (hub id or local folder)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    kw = {"revision": cfg.revision}
    try:
        parts = {
            "tokenizer": CLIPTokenizer.from_pretrained(base, subfolder="tokenizer", **kw),
            "tokenizer_2": CLIPTokenizer.from_pretrained(base, subfolder="tokenizer_2", **kw),
            "text_encoder": CLIPTextModel.from_pretrained(base, subfolder="text_encoder", variant=cfg.variant, **kw),
            "text_encoder_2": CLIPTextModelWithProjection.from_pretrained(base, subfolder="text_encoder_2",
                                                                          variant=cfg.variant, **kw),
            "unet": UNet2DConditionModel.from_pretrained(base, subfolder="unet", variant=cfg.variant, **kw),
            "noise_scheduler": DDPMScheduler.from_pretrained(base, subfolder="scheduler", **kw),
        }
    except (OSError, ValueError) as exc:
        raise ConfigError(f"pretrained_model_name_or_path {base!r} could not be loaded ({type(exc).__name__}: "
                          f"{str(exc)[:300]}). Use a local diffusers folder, or fetch it first with "
                          f"`workbench models pull`.") from None
    try:
        parts["vae"] = (AutoencoderKL.from_pretrained(vae_ref) if vae_ref
                        else AutoencoderKL.from_pretrained(base, subfolder="vae", variant=cfg.variant, **kw))
    except (OSError, ValueError) as exc:
        name = "pretrained_vae_model_name_or_path" if vae_ref else "pretrained_model_name_or_path"
        raise ConfigError(f"{name} {vae_ref or base!r}: the VAE could not be loaded ({type(exc).__name__}: "
                          f"{str(exc)[:300]}). Fetch it with `workbench models pull`, or pass a local VAE folder.") \
            from None
    return parts


def encode_prompts(text_encoders, tokenizers, prompts: list[str]):
    """SDXL text conditioning: penultimate hidden states of both encoders side by side, and the pooled projection."""
    import torch

    embeds, pooled = [], None
    for tokenizer, encoder in zip(tokenizers, text_encoders):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(encoder.device)
        out = encoder(ids, output_hidden_states=True)
        pooled = out[0]  # text_encoder_2 (with projection) comes last: its first output is the pooled embedding
        embeds.append(out.hidden_states[-2])
    return torch.cat(embeds, dim=-1), pooled


def epoch_order(n: int, per_global_batch: int, seed: int, epoch: int) -> list[int]:
    """Indices for one epoch: a seeded permutation, cycled so the epoch fills whole global batches (a dataset of 3
    images with batch 4 repeats images within the batch instead of failing)."""
    import torch

    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    length = math.ceil(n / per_global_batch) * per_global_batch
    return [perm[i % n] for i in range(length)]


def step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 1009 + rank) % (2**63)


def lora_state_dicts(models: dict[str, Any], unwrap: Callable) -> dict[str, dict]:
    """LoRA tensors of each adapted model, in peft's naming (adapter name stripped)."""
    from peft.utils import get_peft_model_state_dict

    return {name: get_peft_model_state_dict(unwrap(m)) for name, m in models.items() if m is not None}


def save_lora(out_dir: Path, adapted: dict[str, Any], unwrap: Callable, is_main: bool) -> None:
    """diffusers-format pytorch_lora_weights.safetensors with the adapter metadata (lora_alpha survives reload)."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    kwargs: dict[str, Any] = {}
    for name, sd in lora_state_dicts(adapted, unwrap).items():
        kwargs[f"{name}_lora_layers"] = convert_state_dict_to_diffusers(sd)
        kwargs[f"{name}_lora_adapter_metadata"] = unwrap(adapted[name]).peft_config["default"].to_dict()
    StableDiffusionXLPipeline.save_lora_weights(str(out_dir), is_main_process=is_main, **kwargs)


def _norm_tensor(grad_norm, like):
    """The grad norm clip_grad_norm_ returned, as a 0-d float tensor beside the loss (NaN where there is none)."""
    import torch

    if grad_norm is None:
        return torch.full((), float("nan"), device=like.device)
    return torch.as_tensor(grad_norm, device=like.device).detach().float().reshape(())


BATCH_FILE = "batch_size.json"  # what find_batch_size chose: a resumed run keeps the same split (same data, noise)


def find_batch_size(cfg: TrainConfig, unet, out: Path, device, weight_dtype, trained, reporter,
                    resuming: bool) -> TrainConfig:
    """--find_batch_size: on CUDA, the largest micro-batch that splits train_batch_size x gradient_accumulation_steps
    exactly and whose measured peak (one forward + backward, peak reset before it, plus the optimizer state to come)
    fits memory_budget_gib (default 92% of the GPU). A resumed run reuses the first run's choice. On the CPU it keeps
    the configured batch and says why."""
    import json

    import torch

    if device.type != "cuda":
        reporter.log(f"find_batch_size needs CUDA (it measures torch.cuda.max_memory_allocated); keeping "
                     f"train_batch_size {cfg.train_batch_size} on {device.type}")
        return cfg
    saved = out / BATCH_FILE
    if resuming and saved.is_file():
        chosen = json.loads(saved.read_text())
        reporter.log(f"find_batch_size: keeping this run's micro-batch {chosen['train_batch_size']} x "
                     f"{chosen['gradient_accumulation_steps']} accumulation")
        return cfg.model_copy(update={k: chosen[k] for k in ("train_batch_size", "gradient_accumulation_steps")})
    effective = cfg.train_batch_size * cfg.gradient_accumulation_steps
    total = torch.cuda.get_device_properties(device).total_memory
    budget = cfg.memory_budget_gib * 2**30 if cfg.memory_budget_gib else 0.92 * total
    params = [p for mod in trained for p in mod.parameters() if p.requires_grad]
    extra = speed.optimizer_state_bytes(params, cfg.use_8bit_adam)
    per_sample = 2 if cfg.with_prior_preservation else 1  # class images ride along in the same forward pass
    batch, accumulation, tried = speed.pick_batch_size(
        effective, lambda b: speed.probe_peak(unet, b * per_sample, cfg.resolution, weight_dtype, device, extra),
        budget, is_oom=speed.is_cuda_oom)
    steps = ", ".join(f"{t['batch']}: " + (f"{t['peak_bytes'] / 2**30:.1f} GiB" if t["peak_bytes"] else "out of memory")
                      for t in tried)
    reporter.log(f"find_batch_size: micro-batch {batch} x {accumulation} accumulation (effective {effective}; budget "
                 f"{budget / 2**30:.1f} GiB; tried {steps})")
    chosen = {"train_batch_size": batch, "gradient_accumulation_steps": accumulation, "budget_bytes": int(budget),
              "tried": tried}
    if reporter.enabled:
        write_json_atomic(saved, chosen)
    return cfg.model_copy(update={"train_batch_size": batch, "gradient_accumulation_steps": accumulation})


# -- the script ---------------------------------------------------------------------------------------------------

def main(cfg: TrainConfig, should_stop: Callable[[int], bool] | None = None) -> TrainResult:  # noqa: C901
    import numpy as np
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params, compute_snr
    from peft import LoraConfig

    started = time.monotonic()
    torch.set_grad_enabled(True)  # an in-process caller may have switched autograd off

    # 1. Accelerator, output folder, stop signal. ------------------------------------------------------------------
    out = resolve_output_dir(cfg)
    # Only this run's own checkpoints, checked before anything is loaded (workbench.train.checkpoints).
    ckpt = resolve_checkpoint(cfg.resume_from_checkpoint, [out]) if cfg.resume_from_checkpoint else None
    ckpt_state = read_trainer_state(ckpt) if ckpt else None  # our format, files unchanged: fail before the models load
    out.mkdir(parents=True, exist_ok=True)
    from workbench.settings import get_settings

    use_cpu = get_settings().device == "cpu" or not torch.cuda.is_available()
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, cpu=use_cpu, log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / cfg.logging_dir)))
    rank, world, is_main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    reporter = progress_mod.Reporter(out, enabled=is_main)
    sigterm = {"seen": False}

    def _on_sigterm(*_):
        sigterm["seen"] = True  # finish the step, save a checkpoint, exit

    with contextlib.suppress(ValueError):  # not the main thread (in-process callers): rely on should_stop
        signal.signal(signal.SIGTERM, _on_sigterm)
    if is_main:
        write_json_atomic(out / "config.json", cfg.model_dump())
    if cfg.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True

    # 2. Models: load, freeze, add LoRA adapters (trainable parameters kept in fp32). -------------------------------
    base, vae_ref = resolve_base(cfg)
    reporter.log(f"loading {base}" + (f" with VAE {vae_ref}" if vae_ref else ""))
    m = load_models(base, vae_ref, cfg)
    unet, vae, te1, te2 = m["unet"], m["vae"], m["text_encoder"], m["text_encoder_2"]
    tokenizers, noise_scheduler = [m["tokenizer"], m["tokenizer_2"]], m["noise_scheduler"]
    if cfg.prediction_type:
        noise_scheduler.register_to_config(prediction_type=cfg.prediction_type)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
    # The stock SDXL VAE produces NaN in fp16: it stays in fp32 unless a separate (fp16-fix) VAE was given.
    vae_dtype = torch.float32 if (cfg.mixed_precision == "fp16" and not vae_ref) else weight_dtype
    for model in (unet, vae, te1, te2):
        model.requires_grad_(False)
    device = accelerator.device
    unet.to(device, dtype=weight_dtype)
    vae.to(device, dtype=vae_dtype)
    te1.to(device, dtype=weight_dtype)
    te2.to(device, dtype=weight_dtype)
    torch.manual_seed(cfg.seed)  # the LoRA's initial weights: the same run starts from the same adapter
    unet.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
                                init_lora_weights="gaussian", target_modules=UNET_TARGETS))
    adapted: dict[str, Any] = {"unet": unet, "text_encoder": None, "text_encoder_2": None}
    if cfg.train_text_encoder:
        for name, te in (("text_encoder", te1), ("text_encoder_2", te2)):
            te.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
                                      init_lora_weights="gaussian", target_modules=TEXT_TARGETS))
            adapted[name] = te
    trained = [mod for mod in adapted.values() if mod is not None]
    cast_training_params(trained, dtype=torch.float32)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        if cfg.train_text_encoder:
            te1.gradient_checkpointing_enable()
            te2.gradient_checkpointing_enable()

    # 3. Data: examples, DreamBooth class images, cached latents and text embeddings. ------------------------------
    examples, data_info = resolve_examples(cfg)
    class_examples: list[Example] = []
    if cfg.with_prior_preservation:
        class_dir = Path(cfg.class_data_dir or out / "class_images")
        if is_main and len(class_image_paths(class_dir)) < cfg.num_class_images:
            generate_class_images(cfg, m, class_dir, device, weight_dtype, reporter)
        accelerator.wait_for_everyone()
        class_examples = [Example(caption=cfg.class_prompt or "", path=p)
                          for p in class_image_paths(class_dir)[:cfg.num_class_images]]
    per_global = cfg.train_batch_size * world
    if len(examples) < per_global:
        reporter.log(f"dataset of {len(examples)} images is smaller than the batch ({cfg.train_batch_size} x "
                     f"{world} processes): images repeat within a batch")
    cache = is_cacheable(examples + class_examples, cfg)
    cache_text = not cfg.train_text_encoder
    latent_cache: dict[tuple[str, int], tuple] = {}
    text_cache: dict[str, tuple] = {}

    def encode_images(pixels):
        with torch.no_grad():
            dist = vae.encode(speed.to_device(pixels, device).to(vae_dtype)).latent_dist
        return dist.mean.float(), dist.std.float()

    if cache:
        for kind, exs in (("i", examples), ("c", class_examples)):
            for i, ex in enumerate(exs):
                px, osz, crop = load_example(ex, cfg, epoch=0, index=i)
                mean, std = encode_images(px[None])
                latent_cache[(kind, i)] = (mean[0].cpu(), std[0].cpu(), osz, crop)
    if cache_text:
        with torch.no_grad():
            for caption in sorted({e.caption for e in examples + class_examples}):
                emb, pooled = encode_prompts([te1, te2], tokenizers, [caption])
                text_cache[caption] = (emb[0], pooled[0])
    # Cached inputs: the VAE and (without text-encoder LoRA) both text encoders leave the GPU until validation needs
    # them, so only the UNet is resident while training (what bench/train_sdxl_lora.py measures).
    parked = ([vae] if cache else []) + ([te1, te2] if cache_text else [])
    if device.type == "cuda":
        for model in parked:
            model.to("cpu")
        torch.cuda.empty_cache()
    m["parked"], m["device"] = parked, device
    if cfg.find_batch_size:
        cfg = find_batch_size(cfg, unet, out, device, weight_dtype, trained, reporter, resuming=ckpt is not None)
        per_global = cfg.train_batch_size * world
    reporter.log(f"{len(examples)} training images ({data_info['source']}), {len(class_examples)} class images; "
                 f"latents {'cached' if cache else 'encoded each step'}, text embeddings "
                 f"{'cached' if cache_text else 'encoded each step'}")

    # 4. Optimizer, learning-rate schedule, step counts. -----------------------------------------------------------
    lr = cfg.learning_rate
    if cfg.scale_lr:
        lr *= cfg.train_batch_size * cfg.gradient_accumulation_steps * world
    groups = [{"params": [p for p in unet.parameters() if p.requires_grad], "lr": lr}]
    if cfg.train_text_encoder:
        te_params = [p for te in (te1, te2) for p in te.parameters() if p.requires_grad]
        groups.append({"params": te_params, "lr": cfg.text_encoder_lr or lr})
    if cfg.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError("use_8bit_adam needs bitsandbytes: pip install bitsandbytes") from None
        optimizer = bnb.optim.AdamW8bit(groups, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                        weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
    else:  # fused: one kernel for the whole update (workbench.train.speed)
        optimizer, note = speed.make_adamw(groups, cfg.use_fused_adam, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                           weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
        if note:
            reporter.log(note)
    batches_per_epoch = math.ceil(len(examples) / per_global)
    updates_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation_steps)
    max_steps = cfg.max_train_steps or cfg.num_train_epochs * updates_per_epoch
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer=optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                                 num_training_steps=max_steps, num_cycles=cfg.lr_num_cycles, power=cfg.lr_power)
    # The scheduler is stepped by us once per optimizer step (not prepared: accelerate would step it per process), and
    # checkpointed by workbench.train.checkpoints as JSON (accelerate's register_for_checkpointing would pickle it).
    to_prepare = [unet] + ([te1, te2] if cfg.train_text_encoder else [])
    *prepared, optimizer = accelerator.prepare(*to_prepare, optimizer)
    unet = prepared[0]
    if cfg.train_text_encoder:
        te1, te2 = prepared[1], prepared[2]
        adapted.update(text_encoder=te1, text_encoder_2=te2)
    adapted["unet"] = unet
    unwrap = accelerator.unwrap_model
    # The fast path (workbench.train.speed): after the LoRA is injected, so its layers are inside the compiled blocks.
    if cfg.channels_last:
        speed.to_channels_last(unwrap(unet))
    compiled = cfg.torch_compile
    cuda_graphs = compiled and speed.uses_cuda_graphs(cfg.compile_mode, device.type)
    if compiled:
        blocks = speed.compile_unet(unwrap(unet), backend=cfg.compile_backend, mode=cfg.compile_mode)
        reporter.log(f"torch.compile ({cfg.compile_backend}, mode {cfg.compile_mode}) of {blocks} transformer blocks; "
                     "the first steps compile")
        if cfg.compile_mode in speed.CUDA_GRAPH_MODES and not cuda_graphs:
            reporter.log(f"compile_mode {cfg.compile_mode}: CUDA graphs need a CUDA device; none on {device.type}")

    # Checkpoints hold only the LoRA tensors (exact peft state, plus the diffusers file), not the frozen base model.
    ckpt_parts = dict(optimizer=optimizer, lr_scheduler=lr_scheduler,
                      lora_tensors=lambda: lora_state_dicts(adapted, unwrap),
                      save_lora=lambda folder: save_lora(folder, adapted, unwrap, is_main))
    if is_main and cfg.report_to != "none":
        accelerator.init_trackers(cfg.run_name or "workbench-train", config={k: v for k, v in cfg.model_dump().items()
                                                                          if isinstance(v, (int, float, str, bool))})

    # 5. Resume: weights, optimizer, scheduler, RNG from the checkpoint; data position from trainer_state.json. -----
    step, resumed_from = 0, None
    if cfg.resume_from_checkpoint and ckpt is None:  # diffusers' words, so a diffusers user recognises them
        reporter.log(f"Checkpoint '{cfg.resume_from_checkpoint}' does not exist. Starting a new training run. "
                     f"(no checkpoint in {checkpoint_root(out)})")
    elif ckpt is not None:
        state = load_checkpoint(ckpt, ckpt_state, optimizer=optimizer, lr_scheduler=lr_scheduler,
                                scaler=accelerator.scaler, adapted=adapted, unwrap=unwrap)
        step = resumed_from = int(state["step"])
        reporter.log(f"resumed from {ckpt} at step {step}")
    # Steps after the starting point belong to an abandoned branch (a kill, or a resume from an earlier checkpoint):
    # their metrics rows, validation images and checkpoints go, so every step is recorded once.
    if is_main:
        reporter.truncate_after(step)
        for path in discard_checkpoints_after(out, step):
            progress_mod.forget_checkpoint(path)
            reporter.log(f"removed {path.name}: it was saved after step {step} by an interrupted job")
    accelerator.wait_for_everyone()

    # 6. Training loop. ---------------------------------------------------------------------------------------------
    for mod in trained:
        mod.train()
    params = [p for g in groups for p in g["params"]]
    status, last_loss, last_ckpt = "done", None, None
    timer = progress_mod.StepTimer()
    reporter.log(f"training {max_steps} steps ({updates_per_epoch} per epoch), batch {cfg.train_batch_size} x "
                 f"{cfg.gradient_accumulation_steps} accumulation x {world} processes, {cfg.method}")

    def get_batch(b: int, kind: str, exs: list[Example]):
        # Class images count their own epochs: fewer of them than photos cycle, more are drawn from in turn.
        epoch, within = divmod(b, math.ceil(len(exs) / per_global))
        order = epoch_order(len(exs), per_global, cfg.seed + (0 if kind == "i" else 7919), epoch)
        idx = order[within * per_global + rank * cfg.train_batch_size:][:cfg.train_batch_size]
        if cache:
            rows = [latent_cache[(kind, i)] for i in idx]
            mean = speed.to_device(torch.stack([r[0] for r in rows]), device)
            std = speed.to_device(torch.stack([r[1] for r in rows]), device)
            latents = mean + std * torch.randn_like(std)
            sizes = [(r[2], r[3]) for r in rows]
        else:
            loaded = [load_example(exs[i], cfg, epoch, i) for i in idx]
            mean, std = encode_images(torch.stack([x[0] for x in loaded]))
            latents = mean + std * torch.randn_like(std)
            sizes = [(x[1], x[2]) for x in loaded]
        return latents, [exs[i].caption for i in idx], sizes, epoch

    pending: list[dict] = []  # steps whose loss and grad norm are still on the device (read back at logging steps)
    while step < max_steps:
        if cuda_graphs:  # a new iteration: outputs of the previous step's graphs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        # Everything random in this step comes from (seed, step, rank): resume replays it exactly.
        torch.manual_seed(step_seed(cfg.seed, step, rank))
        np.random.seed(step_seed(cfg.seed, step, rank) % 2**32)
        losses = []
        for micro in range(cfg.gradient_accumulation_steps):
            b = step * cfg.gradient_accumulation_steps + micro
            latents, captions, sizes, epoch = get_batch(b, "i", examples)
            if class_examples:
                c_lat, c_caps, c_sizes, _ = get_batch(b, "c", class_examples)
                latents, captions, sizes = torch.cat([latents, c_lat]), captions + c_caps, sizes + c_sizes
            latents = (latents * vae.config.scaling_factor).to(weight_dtype)
            noise = torch.randn_like(latents)
            if cfg.noise_offset:
                noise = noise + cfg.noise_offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1),
                                                               device=device, dtype=latents.dtype)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                      device=device).long()
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            if cfg.channels_last:
                noisy = noisy.contiguous(memory_format=torch.channels_last)
            # SDXL micro-conditioning: original size, crop top-left, target size.
            time_ids = speed.to_device(torch.tensor([[*o, *c, cfg.resolution, cfg.resolution] for o, c in sizes],
                                                    dtype=weight_dtype), device)
            if cache_text:
                emb = torch.stack([text_cache[c][0] for c in captions]).to(device)
                pooled = torch.stack([text_cache[c][1] for c in captions]).to(device)
            else:
                emb, pooled = encode_prompts([te1, te2], tokenizers, captions)
            sync = micro == cfg.gradient_accumulation_steps - 1
            with (contextlib.nullcontext() if sync else accelerator.no_sync(unet)), accelerator.autocast():
                pred = unet(noisy, timesteps, emb, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids},
                            return_dict=False)[0]
                if noise_scheduler.config.prediction_type == "v_prediction":
                    target = noise_scheduler.get_velocity(latents, noise, timesteps)
                else:
                    target = noise
                prior_loss = None
                if class_examples:
                    pred, pred_prior = pred.chunk(2)
                    target, target_prior = target.chunk(2)
                    prior_loss = F.mse_loss(pred_prior.float(), target_prior.float())
                    timesteps = timesteps.chunk(2)[0]
                if cfg.snr_gamma is None:
                    loss = F.mse_loss(pred.float(), target.float())
                else:  # Min-SNR weighting (Hang et al. 2023)
                    snr = compute_snr(noise_scheduler, timesteps)
                    weights = torch.minimum(snr, torch.full_like(snr, cfg.snr_gamma))
                    weights = weights / (snr + 1 if noise_scheduler.config.prediction_type == "v_prediction" else snr)
                    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
                    loss = (per_sample * weights).mean()
                if prior_loss is not None:
                    loss = loss + cfg.prior_loss_weight * prior_loss
            accelerator.backward(loss / cfg.gradient_accumulation_steps)
            losses.append(loss.detach())
        # No host sync here: the loss and the grad norm stay on the device until a logging step reads them back.
        step_loss_t = accelerator.gather(torch.stack(losses).mean()[None]).mean()
        grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        pending.append({"step": step, "epoch": epoch, "lr": lr_scheduler.get_last_lr()[0], "loss": step_loss_t,
                        "grad_norm": grad_norm})
        host_stop = sigterm["seen"] or bool(should_stop and should_stop(step))
        checkpoint_due = step % cfg.checkpointing_steps == 0
        validate_due = bool(cfg.validation_epochs) and step % (cfg.validation_epochs * updates_per_epoch) == 0
        # Every process reads back at the same steps (a collective follows); a stop seen by one process alone waits
        # for the next logging step, except in a single process, where it is honoured at once.
        if not (step % cfg.logging_steps == 0 or step == max_steps or checkpoint_due or validate_due
                or (world == 1 and host_stop)):
            continue

        # 7. Progress, stop requests, checkpoints, validation (at logging steps). -----------------------------------
        seconds = timer.tick(len(pending))
        values = torch.stack([torch.stack([r["loss"].detach().float(), _norm_tensor(r["grad_norm"], r["loss"])])
                              for r in pending]).tolist()  # the one host sync for these steps
        gpu_mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        stop_here = host_stop
        for r, (loss_value, norm) in zip(pending, values):
            if not math.isfinite(loss_value):
                msg = nan_message(cfg, vae_ref, r["step"], loss_value)
                reporter.finish("failed", msg)
                raise TrainingDiverged(msg)
            row = {"step": r["step"], "epoch": r["epoch"], "loss": loss_value, "lr": r["lr"],
                   "grad_norm": norm if math.isfinite(norm) else None, "s_per_step": seconds,
                   "eta_s": timer.eta(max_steps - r["step"]), "gpu_mem_gb": gpu_mem}
            stop_here = reporter.step(row, max_steps) or stop_here
            if is_main and cfg.report_to != "none":
                accelerator.log({"loss": loss_value, "lr": r["lr"]}, step=r["step"])
            last_loss = step_loss = loss_value
        pending = []
        if world > 1:  # every process stops at the same step
            stop_here = bool(accelerator.reduce(torch.tensor([float(stop_here)], device=device), "max").item())
        checkpoint_now = checkpoint_due or (stop_here and step < max_steps)
        if checkpoint_now:
            last_ckpt = save_checkpoint(accelerator, out, step, step_loss, cfg, **ckpt_parts)
            timer.pause()
            with speed.eager_while(compiled):
                samples = run_validation(cfg, m, unwrap(unet), adapted, unwrap, out, step, device, weight_dtype,
                                         accelerator, reporter)
            reporter.checkpoint(last_ckpt, step, step_loss, samples)
        elif validate_due:
            with speed.eager_while(compiled):
                run_validation(cfg, m, unwrap(unet), adapted, unwrap, out, step, device, weight_dtype, accelerator,
                               reporter)
            timer.pause()
        if stop_here and step < max_steps:
            status = "stopped"
            reporter.log(f"stop requested: saved {last_ckpt.name} at step {step}; resume to continue")
            break

    # 8. Output: the LoRA, its run card, the registry. -------------------------------------------------------------
    accelerator.wait_for_everyone()
    write_rank_checksum(out, rank, world, lora_state_dicts(adapted, unwrap))
    result = TrainResult(status=status, output_dir=str(out), step=step, max_train_steps=max_steps,
                         final_loss=last_loss, checkpoint=str(last_ckpt) if last_ckpt else None,
                         resumed_from_step=resumed_from,
                         extra={"optimizer": type(optimizer.optimizer if hasattr(optimizer, "optimizer") else
                                                   optimizer).__name__, "processes": world,
                                "train_batch_size": cfg.train_batch_size,
                                "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
                                "compiled_blocks": speed.compiled_regions(unwrap(unet))})
    if status == "done":
        lora_dir = out / "lora"
        tmp = out / ".lora.tmp"
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            save_lora(tmp, adapted, unwrap, is_main)
            if cfg.export_kohya:
                export_kohya(tmp, cfg.alpha)
        if step % cfg.checkpointing_steps:  # the last step was not validated yet
            with speed.eager_while(compiled):
                run_validation(cfg, m, unwrap(unet), adapted, unwrap, out, step, device, weight_dtype, accelerator,
                               reporter)
        result.lora_dir = str(lora_dir)
        result.seconds = time.monotonic() - started
        if is_main:
            card = run_card(cfg, base, vae_ref, data_info, result, accelerator)
            write_json_atomic(tmp / "run_card.json", card)
            shutil.rmtree(lora_dir, ignore_errors=True)
            os.replace(tmp, lora_dir)
            progress_mod.register_lora(cfg, base, data_info, result, card)
    result.seconds = time.monotonic() - started
    if is_main:
        write_json_atomic(out / "result.json", asdict(result))
        reporter.finish(status, f"{status} at step {step}/{max_steps}" + (
            f", loss {last_loss:.4f}" if last_loss is not None else ""))
    accelerator.end_training()
    return result
