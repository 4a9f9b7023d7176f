"""The speed path of an SDXL pipeline: attention, fused QKV, channels_last, VAE precision, torchao quantization and
torch.compile of the UNet, each a function on an assembled ``StableDiffusionXLPipeline``.

``workbench.generate.pipeline.build_pipeline`` applies them in this order (PipelineSpec fields in brackets):

    set_attention(pipe, "sdpa")           # [attention]  "sdpa" (AttnProcessor2_0, the default) or "eager"
    fuse_qkv(pipe)                        # [fuse_qkv]   before any quantization: it builds new Linear layers
    ... LoRAs, optimum-quanto / bitsandbytes ...
    pipe.to(device)
    torchao_quantize(pipe, "torchao-int8-dynamic")   # [quantization] on the device, after placement
    to_channels_last(pipe)                # [channels_last]
    set_vae_dtype(pipe, "bf16")           # [vae_dtype]
    use_compile_cache(folder); compile_unet(pipe.unet, "regional")   # [compile] last: compiles what the UNet is now

Light on purpose (torch and diffusers imported inside the functions, nothing from the app), so
``bench/generate_sdxl.py`` runs the very same code on a GPU machine that has none of the workbench's app
dependencies. The measured GPU table (``measured.json``, written from that bench) is read here too.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

ATTENTION = ("sdpa", "eager")
COMPILE_MODES = ("off", "regional", "full")
VAE_DTYPES = ("auto", "fp32", "bf16", "fp16")
# PipelineSpec.quantization names -> torchao config class (torchao.quantization); Linear layers only.
TORCHAO_MODES = {
    "torchao-int8": "Int8WeightOnlyConfig",
    "torchao-int8-dynamic": "Int8DynamicActivationInt8WeightConfig",
    "torchao-fp8-dynamic": "Float8DynamicActivationFloat8WeightConfig",
}
TORCHAO_PARTS = ("unet", "text_encoder", "text_encoder_2")
FP8_MIN_CAPABILITY = (8, 9)  # fp8 matmuls (torch._scaled_mm): Ada / Hopper and newer
FP16_FIX_VAE = "madebyollin/sdxl-vae-fp16-fix"  # SDXL's VAE finetuned not to overflow in fp16 (force_upcast false)
MEASURED = Path(__file__).with_name("measured.json")
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class SpeedError(ValueError):
    """A speed setting that cannot work here; the message names it and what to do instead."""


def torch_dtype(name: str):
    import torch

    return getattr(torch, _DTYPES[name])


# -- attention and fused projections -------------------------------------------------------------------------------

def set_attention(pipe, kind: str = "sdpa") -> None:
    """UNet and VAE attention: ``sdpa`` = torch's scaled_dot_product_attention (flash / memory-efficient kernels
    where the GPU has them); ``eager`` = the plain matmul-softmax-matmul (a reference, and for debugging)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if kind not in ATTENTION:
        raise SpeedError(f"attention {kind!r} is not one of {', '.join(ATTENTION)}")
    for model in (pipe.unet, pipe.vae):
        model.set_attn_processor(AttnProcessor2_0() if kind == "sdpa" else AttnProcessor())


@functools.cache
def fused_away_class():
    """The module that stands where a projection was fused into ``to_qkv`` / ``to_kv``: it holds no weights and fails
    loudly if anything still calls it (nothing should: the fused processor uses the fused layer). Built on first
    use, so importing this module does not import torch."""
    from torch import nn

    class FusedAway(nn.Module):
        def forward(self, *args, **kwargs):
            raise RuntimeError("this projection was fused into to_qkv/to_kv (fuse_qkv); it holds no weights")

    return FusedAway


def fuse_qkv(pipe) -> int:
    """diffusers' ``fuse_qkv_projections`` on the UNet and the VAE: one matmul for q, k and v of self-attention,
    one for k and v of cross-attention. diffusers keeps the unfused layers beside the fused ones (twice the
    projection weights); they are replaced by ``fused_away_class()`` here, so fusing saves time without costing memory.
    Load and fuse LoRAs first: a LoRA on to_q/to_k/to_v would not reach the fused layer. Returns the number of
    attention modules fused."""
    from diffusers.models.attention_processor import Attention

    pipe.fuse_qkv_projections(unet=True, vae=True)
    fused = 0
    for model in (pipe.unet, pipe.vae):
        for module in model.modules():
            if isinstance(module, Attention) and getattr(module, "fused_projections", False):
                names = ("to_k", "to_v") if module.is_cross_attention else ("to_q", "to_k", "to_v")
                for name in names:
                    setattr(module, name, fused_away_class()())
                fused += 1
    return fused


