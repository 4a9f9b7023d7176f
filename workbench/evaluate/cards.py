"""What each evaluation number means and how it summarises, without torch: the sample-size thresholds, the metric
cards (meaning, range, direction, caveats, backbone) and the aggregates (mean with a 95% bootstrap interval, median,
top-5 average). Pages, the CLI and a run's last step read them; ``workbench.evaluate`` re-exports them.

    from workbench.evaluate.cards import METRIC_CARDS
    METRIC_CARDS["fid"].caveats
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FID_RELIABLE_N = 2000  # images per set; pytorch-fid's README: fewer than 2,048 gives a rank-deficient covariance
KID_SUBSET_SIZE = 1000  # torchmetrics' default, clipped to the smaller set
KID_SUBSETS = 100
KID_RELIABLE_N = 100  # below this the spread over subsets is typically as large as the gaps between models
FID_INPUT_PX = 299  # Inception's input; images are resized to it the clean-fid way (PIL bicubic) before extraction
FID_BOOTSTRAP = 50  # resamples for the FID interval (each one is an eigendecomposition of a d x d matrix)
PAIRED_PX = 512  # generated image and product photo are both resized to this square for LPIPS / SSIM / PSNR
PSNR_MAX_DB = 100.0  # identical images have infinite PSNR; stored capped so aggregates stay finite
TOP_K = 5


# -- metric cards ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricCard:
    key: str
    title: str
    meaning: str
    range: str
    higher_is_better: bool
    caveats: str
    backbone: str  # the Settings.models field whose weights it needs ("" for none)
    per: str  # image | set | prompt


METRIC_CARDS: dict[str, MetricCard] = {c.key: c for c in [
    MetricCard("fid", "FID (Fréchet Inception Distance)", "Distance between the Inception-feature distributions of the "
               "generated set and the reference photos.", "0 and up", False,
               f"Needs ~{FID_RELIABLE_N:,} images per set to mean anything (biased upwards at small n); below that it "
               "is marked unreliable and shown with a bootstrap interval (resamples repeat images, which inflates "
               "FID: an interval lying above the value is itself a sign of too few images). Only comparable between "
               "runs with the same reference set, image count and Inception weights. Images resized the clean-fid way "
               "(PIL bicubic).",
               "fid_inception", "set"),
    MetricCard("kid", "KID (Kernel Inception Distance)", "Unbiased squared MMD between Inception features (cubic "
               "polynomial kernel), mean ± std over random subsets.", "about 0 and up (can dip below 0)", False,
               f"Unbiased at any n but noisy: subset size {KID_SUBSET_SIZE} clipped to the smaller set; the interval "
               f"shown is mean ± std over subsets; below {KID_RELIABLE_N} images marked unreliable.", "fid_inception",
               "set"),
    MetricCard("clip_cosine", "CLIP cosine (image ↔ prompt)", "Cosine similarity between the image and its prompt in "
               "CLIP space (open_clip, the scorer in settings).", "-1 to 1; real matches ~0.25-0.35", True,
               "Long prompts are truncated at 77 tokens; CLIP misses counts, text and fine detail.", "clip_scorer",
               "image"),
    MetricCard("clip_score_100", "CLIPScore (0-100)", "The same cosine on torchmetrics' CLIPScore scale: "
               "100 x max(cosine, 0).", "0 to 100", True, "Clamped at 0; not Hessel et al.'s 2.5 x weighting.",
               "clip_scorer", "image"),
    MetricCard("blip_itm", "BLIP image-text match", "Probability that image and prompt match, from BLIP's "
               "image-text-matching head (softmax, class 'match').", "0 to 1", True,
               "Saturates near 1 for plausible pairs; compare sets, not single images.", "blip_itm", "image"),
    MetricCard("lpips_ref", "LPIPS to the product photo", "Closeness to the product photo: perceptual distance "
               "between the image and the reference photo with the same caption.", "0 (identical) to ~1", False,
               "Only for images whose prompt matches a reference caption; a new pose or scene is penalised.",
               "lpips_backbone", "image"),
    MetricCard("ssim_ref", "SSIM to the product photo", "Closeness to the product photo: structural similarity with "
               "the reference photo with the same caption (both at 512x512).", "-1 to 1 (1 = identical)", True,
               "Pixel-aligned: a shifted but perfect garment scores low.", "", "image"),
    MetricCard("psnr_ref", "PSNR to the product photo", "Closeness to the product photo: peak signal-to-noise ratio "
               "against the reference photo with the same caption, per image (not pooled).", "dB, 0 and up "
               f"(identical images capped at {PSNR_MAX_DB:.0f})", True,
               "Pixel-aligned and blind to perception; use with LPIPS.", "", "image"),
    MetricCard("lpips_diversity", "LPIPS diversity", "Mean pairwise LPIPS among the images of the same prompt.",
               "0 (all identical) to ~1", True, "Catches a collapsed LoRA; needs 2+ images per prompt.",
               "lpips_backbone", "prompt"),
    MetricCard("brand_consistency", "Brand consistency", "Cosine similarity of the image's CLIP embedding to the "
               "centroid of the brand's reference photos.", "-1 to 1", True,
               "Rewards looking like the catalog, including its backgrounds; not a logo check.", "clip_scorer",
               "image"),
    MetricCard("pickscore", "PickScore (preference)", "Human-preference score: logit scale x cosine of a CLIP model "
               "fine-tuned on preference pairs.", "about 15-25", True,
               "Ranks images of one prompt; absolute values are not comparable across prompts.", "preference",
               "image"),
    MetricCard("ocr_pass", "Logo check (OCR)", "Share of images where OCR reads the brand's logo text (normalised, "
               "fuzzy-matched above the threshold).", "0 to 1", True,
               "Stylised logos can fail OCR though correct; the backend used is recorded per image.", "ocr_backend",
               "image"),
]}

# Metrics a run can ask for (the names in an evaluation config) -> the cards they fill.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "fid_kid": ("fid", "kid"),
    "clip": ("clip_cosine", "clip_score_100"),
    "blip": ("blip_itm",),
    "paired": ("lpips_ref", "ssim_ref", "psnr_ref"),
    "diversity": ("lpips_diversity",),
    "brand": ("brand_consistency",),
    "preference": ("pickscore",),
    "ocr": ("ocr_pass",),
}


# -- aggregates (numpy only: the job's last step and the page use them without torch) --------------------------------

@dataclass(frozen=True)
class Aggregate:
    """How a per-image metric summarises over a set. ``top5`` is the mean of the 5 best images (the "top-5 average"
    some reports quote): optimistic by construction, shown next to the mean, never instead of it."""

    n: int
    mean: float | None
    ci_low: float | None  # 95% percentile-bootstrap interval of the mean
    ci_high: float | None
    median: float | None
    top5: float | None


def bootstrap_interval(values: Sequence[float], statistic: Callable[[Any], Any] | None = None, n_boot: int = 2000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (or ``statistic`` applied along axis 1 of a resample matrix)."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    rng = np.random.default_rng(seed)
    stats = []
    chunk = max(1, 4_000_000 // x.size)  # bound the resample matrix to ~32 MB
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, x.size, size=(min(chunk, n_boot - start), x.size))
        stats.append(statistic(x[idx]) if statistic else x[idx].mean(axis=1))
    stats = np.concatenate(stats)
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def aggregate(values: Iterable[float | None], higher_is_better: bool = True, n_boot: int = 2000,
              seed: int = 0) -> Aggregate:
    """Mean with a 95% bootstrap interval, median and top-5 average; missing values (None/NaN) are left out."""
    import numpy as np

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Aggregate(0, None, None, None, None, None)
    ci = bootstrap_interval(x, n_boot=n_boot, seed=seed)
    best = np.sort(x)[::-1] if higher_is_better else np.sort(x)
    return Aggregate(n=int(x.size), mean=float(x.mean()), ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
                     median=float(np.median(x)), top5=float(best[:TOP_K].mean()))
