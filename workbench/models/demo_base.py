"""The demo base model that ships with the package, and the colour measure used to check that it draws.

``workbench/models/demo_base/`` is a small SDXL-architecture pipeline (diffusers folder, safetensors, < 25 MB)
trained by ``scripts/train_demo_base.py`` on the synthetic AURELO catalog at 64 px: flat garments on white in the
catalog colours. The demo workspace copies it into ``<workspace>/models/demo-base`` and points ``sdxl_base`` and
``vae`` at it; it loads through ``workbench.models.sources.load_sdxl_pipeline`` like any real model.

    from workbench.models.demo_base import install_demo_base, dominant_colour, nearest_colour
    folder = install_demo_base(Path("/tmp/models/demo-base"))
    rgb = dominant_colour(image)                      # the garment's colour, background ignored
    label = nearest_colour(rgb, DEMO_PALETTE)         # nearest palette colour by CIELAB distance (Delta E 1976)

The colour measure (used by ``bench/demo_colour_accuracy.py`` and the tests): foreground = pixels whose CIELAB
distance from pure white is over ``FOREGROUND_DELTA_E`` (this drops the white sweep and the light floor shadow,
236/255 grey, Delta E ~6); dominant colour = the per-channel median RGB of the foreground (the wordmark and outlines
are a minority of the garment's pixels, so the median is the cloth); nearest colour = smallest Delta E 1976.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from workbench.models.sources import DEMO_MARKER

SHIPPED = Path(__file__).resolve().parent / "demo_base"
FOREGROUND_DELTA_E = 15.0
MIN_FOREGROUND = 0.02  # below 2% of the pixels there is no garment to measure

# The brand variant the demo LoRA learns: a signature colour far from every catalog colour (nearest is Navy Blue).
SIGNATURE = ("Aurelo Violet", (124, 58, 196))


def demo_palette() -> list[tuple[str, tuple[int, int, int]]]:
    from workbench.data.demo import COLOURS

    return list(COLOURS)


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


# -- colour --------------------------------------------------------------------------------------------------------

def rgb_to_lab(rgb) -> np.ndarray:
    """sRGB (0-255, shape (..., 3)) to CIELAB under D65 (the standard formulas, as in scikit-image's rgb2lab)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def delta_e(a, b) -> np.ndarray:
    """CIELAB Delta E 1976 between sRGB colours (broadcasts)."""
    return np.linalg.norm(rgb_to_lab(a) - rgb_to_lab(b), axis=-1)


def dominant_colour(image) -> tuple[int, int, int] | None:
    """The garment's colour in a product shot on white: median RGB of the non-background pixels, or None when
    under ``MIN_FOREGROUND`` of the image is foreground (nothing drawn)."""
    px = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float64).reshape(-1, 3)
    fg = px[delta_e(px, (255, 255, 255)) > FOREGROUND_DELTA_E]
    if len(fg) < MIN_FOREGROUND * len(px):
        return None
    return tuple(int(round(v)) for v in np.median(fg, axis=0))  # type: ignore[return-value]


def nearest_colour(rgb, palette: list[tuple[str, tuple[int, int, int]]]) -> str | None:
    """The label of the palette colour nearest to ``rgb`` (Delta E 1976); None for None."""
    if rgb is None:
        return None
    dists = delta_e(np.asarray([c for _, c in palette], dtype=np.float64), np.asarray(rgb, dtype=np.float64))
    return palette[int(np.argmin(dists))][0]
