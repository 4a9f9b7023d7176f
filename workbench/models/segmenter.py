"""Garment segmentation models for ``workbench.fidelity.masks`` (the model path; matting needs no weights).

    seg = load_segmenter(settings.models.segmenter)     # cached hub repo or folder; `workbench models pull segmenter`
    alpha = seg(image)                                   # (H, W) float32 in 0..1: how garment-like each pixel is

Two kinds of model, told apart by the folder's config.json:

- **semantic** (default, ``mattmdjaga/segformer_b2_clothes``: SegFormer-B2 fine-tuned on human parsing, MIT licence,
  a class transformers ships, so no code from the repo runs): per-class logits; the garment's alpha is the softmax
  mass of every class that is not background or a body part (face, hair, skin, arms, legs), so an on-model shot
  yields the clothes, not the person.
- **dichotomous** (BiRefNet / RMBG-style salient-object models, e.g. ``ZhengPeng7/BiRefNet``): their architecture is
  Python code in the repo (``auto_map``), so loading them runs that code. Refused unless ``trust_remote_code=True``
  is passed on purpose; the alpha is the sigmoid of the last output map at the model's 1024² input.
  (``briaai/RMBG-2.0`` is gated and non-commercial: check its licence before a brand uses it.)

The tiny stand-in (``tiny.save_tiny_segmenter``) is a 2-class SegFormer with random weights, marked as a demo model.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# Class names (lower-cased, any separators) that are not the garment: the background and the wearer's body.
NOT_GARMENT = re.compile(r"^(background|bg|face|hair|skin.*|neck|.*(arm|leg|hand|foot|feet)s?)$")
DICHOTOMOUS_PX = 1024  # BiRefNet / RMBG-2.0 input size


@dataclass
class Segmenter:
    model: Any
    processor: Any  # semantic: its image processor; dichotomous: None (ImageNet normalisation at DICHOTOMOUS_PX)
    kind: str  # semantic | dichotomous
    ref: str = ""
    device: str = "cpu"
    demo: bool = False
    garment_ids: tuple[int, ...] = ()  # semantic: the classes that count as garment

    def __call__(self, image: Image.Image) -> np.ndarray:
        import torch

        image = image.convert("RGB")
        with torch.no_grad():
            if self.kind == "semantic":
                pixels = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
                probs = self.model(pixel_values=pixels).logits.float().softmax(1)[:, list(self.garment_ids)].sum(1)
            else:
                x = torch.from_numpy(np.asarray(image.resize((DICHOTOMOUS_PX, DICHOTOMOUS_PX),
                                                             Image.Resampling.BILINEAR), dtype=np.float32) / 255.0)
                mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
                x = ((x - mean) / std).permute(2, 0, 1)[None].to(self.device)
                out = self.model(x)
                probs = (out[-1] if isinstance(out, (list, tuple)) else out).float().sigmoid()[:, 0]
            up = torch.nn.functional.interpolate(probs[:, None].cpu(), size=(image.height, image.width),
                                                 mode="bilinear", align_corners=False)
        return up[0, 0].clamp(0, 1).numpy().astype(np.float32)


def garment_classes(id2label: dict[Any, str]) -> tuple[int, ...]:
    """The class ids of a semantic model that count as garment (everything but background and body parts)."""
    keep = tuple(sorted(int(i) for i, name in id2label.items()
                        if not NOT_GARMENT.match(re.sub(r"[\s_\-]+", "", str(name).lower()).replace("left", "")
                                                 .replace("right", ""))))
    if not keep:
        raise ValueError(f"no garment classes among {sorted(id2label.values())}")
    return keep


def load_segmenter(ref: str, device: str = "cpu", trust_remote_code: bool = False) -> Segmenter:
    """A garment segmenter from a cached hub repo or a local folder (safetensors only; never downloads).
    Raises ModelUnavailable naming the model and the remedy when it is missing or would run repo code unasked."""
    from workbench.models.sources import ModelUnavailable, is_demo_model, local_path

    path = local_path(ref, "segmenter")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        raise ModelUnavailable(ref, f"{path} has no readable config.json", "Use a segmentation model repo or "
                               "folder (config.json + model.safetensors).") from None
    demo = is_demo_model(str(path))
    if "auto_map" in config:
        if not trust_remote_code:
            raise ModelUnavailable(ref, "its architecture is Python code shipped in the repo (BiRefNet/RMBG style); "
                                   "loading it would run that code", "Read the repo's code and pass "
                                   "trust_remote_code=True to load_segmenter, or use a segmentation model transformers "
                                   "ships (the default, mattmdjaga/segformer_b2_clothes).")
        from transformers import AutoModelForImageSegmentation

        model = AutoModelForImageSegmentation.from_pretrained(str(path), trust_remote_code=True,
                                                              use_safetensors=True, local_files_only=True)
        return Segmenter(model.to(device).eval(), None, "dichotomous", ref=ref, device=device, demo=demo)
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    try:
        model = AutoModelForSemanticSegmentation.from_pretrained(str(path), use_safetensors=True,
                                                                 local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(ref, f"not a semantic-segmentation model with safetensors weights "
                               f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]})",
                               "Point WORKBENCH_MODELS__SEGMENTER at e.g. mattmdjaga/segformer_b2_clothes and run "
                               "`workbench models pull segmenter`.") from None
    return Segmenter(model.to(device).eval(), processor, "semantic", ref=ref, device=device, demo=demo,
                     garment_ids=garment_classes(model.config.id2label))