def to_channels_last(pipe) -> None:
    """NHWC memory layout for the UNet's and the VAE's convolutions (what cuDNN's fast kernels prefer)."""
    import torch

    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)


# -- VAE precision ---------------------------------------------------------------------------------------------------

def _cast_input(dtype):
    def hook(module, args):
        return (args[0].to(dtype), *args[1:]) if args and hasattr(args[0], "to") else args
    return hook


def set_vae_dtype(pipe, vae_dtype: str, pipeline_dtype: str) -> str | None:
    """The VAE's precision for the decode. ``auto``: the pipeline's (an fp16 SDXL VAE is upcast to fp32 for each
    decode by diffusers, because it overflows in fp16); ``bf16``: decodes in bf16 (fp32's range, no overflow, no
    upcast); ``fp16``: only for a VAE whose config says it does not need the upcast (``force_upcast: false``: the
    fp16-fix VAE, ``--vae madebyollin/sdxl-vae-fp16-fix``); ``fp32``. The latents are cast on their way into the
    decoder. Returns a note, or None when nothing changed."""
    if vae_dtype not in VAE_DTYPES:
        raise SpeedError(f"vae_dtype {vae_dtype!r} is not one of {', '.join(VAE_DTYPES)}")
    vae = pipe.vae
    if vae_dtype == "fp16" and getattr(vae.config, "force_upcast", True):
        raise SpeedError("vae_dtype 'fp16': this VAE overflows in fp16 (its config has force_upcast: true); use the "
                         f"fp16-fix VAE (vae {FP16_FIX_VAE!r}) or vae_dtype 'bf16'")
    if vae_dtype == "auto" or vae_dtype == pipeline_dtype:
        return None
    dtype = torch_dtype(vae_dtype)
    vae.to(dtype)
    if vae_dtype == "bf16":
        vae.register_to_config(force_upcast=False)  # diffusers upcasts fp16 only; say so for readers of the config
    for part in (getattr(vae, "post_quant_conv", None), vae.decoder):
        if part is not None:
            part.register_forward_pre_hook(_cast_input(dtype))
    return f"VAE decodes in {vae_dtype} (the UNet runs in {pipeline_dtype})"


# -- torchao -----------------------------------------------------------------------------------------------------------

def fp8_supported(device: str) -> tuple[bool, str]:
    """fp8 matmuls need CUDA compute capability 8.9+ (Ada, Hopper, Blackwell)."""
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        need = f"{FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]}"
        return False, f"fp8 needs a CUDA GPU with compute capability {need}+ (device is {device!r})"
    cap = torch.cuda.get_device_capability(torch.device(device))
    if cap < FP8_MIN_CAPABILITY:
        return False, (f"fp8 needs compute capability {FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]}+; "
                       f"{torch.cuda.get_device_name(torch.device(device))} has {cap[0]}.{cap[1]}")
    return True, ""


def torchao_quantize(pipe, mode: str, parts: tuple[str, ...] = TORCHAO_PARTS) -> int:
    """torchao ``quantize_`` on every nn.Linear of the UNet and both text encoders (convolutions stay in the
    pipeline's dtype): ``torchao-int8`` int8 weights, ``torchao-int8-dynamic`` int8 weights and activations
    (int8 matmuls; the mode that gets faster under torch.compile), ``torchao-fp8-dynamic`` fp8 weights and
    activations (compute capability 8.9+). Run it after the pipeline is on its device. Returns how many Linear
    layers were quantized."""
    import torch
    from torch import nn

    if mode not in TORCHAO_MODES:
        raise SpeedError(f"torchao mode {mode!r} is not one of {', '.join(TORCHAO_MODES)}")
    if mode == "torchao-fp8-dynamic":
        ok, why = fp8_supported(str(pipe.unet.device))
        if not ok:
            raise SpeedError(f"quantization {mode!r}: {why}; use 'torchao-int8-dynamic' or 'int8'")
    import torchao.quantization as tq

    config = getattr(tq, TORCHAO_MODES[mode])()
    count = 0
    for name in parts:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        count += sum(1 for m in module.modules() if type(m) is nn.Linear)
        with torch.no_grad():
            tq.quantize_(module, config)
    return count


# -- torch.compile -------------------------------------------------------------------------------------------------

