"""Where model weights come from, whether they are here, and loading them through one path.

A model reference (a string in Settings.models or typed by a user) is one of:

- a hub id, ``org/name`` or ``org/name@revision`` (loaded from the local Hugging Face cache, never fetched on load);
- a local diffusers / transformers / open_clip folder;
- a single ``.safetensors`` file (SDXL checkpoints as A1111/ComfyUI users keep them);
- ``scheme:name`` for assets that are not hub repos: ``torchvision:alexnet`` (LPIPS backbone),
  ``torch-fidelity:inception-v3-compat`` (FID Inception), ``rapidocr``, ``easyocr:en``.

``availability(ref)`` answers without network. Loaders call ``local_path(ref)`` first, so a missing model raises
``ModelUnavailable`` at once, naming the model and the remedy, instead of waiting on hub retries. Only ``.safetensors``
is accepted for user-supplied weights: pickle formats (.ckpt/.bin/.pt/.pth) can run code when loaded and are refused.
Downloading happens in one place, ``pull()`` (``workbench models pull``).
"""
from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.settings import Settings, get_settings

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle")
DEMO_MARKER = "WORKBENCH_DEMO_MODEL.txt"  # written into every tiny-kit folder

# Files torchvision / torch-fidelity keep in the torch hub checkpoint folder.
TORCH_HUB_FILES = {
    "torchvision:alexnet": "alexnet-owt-7be5be79.pth",
    "torchvision:vgg16": "vgg16-397923af.pth",
    "torchvision:squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
    "torch-fidelity:inception-v3-compat": "weights-inception-2015-12-05-6726825d.pth",
}
EASYOCR_FILES = ("craft_mlt_25k.pth", "english_g2.pth")

# What each default model is for and roughly what `pull` downloads.
DEFAULT_MODEL_INFO: dict[str, tuple[str, str]] = {
    "sdxl_base": ("SDXL base: generation and training", "~7 GB (fp16 weights)"),
    "vae": ("fp16-safe SDXL VAE", "~335 MB"),
    "clip_scorer": ("CLIP scores and the generation gate", "~1.7 GB"),
    "blip_itm": ("BLIP score (image-text matching)", "~1.8 GB"),
    "blip_captioner": ("captions for uncaptioned photos", "~1.9 GB"),
    "fid_inception": ("FID / KID features", "~92 MB"),
    "lpips_backbone": ("LPIPS backbone", "~233 MB"),
    "ocr_backend": ("logo legibility (OCR)", "ships with the package"),
    "preference": ("optional preference score (PickScore)", "~4 GB; pulled only when named"),
    "dinov2": ("product fidelity (DINO similarity) and FD-DINOv2", "~350 MB"),
    "segmenter": ("garment masks on busy backgrounds (matting needs none)", "~110 MB"),
    "video": ("spin videos (Stable Video Diffusion XT, image to video)", "~4.5 GB (fp16); pulled only when named"),
    "cutout": ("product cut-outs for scenes (BiRefNet; matting needs none)", "~900 MB; pulled only when named"),
    "ip_adapter": ("reference-photo conditioning for scenes (IP-Adapter SDXL)", "~3.4 GB; pulled only when named"),
}
OPTIONAL_MODELS = {"preference", "video", "cutout", "ip_adapter"}  # `models pull` without names leaves these out

# Which files to fetch per kind of hub repo: safetensors only, fp16 variants for SDXL.
SDXL_PATTERNS = ["*.json", "*.txt", "tokenizer*/*", "unet/diffusion_pytorch_model.fp16.safetensors",
                 "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
                 "text_encoder_2/model.fp16.safetensors"]
GENERIC_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]
# Stable Video Diffusion: the fp16 variants of its three weighted components (the repo also holds fp32 and .bin files)
SVD_PATTERNS = ["*.json", "*.txt", "unet/diffusion_pytorch_model.fp16.safetensors",
                "vae/diffusion_pytorch_model.fp16.safetensors", "image_encoder/model.fp16.safetensors"]


class ModelUnavailable(RuntimeError):
    """A model is not on this machine (or cannot be used); the message names it and says what to do."""

    def __init__(self, ref: str, reason: str, remedy: str):
        self.ref, self.reason, self.remedy = ref, reason, remedy
        super().__init__(f"model {ref!r} is not available: {reason}. {remedy}")


