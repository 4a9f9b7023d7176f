"""Imported once by the job fork server (``workbench.jobs.spawn``): the libraries model jobs spend their first ~20 s
importing. Imports only: nothing here may touch a GPU, read settings or open the database, because every job
process is forked from the process that imported this.
"""
from __future__ import annotations

import importlib

MODULES = [
    "torch",
    "numpy",
    "PIL.Image",
    "safetensors.torch",
    "transformers",
    "diffusers",
    "peft",
    "accelerate",
    "torchmetrics",
    "optimum.quanto",
]
# Names behind lazy module attributes: importing the package alone does not load them.
ATTRIBUTES = {
    "diffusers": ["StableDiffusionXLPipeline", "AutoencoderKL", "UNet2DConditionModel", "EulerDiscreteScheduler",
                  "DDPMScheduler"],
    "transformers": ["CLIPModel", "CLIPProcessor", "CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer",
                     "BlipForConditionalGeneration", "BlipProcessor"],
}

loaded: list[str] = []
for _name in MODULES:
    try:
        _module = importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - an optional library missing here only means that job imports it itself
        continue
    loaded.append(_name)
    for _attr in ATTRIBUTES.get(_name, []):
        try:
            getattr(_module, _attr)
        except Exception:  # noqa: BLE001 - same: a lazy name that fails to load is loaded (and reported) by the job
            pass
