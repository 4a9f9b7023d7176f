"""Assemble an SDXL pipeline: model + VAE + LoRAs with scales + scheduler + dtype + quantization.

    spec = PipelineSpec(model="stabilityai/stable-diffusion-xl-base-1.0", loras=(LoraSpec("runs/3/lora", 0.8),),
                        scheduler="dpmpp_2m_karras", dtype="fp16", quantization="int8", device="cuda")
    assembled = build_pipeline(spec)        # assembled.pipe is a StableDiffusionXLPipeline

Quantization calls optimum-quanto directly (diffusers' QuantoConfig is deprecated and only covers nn.Linear): qint8
weights on the UNet (Linear and Conv2d) and both text encoders; the VAE stays in its dtype. ``fp8`` (qfloat8) and
``bnb8`` (bitsandbytes 8-bit) need CUDA and are refused elsewhere. LoRAs are fused *before* quantizing: fusing into an
already quantized model silently does nothing (see NOTES.md). The quantized weights for one (model, VAE, LoRAs, scales,
mode) are saved under ``workspace/quantized/<key>/`` and reloaded with ``requantize``, so the second load skips the
fuse and the quantization.

The speed path (``workbench.generate.speed``; each a PipelineSpec field whose default is today's behaviour):
``attention`` ("sdpa" default, or "eager"), ``fuse_qkv`` (fused q/k/v projections), ``channels_last``, ``vae_dtype``
("auto", or "bf16" / "fp32", or "fp16" with the fp16-fix VAE), ``compile`` ("off", "regional": the UNet's repeated
transformer blocks, "full"; compiled artefacts cached under ``workspace/compile_cache/``) and the torchao
quantization modes ("torchao-int8", "torchao-int8-dynamic", "torchao-fp8-dynamic": nn.Linear of the UNet and text
encoders, applied on the device). Combinations that cannot work are refused by ``check_spec`` with the reason.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.generate import speed
from workbench.generate.speed import ATTENTION, COMPILE_MODES, TORCHAO_MODES, VAE_DTYPES, SpeedError
from workbench.models.sources import is_demo_model, local_path
from workbench.settings import Settings, get_settings

# name -> (diffusers class, extra config), and the A1111 sampler name written into PNG info.
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, "DPM++ 2M"),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
                        "DPM++ 2M Karras"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
}
QUANTIZATION_MODES = ("none", "int8", "fp8", "bnb8", *TORCHAO_MODES)
QUANTO_MODES = ("int8", "fp8")  # optimum-quanto: weights cached under workspace/quantized/
DTYPES = ("fp32", "fp16", "bf16")
QUANTIZED_PARTS = ("unet", "text_encoder", "text_encoder_2")
COMPILE_BACKEND = "inductor"  # torch.compile backend for spec.compile (tests on the CPU use a cheaper one)


class GenerationError(ValueError):
    """A generation setting that cannot work; the message names the setting, its value and what to do."""


@dataclass(frozen=True)
class LoraSpec:
    path: str  # a folder with pytorch_lora_weights.safetensors, or that file
    scale: float = 1.0
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``name`` only when it is set (an empty one means ``lora_<i>``, as when it is absent)."""
        d: dict[str, Any] = {"path": self.path, "scale": self.scale}
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraSpec:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GenerationError(f"LoRA {d.get('path')!r}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**d)


def parse_lora_arg(text: str) -> LoraSpec:
    """``PATH`` or ``PATH:SCALE`` (the CLI's ``--lora``, a line of the Generate page's "More LoRAs") -> a LoraSpec.
    The scale is what follows the last colon; one that is not a number is an error naming it."""
    path, _, scale = text.rpartition(":") if ":" in text else (text, "", "1.0")
    try:
        return LoraSpec(path or text, float(scale or 1.0))
    except ValueError:
        raise GenerationError(f"LoRA {text!r}: scale {scale!r} is not a number; expected PATH or PATH:SCALE") from None


@dataclass(frozen=True)
class PipelineSpec:
    model: str
    vae: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    scheduler: str = "euler"
    dtype: str = "fp32"
    quantization: str = "none"
    device: str = "cpu"
    cpu_offload: bool = False
    vae_tiling: bool = False
    # speed path (workbench.generate.speed); absent from configs stored before it: the defaults keep old behaviour
    attention: str = "sdpa"  # "sdpa" (torch scaled_dot_product_attention) or "eager"
    channels_last: bool = False  # NHWC layout for the UNet and VAE convolutions
    fuse_qkv: bool = False  # fused q/k/v projections (diffusers fuse_qkv_projections); fuses the LoRAs first
    compile: str = "off"  # "off", "regional" (the UNet's repeated transformer blocks) or "full" (the whole UNet)
    vae_dtype: str = "auto"  # "auto" (the pipeline's), "fp32", "bf16", "fp16" (needs the fp16-fix VAE)

    def quant_key(self) -> str:
        """Identifies the quantized weights: model, VAE, LoRAs (with file fingerprints) and scales, mode, dtype, and
        fused QKV when on (the fused layers are what gets quantized; the key of an unfused model is unchanged)."""
        loras = [(l.path, _fingerprint(l.path), l.scale) for l in self.loras]
        parts: list[Any] = [self.model, self.vae, loras, self.quantization, self.dtype]
        if self.fuse_qkv:
            parts.append("fuse_qkv")
        blob = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loras"] = [l.to_dict() for l in self.loras]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineSpec:
        """The inverse of ``to_dict``; an unknown setting is an error naming it."""
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GenerationError(f"unknown pipeline setting(s): {', '.join(sorted(unknown))}")
        d["loras"] = tuple(LoraSpec.from_dict(l) for l in d.get("loras") or [])
        return cls(**d)


@dataclass
class AssembledPipeline:
    pipe: Any  # StableDiffusionXLPipeline
    spec: PipelineSpec
    quantized_from_cache: bool = False
    quantized_dir: str = ""
    demo_model: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def sampler_name(self) -> str:
        return SCHEDULERS[self.spec.scheduler][2]


def _fingerprint(path: str) -> str:
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.glob("*.safetensors")) if p.is_dir() else []
    return ",".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)