class UnsafeWeights(ModelUnavailable):
    """User-supplied weights in a pickle format: refused, because loading a pickle can run arbitrary code."""


@dataclass(frozen=True)
class ModelRef:
    raw: str
    kind: str  # hub | local_dir | single_file | pickle_file | torch_hub_file | rapidocr | easyocr
    repo_id: str = ""
    revision: str | None = None
    path: Path | None = None


@dataclass
class Availability:
    ref: str
    status: str  # available | missing | refused
    reason: str = ""
    remedy: str = ""
    local_path: str = ""
    name: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "available"


def parse_ref(ref: str) -> ModelRef:
    """Classify a reference. Raises ValueError for an empty or malformed one."""
    raw = (ref or "").strip()
    if not raw:
        raise ValueError("model reference is empty: give a hub id (org/name), a local folder or a .safetensors file")
    if raw in TORCH_HUB_FILES:
        return ModelRef(raw, "torch_hub_file")
    if raw == "rapidocr":
        return ModelRef(raw, "rapidocr")
    if raw.startswith("easyocr:"):
        return ModelRef(raw, "easyocr")
    path = Path(raw).expanduser()
    looks_local = raw.startswith(("/", "./", "../", "~")) or path.exists()
    if raw.lower().endswith(".safetensors"):
        return ModelRef(raw, "single_file", path=path)
    if raw.lower().endswith(PICKLE_SUFFIXES):
        return ModelRef(raw, "pickle_file", path=path)
    if looks_local:
        return ModelRef(raw, "local_dir", path=path)
    repo, _, revision = raw.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"model reference {raw!r} is neither an existing local path nor a hub id like 'org/name'")
    return ModelRef(raw, "hub", repo_id=repo, revision=revision or None)


def _setting_name(ref: str, settings: Settings) -> str | None:
    for field, value in settings.models.model_dump().items():
        if value == ref:
            return field
    return None


def _remedy(ref: str, name: str | None) -> str:
    setting = f"WORKBENCH_MODELS__{name.upper()}" if name else "the model setting"
    if ref.startswith("easyocr:"):
        return (f"Run `workbench models pull {name}`" if name else
                "Set WORKBENCH_MODELS__OCR_BACKEND to it and run `workbench models pull ocr_backend`") + (
                " where the internet is reachable, or copy craft_mlt_25k.pth and english_g2.pth into "
                f"{easyocr_dir()}.")
    target = f"workbench models pull {name}" if name else f"huggingface-cli download {ref}"
    return (f"Run `{target}` on a machine that reaches the Hugging Face hub (the cache can be copied to this one), "
            f"or point {setting} at a local folder or .safetensors file.")


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder, computed the way torch does, without importing torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def easyocr_dir() -> Path:
    return Path(os.environ.get("EASYOCR_MODULE_PATH", os.path.expanduser("~/.EasyOCR"))) / "model"


