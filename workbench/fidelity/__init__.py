"""Product fidelity: garment masks, the fidelity scores (DINO, CLIP-I, colour ΔE, shape IoU) of an image against a
product's reference photos, the garment's measured colour, and the gate that holds an image below its brand's limits.

    from workbench.fidelity import fidelity_scores, load_fidelity_models, fidelity_gate, measure_lab
    models = load_fidelity_models()                   # missing weights stay "unavailable"
    r = fidelity_scores(generated, reference_photos, models=models)
    fidelity_gate(r, "AUR-1001", max_delta_e=5.0).reason   # "colour ΔE 7.9 vs AUR-1001 reference, limit 5"
    measure_lab(reference_photos)                     # the garment's dominant CIE Lab colour, pooled over the photos

Modules: ``masks`` (matting / segmenter masks, crops, shape IoU), ``scores`` (the metrics, ``FidelityResult``),
``gate`` (limits -> verdict). It sits on the floor of ``prompts`` and ``data`` (below ``generate``, which checks
images as it makes them, and ``evaluate``, which reports them); its metric cards are ``evaluate.product_cards``.
"""
from workbench.fidelity.gate import DEFAULT_MAX_DELTA_E, GateVerdict, fidelity_gate
from workbench.fidelity.masks import GarmentMask, garment_mask, masked_crop, shape_iou
from workbench.fidelity.scores import (METRICS, FidelityResult, ProductReference, ciede2000, delta_e_reading,
                                       dominant_lab, fidelity_scores, garment_lab_pixels, load_fidelity_models,
                                       measure_lab, prepare_references)

__all__ = ["DEFAULT_MAX_DELTA_E", "METRICS", "FidelityResult", "GarmentMask", "GateVerdict", "ProductReference",
           "ciede2000", "delta_e_reading", "dominant_lab", "fidelity_gate", "fidelity_scores", "garment_lab_pixels",
           "garment_mask", "load_fidelity_models", "masked_crop", "measure_lab", "prepare_references", "shape_iou"]
