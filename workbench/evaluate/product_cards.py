"""Metric cards and thresholds of the product-fidelity and distribution metrics, as plain data: the Evaluate page,
the CLI and review gates read them without importing torch.

    from workbench.evaluate.product_cards import PRODUCT_CARDS, delta_e_reading
    PRODUCT_CARDS["delta_e"].caveats; delta_e_reading(7.9)   # "a different colour (ΔE > 5)"

Each card (``ProductCard``, the fields of ``workbench.evaluate.MetricCard`` plus ``reliable_n``): title, meaning,
range, higher_is_better, caveats, backbone (the Settings.models field it needs, "" for none), per (image | set),
reliable_n (images per set for set metrics; 1 for per-image ones). Definitions and the
reasons for the thresholds: ``workbench.fidelity`` and ``workbench.evaluate.distribution``.
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.evaluate.cards import MetricCard
from workbench.fidelity.scores import DELTA_E_DIFFERENT, DELTA_E_NOTICEABLE, delta_e_reading

CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0
CMMD_RELIABLE_N = 100
FD_DINOV2_RELIABLE_N = 2000
FD_BOOTSTRAP = 50


@dataclass(frozen=True)
class ProductCard(MetricCard):
    """A ``MetricCard`` plus the sample size from which a value is reliable."""

    reliable_n: int = 1  # images per set (set metrics); 1 for per-image metrics


DISTRIBUTION_CARDS: dict[str, ProductCard] = {c.key: c for c in [
    ProductCard(
        "cmmd", "CMMD (CLIP maximum mean discrepancy)",
        meaning="Distance between the CLIP-embedding distributions of the generated set and the reference photos: "
                "Gaussian-kernel MMD (σ 10, x1000), no normality assumption.",
        range="0 and up (0 = same distribution)", higher_is_better=False,
        caveats=f"Settles at small sets, unlike FID; below {CMMD_RELIABLE_N} images per set marked unreliable. "
                "Shown with its small-sample bias (the diagonal term). Computed with the workbench's CLIP scorer, so "
                "not comparable with the paper's numbers (ViT-L/14@336).",
        backbone="clip_scorer", per="set", reliable_n=CMMD_RELIABLE_N),
    ProductCard(
        "fd_dinov2", "FD-DINOv2 (Fréchet distance, DINOv2)",
        meaning="FID's Fréchet distance on DINOv2 features instead of Inception's: tracks human judgements of "
                "realism better (Stein et al. 2023).",
        range="0 and up", higher_is_better=False,
        caveats=f"Biased upwards at small n like FID: below {FD_DINOV2_RELIABLE_N:,} images per set marked "
                "unreliable and shown with a bootstrap interval. Only comparable with the same DINOv2 model and "
                "reference set.",
        backbone="dinov2", per="set", reliable_n=FD_DINOV2_RELIABLE_N),
]}

FIDELITY_CARDS: dict[str, ProductCard] = {c.key: c for c in [
    ProductCard(
        "dino", "DINO similarity (garment)",
        meaning="Cosine similarity of DINOv2 embeddings of the garment crop and the product's reference crops, "
                "averaged over the references (DreamBooth's DINO score).",
        range="-1 to 1; the same product photographed again is typically > 0.8", higher_is_better=True,
        caveats="Sensitive to pose and view; compare images of one product, not across products.",
        backbone="dinov2", per="image"),
    ProductCard(
        "clip_i", "CLIP-I similarity (garment)",
        meaning="Cosine similarity of CLIP image embeddings of the garment crop and the reference crops, averaged "
                "over the references.",
        range="-1 to 1", higher_is_better=True,
        caveats="CLIP sees category and colour more than fine print or logo detail; DINO separates look-alikes "
                "better.",
        backbone="clip_scorer", per="image"),
    ProductCard(
        "delta_e", "Colour ΔE (CIEDE2000)",
        meaning="Colour difference between the garment's dominant colour in the image and in the reference photos.",
        range="0 and up: < 2 not noticeable, 2-5 noticeable, > 5 a different colour", higher_is_better=False,
        caveats="Lighting in the generated scene shifts colour too; needs a garment mask (matting on plain "
                "backgrounds, else the segmenter).",
        backbone="", per="image"),
    ProductCard(
        "shape_iou", "Shape IoU (silhouette)",
        meaning="Overlap of the garment's silhouette with the best-matching reference silhouette after aligning "
                "their boxes.",
        range="0 to 1 (1 = same outline)", higher_is_better=True,
        caveats="Meaningful where the product is meant to keep its shape (a cut-out placed in a scene, the same "
                "view); a new pose lowers it.",
        backbone="", per="image"),
]}

__all__ = ["CMMD_RELIABLE_N", "CMMD_SCALE", "CMMD_SIGMA", "DELTA_E_DIFFERENT", "DELTA_E_NOTICEABLE",
           "DISTRIBUTION_CARDS", "FD_BOOTSTRAP", "FD_DINOV2_RELIABLE_N", "FIDELITY_CARDS", "PRODUCT_CARDS",
           "ProductCard", "delta_e_reading"]

PRODUCT_CARDS: dict[str, ProductCard] = {**FIDELITY_CARDS, **DISTRIBUTION_CARDS}