def _hub_snapshot(parsed: ModelRef) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(parsed.repo_id, revision=parsed.revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def _folder_weights(path: Path) -> tuple[list[Path], list[Path]]:
    files = [p for p in path.rglob("*") if p.is_file()]
    safe = [p for p in files if p.suffix == ".safetensors"]
    pickles = [p for p in files if p.suffix in PICKLE_SUFFIXES]
    return safe, pickles


def availability(ref: str, name: str | None = None, settings: Settings | None = None) -> Availability:
    """Is this model usable here, without touching the network? Never raises for a well-formed reference."""
    settings = settings or get_settings()
    name = name or _setting_name(ref, settings) or ""
    try:
        parsed = parse_ref(ref)
    except ValueError as exc:
        return Availability(ref, "missing", str(exc), "Fix the reference in the settings.", name=name)
    remedy = _remedy(ref, name or None)

    if parsed.kind == "pickle_file":
        return Availability(ref, "refused", f"{parsed.path.name} is a pickle format ({parsed.path.suffix}), which can "
                            "run code when loaded", "Convert it to .safetensors (e.g. with the safetensors "
                            "`convert` script on a trusted machine) and point the setting at that file.", name=name)
    if parsed.kind == "single_file":
        if parsed.path.is_file():
            return Availability(ref, "available", local_path=str(parsed.path), name=name)
        return Availability(ref, "missing", f"file {parsed.path} does not exist", "Check the path.", name=name)
    if parsed.kind == "local_dir":
        if not parsed.path.is_dir():
            return Availability(ref, "missing", f"folder {parsed.path} does not exist", "Check the path.", name=name)
        safe, pickles = _folder_weights(parsed.path)
        if pickles and not safe:
            return Availability(ref, "refused", f"folder {parsed.path} holds only pickle weights "
                                f"({', '.join(sorted({p.suffix for p in pickles}))})",
                                "Convert the weights to .safetensors; pickle files are never loaded.", name=name)
        return Availability(ref, "available", local_path=str(parsed.path), name=name)
    if parsed.kind == "hub":
        snapshot = _hub_snapshot(parsed)
        if snapshot is None:
            rev = f" at revision {parsed.revision}" if parsed.revision else ""
            return Availability(ref, "missing", f"not in the local Hugging Face cache{rev}", remedy, name=name)
        return Availability(ref, "available", local_path=str(snapshot), name=name)
    if parsed.kind == "torch_hub_file":
        path = torch_hub_checkpoints() / TORCH_HUB_FILES[ref]
        if path.is_file():
            return Availability(ref, "available", local_path=str(path), name=name)
        return Availability(ref, "missing", f"{path.name} is not in {path.parent}", remedy, name=name)
    if parsed.kind == "rapidocr":
        if importlib.util.find_spec("rapidocr") is None:
            return Availability(ref, "missing", "the rapidocr package is not installed",
                                "pip install rapidocr onnxruntime", name=name)
        return Availability(ref, "available", reason="ships its ONNX models", name=name)
    if parsed.kind == "easyocr":
        if importlib.util.find_spec("easyocr") is None:
            return Availability(ref, "missing", "the easyocr package is not installed", "pip install easyocr",
                                name=name)
        missing = [f for f in EASYOCR_FILES if not (easyocr_dir() / f).is_file()]
        if missing:
            return Availability(ref, "missing", f"{', '.join(missing)} not in {easyocr_dir()}", remedy, name=name)
        return Availability(ref, "available", local_path=str(easyocr_dir()), name=name)
    raise AssertionError(parsed.kind)


def local_path(ref: str, name: str | None = None) -> Path:
    """The local path of a usable model, or ModelUnavailable/UnsafeWeights with the reason and the remedy."""
    a = availability(ref, name)
    if a.status == "refused":
        raise UnsafeWeights(ref, a.reason, a.remedy)
    if a.status != "available":
        raise ModelUnavailable(ref, a.reason, a.remedy)
    return Path(a.local_path) if a.local_path else Path(ref)


def is_demo_model(ref: str | None) -> bool:
    """True for tiny-kit models (random or demo-trained toy weights), which UIs must label as demo models."""
    if not ref:
        return False
    path = Path(ref).expanduser()
    folder = path if path.is_dir() else path.parent
    return (folder / DEMO_MARKER).is_file() or (folder.parent / DEMO_MARKER).is_file()


def native_size(ref: str | None, default: int = 1024) -> int:
    """The image side a diffusers model folder was built for: its UNet's ``sample_size`` (latent pixels) times the
    VAE's downscale (2 per VAE block after the first); for a single file, its ``<file>.config/`` folder's. ``default``
    (SDXL's 1024) when the configs cannot be read (a hub id, a single file without configs, a missing folder)."""
    if not ref:
        return default
    folder = Path(ref).expanduser()
    if folder.is_file():  # a single file: its configs beside it (workbench.models.single_file)
        folder = Path(str(folder) + ".config")
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return default


def list_models(settings: Settings | None = None, record: bool = True) -> list[Availability]:
    """Every default model with its availability; also stored in the model_cache table for the UI."""
    settings = settings or get_settings()
    rows = [availability(ref, name, settings) for name, ref in settings.models.model_dump().items()]
    if record:
        from workbench.db import ModelCacheState, session_scope, utcnow

        with session_scope(settings) as s:
            for a in rows:
                s.merge(ModelCacheState(ref=a.ref, name=a.name, status=a.status, reason=a.reason,
                                        local_path=a.local_path, checked_at=utcnow()))
    return rows


# -- downloading ------------------------------------------------------------------------------------------------

@dataclass
class PullResult:
    name: str
    ref: str
    ok: bool
    message: str


def _pull_one(name: str, ref: str, progress: Callable[[str], None]) -> str:
    parsed = parse_ref(ref)
    if parsed.kind == "hub":
        from huggingface_hub import snapshot_download

        patterns = SDXL_PATTERNS if name == "sdxl_base" else GENERIC_PATTERNS
        if name == "vae":
            patterns = ["*.json", "diffusion_pytorch_model.safetensors"]
        if name == "video":
            patterns = SVD_PATTERNS
        if name in ("segmenter", "cutout"):  # BiRefNet/RMBG-style repos ship their architecture as .py (run only
            patterns = GENERIC_PATTERNS + ["*.py"]  # when trusted)
        if name == "ip_adapter":  # the SDXL adapter and its ViT-bigG image encoder only (models.ip_adapter's layout)
            patterns = ["sdxl_models/ip-adapter_sdxl.safetensors", "sdxl_models/image_encoder/*"]
        path = snapshot_download(parsed.repo_id, revision=parsed.revision, allow_patterns=patterns)
        return f"in the cache at {path}"
    if parsed.kind == "torch_hub_file":
        import torch

        if ref.startswith("torchvision:"):
            import torchvision

            getattr(torchvision.models, ref.split(":", 1)[1])(weights="DEFAULT", progress=True)
        else:
            url = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                   + TORCH_HUB_FILES[ref])
            torch.hub.load_state_dict_from_url(url, progress=True, weights_only=True)
        return f"in {torch_hub_checkpoints()}"
    if parsed.kind == "easyocr":
        import easyocr

        easyocr.Reader([ref.split(":", 1)[1]], gpu=False, download_enabled=True, verbose=True)
        return f"in {easyocr_dir()}"
    if parsed.kind == "rapidocr":
        return "nothing to download (ships its models)"
    return "a local path: nothing to download"


