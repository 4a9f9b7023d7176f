"""DINOv2 image features (transformers ``Dinov2Model``) for product fidelity (the DreamBooth papers' DINO score) and
FD-DINOv2 (Stein et al., NeurIPS 2023).

    dino = load_dinov2(settings.models.dinov2)      # hub id (cached by `workbench models pull dinov2`) or a folder
    feats = dino.features(images)                    # (n, d) float64 CLS embeddings, raw (for Fréchet distances)
    unit = dino.embeddings(images)                   # the same, L2-normalised (for cosines)

The feature is the CLS token of the last layer after the final layer norm (``pooler_output``), the feature both
DreamBooth's DINO score and dgm-eval's FD-DINOv2 use. Images are prepared by the model's own image processor (resize,
centre crop to 224 for the released models, ImageNet normalisation). Tests use ``tiny.save_tiny_dinov2`` (random
weights, marked as a demo model).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image


@dataclass
class DinoEmbedder:
    model: Any  # transformers Dinov2Model
    processor: Any  # its image processor
    ref: str = ""
    device: str = "cpu"
    demo: bool = False  # a tiny-kit model: label its numbers as demo numbers
    batch_size: int = 16

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def features(self, images: Sequence[Image.Image]):
        """(n, d) float64 CLS features, batch by batch."""
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[i:i + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.no_grad():
                out.append(self.model(pixel_values=pixels).pooler_output.double().cpu())
        if not out:
            return torch.empty(0, self.dim, dtype=torch.float64)
        return torch.cat(out)

    def embeddings(self, images: Sequence[Image.Image]):
        """(n, d) float64 L2-normalised CLS features (cosine = dot product)."""
        f = self.features(images)
        return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def load_dinov2(ref: str, device: str = "cpu") -> DinoEmbedder:
    """A Dinov2Model and its image processor from a cached hub repo or a local folder (safetensors only; never
    downloads). Raises ModelUnavailable naming the model and `workbench models pull dinov2` when it is missing."""
    from workbench.models.sources import ModelUnavailable, is_demo_model, local_path

    path = local_path(ref, "dinov2")
    from transformers import AutoImageProcessor, Dinov2Model

    try:
        model = Dinov2Model.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(ref, f"{path} is not a DINOv2 model folder with safetensors weights "
                               f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]})",
                               "Point WORKBENCH_MODELS__DINOV2 at a Dinov2Model repo (e.g. facebook/dinov2-base) "
                               "and run `workbench models pull dinov2`.") from None
    return DinoEmbedder(model.to(device).eval(), processor, ref=ref, device=device, demo=is_demo_model(str(path)))
