"""Before launch: peak GPU memory and time per step of a training config, from the measured table, checked against
the GPU.

The table (``workbench/train/measured.json``) is written from ``bench/train_sdxl_lora.py`` runs on a GPU: full-size
SDXL-architecture UNet with random weights, 1024x1024, rank 16. A config that matches a measured row gets that row's
numbers ("measured"). Otherwise the nearest row is used and the difference is stated: more samples per step
(batch x pixels) add activation memory at the rate measured between batch 1 and batch 2 and time in proportion (an upper
bound: batch 2 measured no slower than batch 1 on an H100, the GPU is not saturated at batch 1). Some rows hold only an
upper bound on memory ("at most"); the estimate says so. A step with gradient_accumulation_steps N runs N
forward/backward passes: N x the time of a one-pass row (a row records its own count). Compiled rows
(``torch_compile``, measured with fused AdamW and channels_last) match compiled configs; older rows without the
field were eager.

The table holds only for full-size SDXL. The model's UNet parameters are counted first (safetensors headers, or its
config under ``accelerate.init_empty_weights``): a UNet that is not SDXL-sized (the demo and tiny models: 1-3 M
parameters, not 2,567 M) never gets a GPU row. The demo models get the CPU row (measured on the tiny kit), scaled by
parameters x samples x pixels; any other small or unusual model gets no figure and a note that no measured row applies.

    est = estimate(cfg)                  # detects the GPU (none on a CPU machine)
    est = estimate(cfg, gpu_gib=24)      # plan for a 24 GiB card
    est.fits, est.peak_gib, est.s_per_step, est.suggestions
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.train.config import TrainConfig

MEASURED = Path(__file__).with_name("measured.json")
SDXL_UNET_PARAMETERS = 2_567_463_684  # stabilityai/stable-diffusion-xl-base-1.0's UNet (NOTES: 2.567 B)
SDXL_TOLERANCE = 0.1  # a UNet within 10% of that is SDXL-sized (fine-tunes and merges keep the architecture)
HEADROOM = 0.92  # the CUDA context, allocator fragmentation and the desktop take the rest of the card
# Candidate changes, cheapest in quality first; the warning names those that make the run fit.
REMEDIES: list[tuple[str, Any, str]] = [
    ("gradient_checkpointing", True,
     "gradient_checkpointing: true (about 2x slower steps, far less activation memory)"),
    ("use_8bit_adam", True, "use_8bit_adam: true (optimizer state in 8 bits)"),
    ("mixed_precision", "bf16", "mixed_precision: bf16 (half the weight memory of fp32)"),
    ("train_batch_size", 1, "train_batch_size: 1 with gradient_accumulation_steps for the same effective batch"),
    ("random_flip", False, "random_flip: false (lets latents be cached: the VAE leaves the GPU)"),
    ("resolution", 768, "resolution: 768"),
]


@functools.lru_cache(maxsize=1)
def measured() -> dict[str, Any]:
    return json.loads(MEASURED.read_text())


@dataclass
class Gpu:
    name: str
    total_gib: float


def detect_gpu() -> Gpu | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return Gpu(props.name, props.total_memory / 2**30)


@dataclass
class Estimate:
    s_per_step: float | None
    peak_gib: float | None
    peak_is_bound: bool  # peak_gib is an upper bound ("at most")
    basis: str  # "measured: <row>" or "scaled from <row>: ..." or the CPU demo line
    device: str  # where the table was measured
    gpu: Gpu | None = None
    fits: bool | None = None  # None: no GPU to check against (or no memory figure)
    total_s: float | None = None
    notes: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.peak_gib is not None:
            parts.append(f"peak GPU memory {'at most ' if self.peak_is_bound else '~'}{self.peak_gib:.1f} GiB")
        if self.s_per_step is not None:
            parts.append(f"{self.s_per_step:.2f} s/step")
        if self.total_s is not None:
            parts.append(f"~{self.total_s:.0f} s for the run" if self.total_s < 120 else
                         f"~{self.total_s / 60:.0f} min for the run")
        return ", ".join(parts) + f" ({self.basis})" if parts else self.basis


def _key(cfg: TrainConfig) -> dict[str, Any]:
    cached = cfg.cache_latents and not cfg.random_flip and not cfg.train_text_encoder
    return {"mixed_precision": cfg.mixed_precision, "gradient_checkpointing": cfg.gradient_checkpointing,
            "optimizer": "adamw8" if cfg.use_8bit_adam else "adamw", "cached": cached,
            "batch": cfg.train_batch_size * (2 if cfg.with_prior_preservation else 1), "resolution": cfg.resolution,
            "compile": cfg.torch_compile, "gradient_accumulation_steps": cfg.gradient_accumulation_steps}


_WEIGHTS = {"gradient_checkpointing": 8, "mixed_precision": 4, "cached": 2, "optimizer": 2, "compile": 2, "batch": 1,
            "resolution": 1, "gradient_accumulation_steps": 0.5}
# What a row written before a field existed was measured with (the 2026-11-23 table: eager, one pass per step).
_ROW_DEFAULTS = {"compile": False, "gradient_accumulation_steps": 1, "fused_adam": False, "channels_last": False}


def _field(row: dict[str, Any], k: str) -> Any:
    return row.get(k, _ROW_DEFAULTS.get(k))


def _distance(key: dict[str, Any], row: dict[str, Any]) -> float:
    return sum(w for k, w in _WEIGHTS.items() if key[k] != _field(row, k))


def _measured_rows(table: dict[str, Any]) -> dict[str, dict]:
    """Rows with a time (a bench row that failed or was skipped records why, and no figures)."""
    return {name: row for name, row in table["rows"].items() if row.get("s_per_step") is not None}


def _activation_per_sample_gib(rows: dict[str, dict]) -> float:
    """Activation memory of one 1024x1024 sample without checkpointing: the eager bf16 AdamW cached rows at batch 2
    and batch 1 (the difference; the batch-1 figure may be an upper bound, which makes this a lower bound)."""
    def peak(batch):
        for row in rows.values():
            fields = (row.get("mixed_precision"), row.get("gradient_checkpointing"), row.get("optimizer"),
                      row.get("cached"), row.get("batch"), row.get("resolution"), _field(row, "compile"),
                      _field(row, "gradient_accumulation_steps"))
            if fields == ("bf16", False, "adamw", True, batch, 1024, False, 1):
                if row.get("peak_GiB", row.get("peak_GiB_max")):
                    return row.get("peak_GiB", row.get("peak_GiB_max"))
        return None

    hi, lo = peak(2), peak(1)
    return max(0.0, hi - lo) if hi and lo else 7.0


def _base(cfg: TrainConfig) -> str:
    from workbench.settings import get_settings

    return cfg.pretrained_model_name_or_path or get_settings().models.sdxl_base


def _is_demo(cfg: TrainConfig) -> bool:
    from workbench.models.sources import is_demo_model

    return is_demo_model(_base(cfg))


@functools.lru_cache(maxsize=32)
def _count(ref: str, stamp: float) -> int | None:
    import math

    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".safetensors":  # a single-file checkpoint (A1111 / ComfyUI layout)
        weights, prefix = [path], "model.diffusion_model."
    else:
        weights, prefix = sorted((path / "unet").glob("*.safetensors")), ""
    if weights:
        from safetensors import safe_open

        total = 0
        for file in weights:  # headers only: shapes, not tensors
            with safe_open(str(file), "pt") as f:
                total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(prefix))
        return total or None
    config = path / "unet" / "config.json"
    if not config.is_file():
        return None
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():  # parameters on the meta device: no memory, no weights needed
        unet = UNet2DConditionModel.from_config(json.loads(config.read_text()))
    return sum(p.numel() for p in unet.parameters())


def unet_parameters(ref: str) -> int | None:
    """Parameters of the UNet of a local model (diffusers folder or single .safetensors file); None for a hub id or
    a folder without readable UNet weights or config."""
    path = Path(ref).expanduser()
    if not ref or not path.exists():
        return None
    try:
        return _count(str(path.resolve()), path.stat().st_mtime)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _millions(n: float) -> str:
    return f"{n / 1e6:,.1f} M" if n < 1e8 else f"{n / 1e6:,.0f} M"


def _small_model(cfg: TrainConfig, params: int | None, table: dict[str, Any], gpu: Gpu | None,
                 steps: int | None) -> Estimate:
    """A UNet that is not SDXL-sized: the demo models scale the CPU row; nothing else has a measured row."""
    demo = table["cpu_demo"]
    size = (f"its UNet has {_millions(params)} parameters, full-size SDXL {_millions(SDXL_UNET_PARAMETERS)}"
            if params else "its UNet parameters could not be counted")
    if not _is_demo(cfg):
        return Estimate(s_per_step=None, peak_gib=None, peak_is_bound=False, device="", gpu=gpu,
                        basis=f"no measured row applies: {size}",
                        notes=["the GPU table was measured on full-size SDXL only, so it gives no figure for this "
                               "model; measure it with bench/train_sdxl_lora.py (docs/PERFORMANCE.md)"])
    params = params or demo["unet_parameters"]
    row_work = demo["unet_parameters"] * demo["batch"] * demo["resolution"] ** 2
    work = (params * cfg.train_batch_size * (2 if cfg.with_prior_preservation else 1) * cfg.resolution ** 2
            * cfg.gradient_accumulation_steps)  # the CPU row: one forward/backward per step
    s = demo["s_per_step"] * work / row_work
    notes = [f"demo model: {size}; no GPU memory figure (it trains on CPU)",
             f"the CPU time comes from {demo.get('device', 'CPU cores')} with nothing else running; a busy machine is "
             "slower (2.7 s/step was seen against 0.06): measure_step() times this machine, and the run corrects its "
             "time left from its real step times"]
    if abs(work / row_work - 1) > 1e-6:
        notes.append(f"time scaled from the CPU row ({_millions(demo['unet_parameters'])} parameters, batch "
                     f"{demo['batch']}, {demo['resolution']} px) by parameters x samples x pixels x passes "
                     f"({work / row_work:.2f}x)")
    return Estimate(s_per_step=round(s, 4), peak_gib=None, peak_is_bound=False, device=demo.get("device", "CPU"),
                    basis="tiny demo model: runs on CPU, no GPU needed", gpu=gpu, fits=True, notes=notes,
                    total_s=s * steps if steps else None)


def estimate(cfg: TrainConfig, gpu_gib: float | None = None, gpu: Gpu | None = None, steps: int | None = None,
             suggest: bool = True) -> Estimate:
    table = measured()
    if gpu is None:
        gpu = Gpu(f"planned {gpu_gib:g} GiB GPU", gpu_gib) if gpu_gib else detect_gpu()
    steps = steps or cfg.max_train_steps
    params = unet_parameters(_base(cfg))
    if _is_demo(cfg) or (params is not None and abs(params / SDXL_UNET_PARAMETERS - 1) > SDXL_TOLERANCE):
        return _small_model(cfg, params, table, gpu, steps)
    key = _key(cfg)
    rows = _measured_rows(table)
    name, row = min(rows.items(), key=lambda kv: (_distance(key, kv[1]), kv[0]))
    notes: list[str] = []
    diffs = [k for k in _WEIGHTS if key[k] != _field(row, k)]
    # An optimizer step runs gradient_accumulation_steps forward/backward passes; the row's time covers its own count.
    s = row["s_per_step"] * key["gradient_accumulation_steps"] / _field(row, "gradient_accumulation_steps")
    if key["gradient_accumulation_steps"] != _field(row, "gradient_accumulation_steps"):
        notes.append(f"{key['gradient_accumulation_steps']} forward/backward passes per step: the row's time per pass "
                     f"x {key['gradient_accumulation_steps']}")
    peak = row.get("peak_GiB", row.get("peak_GiB_max"))
    bound = "peak_GiB" not in row
    work = (key["batch"] * key["resolution"] ** 2) / (row["batch"] * row["resolution"] ** 2)
    if work > 1:
        s *= work
        peak += _activation_per_sample_gib(rows) * row["batch"] * (work - 1)
        notes.append(f"{work:.2f}x the samples x pixels of the measured row: time scaled in proportion (an upper "
                     "bound), activation memory added at the measured per-sample rate")
    if key["mixed_precision"] == "no":
        peak *= 2
        s *= 2
        notes.append("full precision (fp32) was not measured: memory and time doubled from the bf16 row")
    if cfg.train_text_encoder:
        peak += 1.6  # the two text encoders (818 M parameters) in 16 bit stay resident, plus their LoRA grads
        notes.append("train_text_encoder: both text encoders stay on the GPU (+~1.6 GiB)")
    basis = (f"measured: {name}" if not diffs and not notes else
             f"nearest measured row {name} (differs in {', '.join(diffs) or 'precision'})")
    if key["compile"] and _field(row, "compile"):
        missing = [flag for flag, field in (("use_fused_adam", "fused_adam"), ("channels_last", "channels_last"))
                   if _field(row, field) and not getattr(cfg, flag)]
        if missing:
            notes.append(f"the compiled row was measured with {' and '.join(missing)} on as well")
    est = Estimate(s_per_step=round(s, 3), peak_gib=round(peak, 2), peak_is_bound=bound, basis=basis,
                   device=table.get("device", ""), gpu=gpu, notes=notes,
                   total_s=s * steps if steps else None)
    if gpu is not None:
        budget = gpu.total_gib * HEADROOM
        est.fits = peak <= budget
        if not est.fits and suggest:
            est.suggestions = _remedies(cfg, gpu, budget)
        if bound and est.fits:
            est.notes.append("the memory figure is an upper bound, so the run fits")
    return est


def _remedies(cfg: TrainConfig, gpu: Gpu, budget: float) -> list[str]:
    """Single changes that make the config fit, then pairs; described with the option names."""
    singles = [(n, v, text) for n, v, text in REMEDIES if getattr(cfg, n) != v]
    found = []
    for n, v, text in singles:
        est = estimate(cfg.model_copy(update={n: v}), gpu=gpu, suggest=False)
        if est.peak_gib is not None and est.peak_gib <= budget:
            found.append(f"{text}: ~{est.peak_gib:.1f} GiB")
    if found:
        return found
    for i, (n1, v1, t1) in enumerate(singles):
        for n2, v2, t2 in singles[i + 1:]:
            est = estimate(cfg.model_copy(update={n1: v1, n2: v2}), gpu=gpu, suggest=False)
            if est.peak_gib is not None and est.peak_gib <= budget:
                found.append(f"{t1} and {t2}: ~{est.peak_gib:.1f} GiB")
    return found or [f"no measured combination fits {gpu.total_gib:.0f} GiB: use a larger GPU"]


def describe(est: Estimate) -> str:
    """Multi-line text for the CLI."""
    lines = [f"estimate: {est.summary()}"] + ([f"table measured on: {est.device}"] if est.device else [])
    if est.gpu is None:
        lines.append("GPU: none detected (full-size SDXL training needs a CUDA GPU; the demo model trains on CPU)")
    else:
        verdict = {True: "fits", False: "does NOT fit", None: "unknown"}[est.fits]
        lines.append(f"GPU: {est.gpu.name}, {est.gpu.total_gib:.0f} GiB: {verdict}")
    lines += [f"note: {n}" for n in est.notes]
    if est.suggestions:
        lines.append("to fit, change:")
        lines += [f"  - {s}" for s in est.suggestions]
    return "\n".join(lines)


# -- on this machine: a short measurement before launch, and the ETA as real steps come in ------------------------

MEASURABLE_PARAMETERS = 200_000_000  # a UNet this small trains a few steps on CPU in seconds; SDXL (2.6 B) does not


def measure_step(cfg: TrainConfig, steps: int = 3, device: str = "cpu") -> float | None:
    """Seconds per optimizer step of this config's UNet with its LoRA on this machine, now (its load included): the
    median of ``steps`` forward + backward + AdamW steps on random latents at the config's batch and resolution, after
    one warm-up step. The weights are random (time does not depend on their values), so only the UNet's config is
    read. Leaves out what the run adds per step (data, text encoders when they train), so it is a lower bound; the run
    view corrects the ETA from the real step times. None for a model with no readable UNet config or one too large to
    try here (full-size SDXL: minutes per step on CPU)."""
    import statistics
    import time

    ref = Path(_base(cfg)).expanduser()
    config = ref / "unet" / "config.json"
    params = unet_parameters(str(ref))
    if not config.is_file() or params is None or params > MEASURABLE_PARAMETERS:
        return None
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    from workbench.train.script import UNET_TARGETS

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(json.loads(config.read_text())).to(device)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, init_lora_weights="gaussian",
                                target_modules=UNET_TARGETS))
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    trained = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=cfg.learning_rate)
    c = unet.config
    batch = cfg.train_batch_size * (2 if cfg.with_prior_preservation else 1)
    side = cfg.resolution // 8
    pooled_dim = c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim
    latents = torch.randn(batch, c.in_channels, side, side, device=device)
    emb = torch.randn(batch, 77, c.cross_attention_dim, device=device)
    cond = {"text_embeds": torch.randn(batch, pooled_dim, device=device),
            "time_ids": torch.tensor([[cfg.resolution, cfg.resolution, 0, 0, cfg.resolution, cfg.resolution]] * batch,
                                     dtype=torch.float32, device=device)}
    times = []
    for _ in range(steps * cfg.gradient_accumulation_steps + 1):
        start = time.perf_counter()
        t = torch.randint(0, 1000, (batch,), device=device)
        pred = unet(latents, t, emb, added_cond_kwargs=cond, return_dict=False)[0]
        torch.nn.functional.mse_loss(pred, latents).backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    steady = times[1:]  # the first pays for allocation and warm-up
    per_micro = statistics.median(steady)
    return round(per_micro * cfg.gradient_accumulation_steps, 4)


@dataclass
class Eta:
    """Time left of a run, and where the figure comes from."""
    s_per_step: float | None
    remaining_s: float | None
    measured_steps: int  # real steps the figure rests on (0: the estimate made before launch, or unknown)
    basis: str

    def text(self) -> str:
        if self.remaining_s is None:
            return "unknown until the first steps"
        return duration_text(self.remaining_s)


def duration_text(seconds: float) -> str:
    """``~45 s``, ``~3 min``, ``~1.5 h``."""
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def corrected_eta(step_seconds: list[float], step: int, total: int | None, prior_s_per_step: float | None = None,
                  window: int = 20) -> Eta:
    """The ETA of a run at ``step`` of ``total``: from the real step times once there are any (the median of the last
    ``window``; the first step, which pays for warm-up, left out once there are others), else from the estimate made
    before launch (``prior_s_per_step``), else unknown. So an estimate that was off (0.06 s/step estimated, 2.7 s
    measured) is replaced by the measured pace at the first steps."""
    import statistics

    if total is None or total <= 0:
        return Eta(None, None, 0, "the run has not started")
    remaining = max(0, total - step)
    times = [float(s) for s in step_seconds if s is not None and s == s and s >= 0]
    steady = times[1:] if len(times) > 1 else times
    if steady:
        recent = steady[-window:]
        pace = statistics.median(recent)
        return Eta(round(pace, 4), pace * remaining, len(recent), f"from the last {len(recent)} steps' times")
    if prior_s_per_step is not None:
        return Eta(prior_s_per_step, prior_s_per_step * remaining, 0, "the estimate made before launch")
    return Eta(None, None, 0, "unknown until the first steps")
