"""The demo base model that ships with the package.

``workbench/models/demo_base/`` is a small SDXL-architecture pipeline (diffusers folder, safetensors, < 25 MB)
trained by ``scripts/train_demo_base.py`` on the synthetic AURELO catalog at 64 px: flat garments on white in the
catalog colours. The demo workspace copies it into ``<workspace>/models/demo-base`` and points ``sdxl_base`` and
``vae`` at it; it loads through ``workbench.models.sources.load_sdxl_pipeline`` like any real model.

    from workbench.models.demo_base import install_demo_base
    folder = install_demo_base(Path("/tmp/models/demo-base"))

The colour measure that checks it draws the catalog's colours lives with the catalog, in ``workbench.data.demo``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from workbench.models.sources import DEMO_MARKER

SHIPPED = Path(__file__).resolve().parent / "demo_base"
def shipped_demo_base() -> Path:
    """The shipped folder; a clear error naming the missing file when the package was installed without it."""
    for rel in ("model_index.json", "unet/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors", DEMO_MARKER):
        if not (SHIPPED / rel).is_file():
            raise FileNotFoundError(
                f"the demo base model is incomplete: {SHIPPED / rel} is missing. Rebuild it with "
                "`python scripts/train_demo_base.py`, or reinstall the package (it ships in package-data).")
    return SHIPPED


def install_demo_base(dest: Path) -> Path:
    """Copy the shipped demo base model to ``dest`` (kept when it is already there and marked). Returns ``dest``."""
    dest = Path(dest)
    if (dest / DEMO_MARKER).is_file() and (dest / "model_index.json").is_file():
        return dest
    src = shipped_demo_base()
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    # training_info.json stays behind: it documents the build, the workspace copy only needs the model.
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("training_info.json", "__pycache__"))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)  # a half-copied folder never looks complete
    return dest