def pull(names: list[str] | None = None, settings: Settings | None = None,
         progress: Callable[[str], None] = print) -> list[PullResult]:
    """Download the named default models (all when empty) into the local caches. Offline, each fails with a clear
    message; nothing half-downloaded is reported as available."""
    settings = settings or get_settings()
    refs = settings.models.model_dump()
    unknown = [n for n in names or [] if n not in refs]
    if unknown:
        raise ValueError(f"unknown model name(s) {', '.join(unknown)}; known: {', '.join(refs)}")
    results = []
    for name in names or [n for n in refs if n not in OPTIONAL_MODELS]:
        ref = refs[name]
        progress(f"{name}: {ref} …")
        try:
            where = _pull_one(name, ref, progress)
            results.append(PullResult(name, ref, True, where))
        except Exception as exc:  # noqa: BLE001 - each model fails on its own, with the cause
            hint = " (HF_HUB_OFFLINE is set: unset it where the hub is reachable)" if os.environ.get(
                "HF_HUB_OFFLINE") == "1" else ""
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            results.append(PullResult(name, ref, False, f"{type(exc).__name__}: {first}{hint}"))
        progress(f"{name}: {'ok, ' if results[-1].ok else 'FAILED, '}{results[-1].message}")
    list_models(settings)
    return results


# -- loaders ----------------------------------------------------------------------------------------------------

def _dtype(dtype: Any):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(table)}")
    return table[dtype]


def load_vae(ref: str, dtype: Any = "fp32"):
    path = local_path(ref)
    from diffusers import AutoencoderKL

    if path.is_file():
        return AutoencoderKL.from_single_file(str(path), dtype=_dtype(dtype))
    sub = path / "vae" if (path / "vae" / "config.json").is_file() else path
    return AutoencoderKL.from_pretrained(str(sub), dtype=_dtype(dtype), use_safetensors=True)


