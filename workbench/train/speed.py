"""The fast path of a LoRA training step: regional torch.compile of the UNet (LoRA layers inside the compiled
region), CUDA graphs, fused AdamW, channels_last, and a batch-size finder against a memory budget.

``workbench.train.script`` applies them when the config asks (all off by default: today's eager step stays the
default until a GPU measurement decides, docs/PERFORMANCE.md):

    optimizer, note = make_adamw(groups, fused=cfg.use_fused_adam, ...)         # --use_fused_adam
    to_channels_last(unet)                                                      # --channels_last
    compile_unet(unet, backend="inductor", mode="default")                     # --torch_compile, --compile_mode
    batch, accumulation, tried = pick_batch_size(effective, probe, budget)    # --find_batch_size

Light on purpose (torch imported inside the functions, nothing from the app), so ``bench/train_sdxl_lora.py`` runs
the very same code on a GPU machine that has none of the workbench's app dependencies.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
# torch.compile modes; the two marked use CUDA graphs (static shapes: the script's are, see compile_unet)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def uses_cuda_graphs(mode: str, device: str) -> bool:
    return mode in CUDA_GRAPH_MODES and str(device).startswith("cuda")


def compile_unet(unet, backend: str = "inductor", mode: str = "default", fullgraph: bool = True) -> int:
    """Regional compile: ``torch.compile`` each repeated transformer block of the UNet (diffusers'
    ``compile_repeated_blocks`` on ``BasicTransformerBlock``), not the whole UNet: one compiled graph per block shape,
    reused by every block of that shape (SDXL: 10-deep stacks), so compiling takes a fraction of a whole-UNet compile.
    Call it after the LoRA is injected (peft wraps to_q/to_k/to_v/to_out.0 inside the blocks), so the LoRA matmuls are
    part of the compiled graphs. ``fullgraph=True``: a graph break is an error, not a silent slow path. Shapes are
    static in the training script (square ``resolution``, every batch full: ``epoch_order`` cycles the data), which is
    what CUDA graphs (``mode`` reduce-overhead / max-autotune) need. Returns the number of blocks compiled."""
    if backend not in COMPILE_BACKENDS:
        raise ValueError(f"compile backend {backend!r} is not one of {', '.join(COMPILE_BACKENDS)}")
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    blocks = set(getattr(unet, "_repeated_blocks", None) or ())
    if not blocks:
        raise ValueError(f"regional compile: {type(unet).__name__} names no repeated blocks")
    if backend == "inductor" and str(unet.device).startswith("cuda"):
        import torch._inductor.config as inductor

        inductor.conv_1x1_as_mm = True  # the diffusers fast-diffusion recipe (SDXL's 1x1 convolutions as matmuls)
    kwargs: dict[str, Any] = {"backend": backend, "fullgraph": fullgraph, "dynamic": False}
    if mode != "default" and backend == "inductor":
        kwargs["mode"] = mode
    unet.compile_repeated_blocks(**kwargs)
    return compiled_regions(unet)


def compiled_regions(module) -> int:
    """How many submodules of ``module`` (itself included) are wrapped for torch.compile."""
    return sum(1 for m in module.modules() if getattr(m, "_compiled_call_impl", None) is not None)


def eager_while(compiled: bool):
    """A context in which compiled regions run eagerly (validation images: other shapes, no grad; compiling them would
    cost minutes for a few images). A no-op context when nothing is compiled."""
    import contextlib

    if not compiled:
        return contextlib.nullcontext()
    import torch

    return torch.compiler.set_stance("force_eager")


def to_channels_last(unet) -> None:
    """NHWC layout for the UNet's convolution weights (what cuDNN's fast kernels prefer); the step's inputs follow."""
    import torch

    unet.to(memory_format=torch.channels_last)