def check_spec(spec: PipelineSpec) -> None:
    """Every problem with the settings, before anything heavy loads."""
    if spec.scheduler not in SCHEDULERS:
        raise GenerationError(f"scheduler {spec.scheduler!r} is not one of {', '.join(SCHEDULERS)}")
    if spec.quantization not in QUANTIZATION_MODES:
        raise GenerationError(f"quantization {spec.quantization!r} is not one of {', '.join(QUANTIZATION_MODES)}")
    if spec.dtype not in DTYPES:
        raise GenerationError(f"dtype {spec.dtype!r} is not one of {', '.join(DTYPES)}")
    if spec.quantization in ("fp8", "bnb8", "torchao-fp8-dynamic") and not spec.device.startswith("cuda"):
        raise GenerationError(f"quantization {spec.quantization!r} needs a CUDA GPU (device is {spec.device!r}); "
                              "use 'int8' (optimum-quanto, works on CPU) or 'none'")
    if spec.dtype == "fp16" and spec.device == "cpu":
        raise GenerationError("dtype 'fp16' is not supported on the CPU (several kernels are missing); use 'fp32' "
                              "or 'bf16' on the CPU, fp16 on a GPU")
    _check_speed(spec)
    for lora in spec.loras:
        p = Path(lora.path)
        if not (p.is_file() and p.suffix == ".safetensors") and not (p.is_dir() and any(p.glob("*.safetensors"))):
            raise GenerationError(f"LoRA {lora.path!r}: no .safetensors weights there (pickle formats are refused)")
        if not -4.0 <= lora.scale <= 4.0:
            raise GenerationError(f"LoRA {lora.path!r}: scale {lora.scale} is outside [-4, 4]")