def load_sdxl_pipeline(ref: str, vae_ref: str | None = None, dtype: Any = "fp32", device: str | None = None):
    """StableDiffusionXLPipeline from a hub id (cached), a local diffusers folder or a single .safetensors file."""
    path = local_path(ref)  # first: a missing model must fail at once, not after importing diffusers
    from diffusers import StableDiffusionXLPipeline

    kwargs: dict[str, Any] = {"dtype": _dtype(dtype)}
    if vae_ref:
        kwargs["vae"] = load_vae(vae_ref, dtype)
    if path.is_file():
        config = single_file_config(ref, path)
        try:
            pipe = StableDiffusionXLPipeline.from_single_file(str(path), config=str(config), local_files_only=True,
                                                              **kwargs)
        except (ValueError, RuntimeError) as exc:  # weights of another size than the configs
            from workbench.models.single_file import SHIPPED_CONFIGS

            if config != SHIPPED_CONFIGS:
                raise
            raise ModelUnavailable(ref, f"{path.name} does not match the shipped SDXL 1.0 base configs "
                                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})",
                                   f"Put the configs of its architecture (a diffusers folder without weights) in "
                                   f"{path.name}.config/ beside the file.") from exc
    else:
        pipe = StableDiffusionXLPipeline.from_pretrained(str(path), use_safetensors=True, local_files_only=True,
                                                         **kwargs)
    if device:
        pipe.to(device)
    return pipe


def single_file_config(ref: str, path: Path) -> Path:
    """The local diffusers config folder a single-file checkpoint loads with (never the hub): ``<file>.config/``
    beside it (``workbench.models.single_file``), else the SDXL 1.0 base configs shipped in the package
    (``workbench/models/sdxl_configs``, written by ``scripts/make_sdxl_configs.py``). No hub and no ``sdxl_base``
    folder are needed: a real SDXL file loads with the shipped configs; another architecture needs its own
    ``<file>.config/``."""
    from workbench.models.single_file import CONFIG_SUFFIX, SHIPPED_CONFIGS, config_folder

    beside = config_folder(path)
    if beside is not None:
        return beside
    if (SHIPPED_CONFIGS / "model_index.json").is_file():
        return SHIPPED_CONFIGS
    raise ModelUnavailable(ref, f"no configs for the single file (no {path.name}{CONFIG_SUFFIX}/ beside it, and the "
                                f"shipped SDXL configs are missing from {SHIPPED_CONFIGS})",
                           f"Reinstall the package (or run scripts/make_sdxl_configs.py), or put the SDXL configs "
                           f"(model_index.json, component configs, tokenizers) in {path.name}{CONFIG_SUFFIX}/ "
                           "beside the file.")


def load_svd_pipeline(ref: str, dtype: Any = "fp32", device: str | None = None):
    """StableVideoDiffusionPipeline (image to video) from a cached hub repo or a local diffusers folder. The fp16
    weight files (what ``pull`` fetches) are loaded when the folder has them. Never downloads."""
    path = local_path(ref)
    from diffusers import StableVideoDiffusionPipeline

    variant = "fp16" if (path / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file() else None
    pipe = StableVideoDiffusionPipeline.from_pretrained(str(path), dtype=_dtype(dtype), variant=variant,
                                                        use_safetensors=True, local_files_only=True)
    if device:
        pipe.to(device)
    return pipe


def load_open_clip(ref: str, device: str = "cpu"):
    """(model, preprocess, tokenizer) from an open_clip folder (open_clip_config.json + safetensors) or a cached hub
    repo of that layout. Never downloads."""
    path = local_path(ref)
    import open_clip

    if not (path / "open_clip_config.json").is_file():
        raise ModelUnavailable(ref, f"{path} has no open_clip_config.json", "Use an open_clip model repo or folder.")
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{path}", device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    return model, preprocess, tokenizer


def load_blip_itm(ref: str, device: str = "cpu"):
    """(BlipForImageTextRetrieval, BlipProcessor): the image-text matching head used for the BLIP score."""
    path = local_path(ref)
    from transformers import BlipProcessor, BlipForImageTextRetrieval

    model = BlipForImageTextRetrieval.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
    return model.to(device).eval(), BlipProcessor.from_pretrained(str(path), local_files_only=True)


def load_blip_captioner(ref: str, device: str = "cpu"):
    """(BlipForConditionalGeneration, BlipProcessor) for captioning."""
    path = local_path(ref)
    from transformers import BlipProcessor, BlipForConditionalGeneration

    model = BlipForConditionalGeneration.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
    return model.to(device).eval(), BlipProcessor.from_pretrained(str(path), local_files_only=True)


def load_feature_extractor(ref: str):
    """Image features for FID/KID: the real Inception (torch-fidelity weights) or a tiny-kit extractor folder."""
    path = local_path(ref)
    if ref == "torch-fidelity:inception-v3-compat":
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    from workbench.models.tiny import TinyFeatureExtractor

    return TinyFeatureExtractor.from_pretrained(path)