def to_device(tensor, device):
    """A CPU tensor onto ``device`` without a host sync: on CUDA through pinned memory with ``non_blocking`` (a copy
    from pageable memory waits for the GPU queue to drain, which is a sync inside the step); elsewhere ``.to``."""
    if str(device).startswith("cuda") and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def make_adamw(groups: list[dict], fused: bool, **kwargs) -> tuple[Any, str | None]:
    """``torch.optim.AdamW`` over ``groups``: ``fused=True`` (one kernel for all parameters' update; CUDA, and the CPU
    on torch >= 2.4) when asked, falling back to ``foreach`` with a note where this torch or device has no fused
    AdamW. Returns (optimizer, note or None)."""
    import torch

    if not fused:
        return torch.optim.AdamW(groups, **kwargs), None
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs), None
    except (RuntimeError, TypeError, ValueError) as exc:
        return (torch.optim.AdamW(groups, foreach=True, **kwargs),
                f"use_fused_adam: fused AdamW is not available here ({str(exc)[:120]}); using foreach AdamW")


# -- the batch-size finder ---------------------------------------------------------------------------------------------

def batch_candidates(effective: int) -> list[int]:
    """Micro-batch sizes that split ``effective`` (train_batch_size x gradient_accumulation_steps) exactly, largest
    first: the finder changes how the effective batch is split, never its size (so the learning rate still fits)."""
    return [b for b in range(effective, 0, -1) if effective % b == 0]


def pick_batch_size(effective: int, probe: Callable[[int], int], budget_bytes: float,
                    is_oom: Callable[[BaseException], bool] | None = None) -> tuple[int, int, list[dict]]:
    """The largest micro-batch dividing ``effective`` whose measured peak (``probe(batch)`` -> bytes: one forward and
    backward at that batch, peak memory reset before it) fits ``budget_bytes``; halving on out-of-memory works through
    the same list (an OOM counts as not fitting). Returns (micro-batch, gradient accumulation steps, what was tried:
    [{"batch", "peak_bytes" or None, "fits"}]). When nothing fits, batch 1 (the run will tell, with the estimate's
    suggestions)."""
    tried: list[dict] = []
    for batch in batch_candidates(effective):
        try:
            peak = probe(batch)
        except BaseException as exc:  # noqa: BLE001 - only out-of-memory is expected; anything else is re-raised
            if is_oom is None or not is_oom(exc):
                raise
            tried.append({"batch": batch, "peak_bytes": None, "fits": False})
            continue
        fits = peak <= budget_bytes
        tried.append({"batch": batch, "peak_bytes": int(peak), "fits": fits})
        if fits:
            return batch, effective // batch, tried
    return 1, effective, tried


def is_cuda_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def probe_peak(unet, batch: int, resolution: int, dtype, device, extra_bytes: int = 0) -> int:
    """Peak CUDA memory (bytes, allocated) of one forward + backward of ``unet`` (with its LoRA) on random SDXL inputs
    at ``batch`` x ``resolution``², plus ``extra_bytes`` (optimizer state the step will add). The gradients are
    dropped afterwards; nothing is trained."""
    import torch

    c = unet.config
    side = resolution // 8
    pooled_dim = c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    latents = torch.randn(batch, c.in_channels, side, side, device=device, dtype=dtype)
    emb = torch.randn(batch, 77, c.cross_attention_dim, device=device, dtype=dtype)
    cond = {"text_embeds": torch.randn(batch, pooled_dim, device=device, dtype=dtype),
            "time_ids": torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]] * batch, device=device,
                                     dtype=dtype)}
    t = torch.randint(0, 1000, (batch,), device=device)
    try:
        with torch.autocast(device.type if hasattr(device, "type") else str(device).split(":")[0], dtype=dtype,
                            enabled=dtype != torch.float32):
            pred = unet(latents, t, emb, added_cond_kwargs=cond, return_dict=False)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), latents.float())
        loss.backward()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) + extra_bytes
    finally:
        for p in unet.parameters():
            p.grad = None
        del latents, emb, cond
        torch.cuda.empty_cache()


def optimizer_state_bytes(params, eight_bit: bool) -> int:
    """What AdamW's state adds once it exists: two moments per trainable value (fp32, or ~1 byte each in 8 bits)."""
    n = sum(p.numel() for p in params)
    return n * (2 if eight_bit else 8)