def _check_speed(spec: PipelineSpec) -> None:
    for name, value, allowed in (("attention", spec.attention, ATTENTION), ("compile", spec.compile, COMPILE_MODES),
                                 ("vae_dtype", spec.vae_dtype, VAE_DTYPES)):
        if value not in allowed:
            raise GenerationError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    if spec.fuse_qkv and spec.attention != "sdpa":
        raise GenerationError(f"fuse_qkv runs the fused projections with SDPA attention; attention "
                              f"{spec.attention!r} cannot be combined with it (use attention 'sdpa')")
    if spec.vae_dtype == "fp16" and spec.device == "cpu":
        raise GenerationError("vae_dtype 'fp16' is not supported on the CPU; use 'auto', 'fp32' or 'bf16'")
    if spec.quantization in TORCHAO_MODES and spec.cpu_offload:
        raise GenerationError(f"quantization {spec.quantization!r} quantizes on the GPU and cannot be combined with "
                              "CPU offload; use 'int8' (optimum-quanto) with CPU offload, or turn offload off")


class _UnetOnlyLoraNote(logging.Filter):
    """diffusers warns once per text encoder that a LoRA has no keys for it: for a UNet-only LoRA (the usual kind,
    and ours unless train_text_encoder) that is expected, and the warning only alarms users reading a job log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No LoRA keys associated to")


def _load_loras(pipe, loras: tuple[LoraSpec, ...]) -> list[str]:
    quiet = logging.getLogger("diffusers.loaders.lora_base")
    if not any(isinstance(f, _UnetOnlyLoraNote) for f in quiet.filters):
        quiet.addFilter(_UnetOnlyLoraNote())
    names = []
    for i, lora in enumerate(loras):
        name = lora.name or f"lora_{i}"
        p = Path(lora.path)
        if p.is_file():
            pipe.load_lora_weights(str(p.parent), weight_name=p.name, adapter_name=name)
        else:
            pipe.load_lora_weights(str(p), adapter_name=name)
        names.append(name)
    pipe.set_adapters(names, adapter_weights=[l.scale for l in loras])
    return names


def _quantize_parts(pipe, mode: str) -> None:
    from optimum.quanto import freeze, qfloat8, qint8, quantize

    weights = qint8 if mode == "int8" else qfloat8
    for part in QUANTIZED_PARTS:
        module = getattr(pipe, part)
        quantize(module, weights=weights)
        freeze(module)


def _save_quantized(pipe, folder: Path) -> None:
    from optimum.quanto import quantization_map
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for part in QUANTIZED_PARTS:
        module = getattr(pipe, part)
        state = {k: v.contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(tmp / f"{part}.safetensors"))
        (tmp / f"{part}.quantization_map.json").write_text(json.dumps(quantization_map(module)))
    os.replace(tmp, folder)  # all parts appear at once, or none


def _load_quantized(pipe, folder: Path, device: str) -> None:
    from optimum.quanto import requantize
    from safetensors.torch import load_file

    for part in QUANTIZED_PARTS:
        module = getattr(pipe, part)
        qmap = json.loads((folder / f"{part}.quantization_map.json").read_text())
        requantize(module, load_file(str(folder / f"{part}.safetensors")), qmap, device=device)
        module.eval()


def build_pipeline(spec: PipelineSpec, settings: Settings | None = None) -> AssembledPipeline:
    """Load and assemble; raises ModelUnavailable (model id + remedy) when weights are missing."""
    from diffusers import schedulers as diffusers_schedulers

    from workbench.models.sources import load_sdxl_pipeline

    settings = settings or get_settings()
    check_spec(spec)
    local_path(spec.model)
    pipe = load_sdxl_pipeline(spec.model, vae_ref=spec.vae, dtype=spec.dtype)

    # 1. scheduler and attention
    cls_name, extra, _ = SCHEDULERS[spec.scheduler]
    pipe.scheduler = getattr(diffusers_schedulers, cls_name).from_config(pipe.scheduler.config, **extra)
    out = AssembledPipeline(pipe=pipe, spec=spec, demo_model=is_demo_model(spec.model))
    speed.set_attention(pipe, spec.attention)

    def fuse_loras_then_qkv(why: str) -> None:
        """LoRAs into the weights (a LoRA cannot follow the weights into quantized or fused-QKV layers), then QKV."""
        if spec.loras:
            names = _load_loras(pipe, spec.loras)
            pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
            pipe.unload_lora_weights()
            out.notes.append(f"fused {len(names)} LoRA(s) before {why}")
        if spec.fuse_qkv:
            out.notes.append(f"fused QKV projections in {speed.fuse_qkv(pipe)} attention modules")

    # 2. LoRAs, fused QKV and quantization (fuse first, then quantize; quanto weights cached per key)
    if spec.quantization in QUANTO_MODES:
        folder = settings.path("quantized", spec.quant_key())
        out.quantized_dir = str(folder)
        if folder.is_dir():
            if spec.fuse_qkv:  # the cached weights are those of the fused layers
                speed.fuse_qkv(pipe)
            _load_quantized(pipe, folder, "cpu")
            out.quantized_from_cache = True
        else:
            fuse_loras_then_qkv("quantizing")
            _quantize_parts(pipe, spec.quantization)
            folder.parent.mkdir(parents=True, exist_ok=True)
            _save_quantized(pipe, folder)
    elif spec.quantization == "bnb8":  # CUDA only (checked above); quantized when moved to the GPU below
        from workbench.generate.bnb8 import swap_linear_to_bnb8

        fuse_loras_then_qkv("quantizing")
        swapped = sum(swap_linear_to_bnb8(getattr(pipe, name), dtype=getattr(pipe, name).dtype)  # keeps spec.dtype
                      for name in QUANTIZED_PARTS)
        out.notes.append(f"bitsandbytes 8-bit: {swapped} Linear layers (Conv2d stays {spec.dtype})")
    elif spec.quantization in TORCHAO_MODES or spec.fuse_qkv:
        fuse_loras_then_qkv("quantizing" if spec.quantization in TORCHAO_MODES else "fusing QKV")
    elif spec.loras:
        _load_loras(pipe, spec.loras)  # unfused: scales can change without reloading

    # 3. placement and memory options
    if spec.cpu_offload and spec.device.startswith("cuda"):
        pipe.enable_model_cpu_offload()
    else:
        if spec.cpu_offload:
            out.notes.append("CPU offload does nothing on the CPU (the model already runs from main memory)")
        pipe.to(spec.device)
    if spec.vae_tiling:
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        if part is not None:  # inference only (the pipeline's __call__ runs under no_grad); never a global switch
            part.requires_grad_(False)

    # 4. speed path on the device: torchao, memory layout, VAE precision, and compiling what the UNet now is
    try:
        if spec.quantization in TORCHAO_MODES:
            n = speed.torchao_quantize(pipe, spec.quantization)
            out.notes.append(f"torchao {spec.quantization}: {n} Linear layers (Conv2d stays {spec.dtype})")
        if spec.channels_last:
            speed.to_channels_last(pipe)
        note = speed.set_vae_dtype(pipe, spec.vae_dtype, spec.dtype)
        if note:
            out.notes.append(note)
        if spec.compile != "off":
            cache = speed.use_compile_cache(settings.path("compile_cache"))
            n = speed.compile_unet(pipe.unet, spec.compile, backend=COMPILE_BACKEND)
            out.notes.append(f"torch.compile ({spec.compile}, {n} module(s)) compiles at the first image; "
                             f"artefacts cached in {cache}")
    except SpeedError as exc:
        raise GenerationError(str(exc)) from None
    return out


def estimate_memory_gib(spec: PipelineSpec) -> dict[str, float]:
    """Weights-only memory estimate for full-size SDXL (parameter counts from the real configs, NOTES.md):
    UNet 2.567 B, text encoders 123 M + 695 M, VAE 84 M parameters. Activations come on top (~2-4 GiB at 1024²)."""
    bytes_per = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0}[spec.dtype]
    weight_bytes = 1.0 if spec.quantization in ("int8", "fp8", "bnb8") else bytes_per
    params = {"unet": 2.567e9, "text_encoders": 0.818e9}
    gib = {name: n * weight_bytes / 2**30 for name, n in params.items()}
    gib["vae"] = 0.084e9 * bytes_per / 2**30
    gib["total_weights"] = sum(gib.values())
    return gib
