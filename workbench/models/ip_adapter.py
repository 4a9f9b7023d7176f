"""IP-Adapter for SDXL: condition generation on a reference photo (the SKU's own photo) besides the prompt.

    info = load_ip_adapter(pipe, settings.models.ip_adapter, scale=0.6)   # h94/IP-Adapter, sdxl_models/...
    pipe(prompt=..., ip_adapter_image=photo)                               # any SDXL pipeline built on it
    set_ip_adapter_scale(pipe, 0.0)                                        # 0: the plain pipeline's output

Real weights: the published ``h94/IP-Adapter`` repo, ``sdxl_models/ip-adapter_sdxl.safetensors`` with its image
encoder ``sdxl_models/image_encoder`` (OpenCLIP ViT-bigG, a ``CLIPVisionModelWithProjection``), fetched by
``workbench models pull ip_adapter`` and loaded from the local cache through diffusers' ``load_ip_adapter`` (never
downloads here). A local folder in the same layout works too.

The tiny stand-in (``save_tiny_ip_adapter``) writes that layout in diffusers' IP-Adapter format: one safetensors file
whose keys are ``image_proj.proj.weight|bias``, ``image_proj.norm.weight|bias`` (the image projection: CLIP image
embedding -> 4 extra cross-attention tokens) and ``ip_adapter.<i>.to_k_ip.weight`` / ``ip_adapter.<i>.to_v_ip.weight``
for every cross-attention layer (i = 1, 3, 5, ... in the UNet's attention-processor order), plus a tiny
CLIPVisionModelWithProjection in ``image_encoder/``. It loads through the same ``load_ip_adapter`` call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBFOLDER = "sdxl_models"
WEIGHT_NAME = "ip-adapter_sdxl.safetensors"
IMAGE_ENCODER = "image_encoder"  # inside SUBFOLDER (diffusers resolves a bare name relative to it)
TINY_PROJECTION = 32  # the tiny image encoder's embedding size


@dataclass(frozen=True)
class IpAdapterInfo:
    ref: str
    weight: str  # "<subfolder>/<weight file>"
    scale: float
    demo: bool = False

    def provenance(self) -> dict[str, Any]:
        return {"ref": self.ref, "weight": self.weight, "scale": self.scale, "demo": self.demo}


def check_scale(scale: float) -> float:
    scale = float(scale)
    if not 0.0 <= scale <= 2.0:
        raise ValueError(f"IP-Adapter scale {scale} must be between 0 and 2 (0: no influence, ~0.5-0.8 usual)")
    return scale


def has_ip_adapter(pipe: Any) -> bool:
    return getattr(pipe.unet.config, "encoder_hid_dim_type", None) == "ip_image_proj"


def set_ip_adapter_scale(pipe: Any, scale: float) -> None:
    pipe.set_ip_adapter_scale(check_scale(scale))


def load_ip_adapter(pipe: Any, ref: str, scale: float = 0.6, subfolder: str = SUBFOLDER,
                    weight_name: str = WEIGHT_NAME) -> IpAdapterInfo:
    """Load the IP-Adapter ``ref`` (hub id in the local cache, or a folder of that layout) into ``pipe`` (any SDXL
    pipeline of diffusers: text-to-image or inpainting; components shared with others see it too) at ``scale``.
    Raises ModelUnavailable (the model and the remedy) when its files are not here."""
    from workbench.models.sources import ModelUnavailable, is_demo_model, local_path

    check_scale(scale)
    path = local_path(ref, "ip_adapter")
    weights = path / subfolder / weight_name
    encoder = path / subfolder / IMAGE_ENCODER / "config.json"
    if not weights.is_file() or not encoder.is_file():
        missing = weights if not weights.is_file() else encoder.parent
        raise ModelUnavailable(ref, f"{missing.relative_to(path)} is not in {path}",
                               "Run `workbench models pull ip_adapter` where the Hugging Face hub is reachable (it "
                               f"fetches {subfolder}/{weight_name} and {subfolder}/{IMAGE_ENCODER}/).")
    if has_ip_adapter(pipe):
        pipe.unload_ip_adapter()
    pipe.load_ip_adapter(str(path), subfolder=subfolder, weight_name=weight_name, image_encoder_folder=IMAGE_ENCODER,
                         local_files_only=True)
    pipe.set_ip_adapter_scale(scale)
    return IpAdapterInfo(ref=ref, weight=f"{subfolder}/{weight_name}", scale=float(scale),
                         demo=is_demo_model(str(path)))


# -- the tiny stand-in ----------------------------------------------------------------------------------------------

def tiny_ip_adapter_state_dict(unet: Any, clip_dim: int = TINY_PROJECTION, seed: int = 0) -> dict[str, Any]:
    """Random weights in diffusers' IP-Adapter safetensors layout, sized for ``unet`` (see the module docstring)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    cross = unet.config.cross_attention_dim
    state: dict[str, Any] = {
        "image_proj.proj.weight": torch.randn(4 * cross, clip_dim, generator=g) * 0.2,
        "image_proj.proj.bias": torch.zeros(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        attn = unet.get_submodule(name[: -len(".processor")])
        for part in ("to_k", "to_v"):
            w = getattr(attn, part).weight
            state[f"ip_adapter.{key_id}.{part}_ip.weight"] = torch.randn(w.shape, generator=g) * 0.5
        key_id += 2
    return state


def save_tiny_ip_adapter(folder: Path, unet: Any, seed: int = 0) -> Path:
    """Write a tiny IP-Adapter for ``unet`` (the tiny kit's) in the published repo's layout under ``folder``:
    ``sdxl_models/ip-adapter_sdxl.safetensors`` + ``sdxl_models/image_encoder/`` (CLIPVisionModelWithProjection,
    224 px input, patch 32, projection 32). Marked as a demo model."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from workbench.models.sources import DEMO_MARKER

    folder = Path(folder)
    sub = folder / SUBFOLDER
    sub.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tiny_ip_adapter_state_dict(unet, seed=seed).items()},
              str(sub / WEIGHT_NAME))
    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
        patch_size=32, projection_dim=TINY_PROJECTION)).eval()
    encoder.save_pretrained(str(sub / IMAGE_ENCODER), safe_serialization=True)
    (folder / DEMO_MARKER).write_text("tiny IP-Adapter: a demo model built by workbench.models.ip_adapter. Its "
                                      "weights are random; images it conditions mean nothing.\n")
    return folder