def use_compile_cache(folder: str | os.PathLike) -> str:
    """Keep inductor's compiled artefacts (FX graph cache, AOTAutograd cache, Triton kernels) in ``folder``, so a
    second process with the same model and shapes loads kernels instead of compiling them. A cache directory the
    user chose (TORCHINDUCTOR_CACHE_DIR set to anything but torch's default in /tmp) is kept. Returns the one in use."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current and os.path.abspath(current) != os.path.abspath(default_cache_dir()):
        return current
    folder = str(Path(folder).resolve())
    Path(folder).mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    import torch._inductor.config as inductor

    inductor.fx_graph_cache = True
    return folder


def compile_unet(unet, how: str, backend: str = "inductor", mode: str | None = None, fullgraph: bool = True) -> int:
    """``regional``: torch.compile each repeated transformer block of the UNet (diffusers' ``compile_repeated_blocks``
    on ``BasicTransformerBlock``): one compiled graph reused by every block of a shape, so compiling takes a fraction
    of compiling the whole UNet, with most of its speed-up. ``full``: the whole UNet as one graph. In place (the
    pipeline keeps its UNet object). Compilation happens at the first call. Returns the number of modules compiled."""
    if how not in COMPILE_MODES:
        raise SpeedError(f"compile {how!r} is not one of {', '.join(COMPILE_MODES)}")
    if how == "off":
        return 0
    if backend == "inductor" and str(unet.device).startswith("cuda"):
        import torch._inductor.config as inductor

        inductor.conv_1x1_as_mm = True  # SDXL's many 1x1 convolutions as matmuls (the diffusers fast-diffusion recipe)
    kwargs: dict[str, Any] = {"backend": backend, "fullgraph": fullgraph}
    if mode and mode != "default":
        kwargs["mode"] = mode
    if how == "full":
        unet.compile(**kwargs)
        return 1
    blocks = set(getattr(unet, "_repeated_blocks", None) or ())
    if not blocks:
        raise SpeedError(f"regional compile: {type(unet).__name__} names no repeated blocks; use compile 'full'")
    unet.compile_repeated_blocks(**kwargs)
    return sum(1 for m in unet.modules() if type(m).__name__ in blocks)


def compiled_regions(unet) -> int:
    """How many modules of ``unet`` (itself included) are wrapped for torch.compile."""
    return sum(1 for m in unet.modules() if getattr(m, "_compiled_call_impl", None) is not None)


# -- the measured GPU table --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def measured() -> dict[str, Any]:
    """``measured.json``: rows written from ``bench/generate_sdxl.py`` on a GPU; ``rows`` is empty until then."""
    return json.loads(MEASURED.read_text())


def row_key(dtype: str, quantization: str, compile: str, fuse_qkv: bool, batch: int = 1) -> dict[str, Any]:
    return {"dtype": dtype, "quantization": quantization, "compile": compile != "off", "fuse_qkv": fuse_qkv,
            "batch": batch}


def measured_row(dtype: str, quantization: str, compile: str = "off", fuse_qkv: bool = False,
                 batch: int = 1, table: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The measured row for these settings at 1024² (name, row), or None when that configuration (or anything at
    all) has not been measured on a GPU."""
    table = measured() if table is None else table
    key = row_key(dtype, quantization, compile, fuse_qkv, batch)
    for name, row in (table.get("rows") or {}).items():
        if all(row.get(k) == v for k, v in key.items()) and row.get("s_per_image") is not None \
                and not row.get("lora"):  # a row with a LoRA fused in measures that, not the plain mode
            return name, row
    return None


def describe_measured(dtype: str, quantization: str, compile: str = "off", fuse_qkv: bool = False,
                      table: dict[str, Any] | None = None) -> str:
    """One line for the Generate page and the CLI: the measured GPU figures for this mode, or why there are none."""
    table = measured() if table is None else table
    if not table.get("rows"):
        return "GPU speed and peak memory: not measured on a GPU yet (bench/generate_sdxl.py, docs/PERFORMANCE.md)"
    found = measured_row(dtype, quantization, compile, fuse_qkv, table=table)
    if found is None:
        return (f"GPU speed and peak memory: this mode ({dtype}, {quantization}, compile {compile}, fused QKV "
                f"{'on' if fuse_qkv else 'off'}) was not measured on {table.get('device') or 'the GPU'}")
    name, row = found
    return (f"measured on {table.get('device')}: {row['s_per_image']:.2f} s/image at 1024², 30 steps, peak "
            f"{row['peak_GiB']:.1f} GiB ({name})")
