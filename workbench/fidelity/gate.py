"""The product-fidelity gate: does a generated image pass its brand's limits for the product it was made for?

    verdict = fidelity_gate(result, "AUR-1001", max_delta_e=5.0, min_dino=0.7)
    verdict.passed, verdict.reason     # False, "colour ΔE 7.9 vs AUR-1001 reference, limit 5"

Plain data in, plain data out: the limits come from the brand profile (``prompts.brands``: ``fidelity:``), the result
from ``scores.fidelity_scores``. A metric without a number (its model missing: "unavailable") is not held against
the image; then only the measured ones count (ΔE and shape need no model). An image in which no garment could be
found fails: nothing in it can be shown to be the product.
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.fidelity.scores import FidelityResult

DEFAULT_MAX_DELTA_E = 5.0  # CIEDE2000 above 5 reads as a different colour


@dataclass(frozen=True)
class GateVerdict:
    passed: bool | None  # None: no limit applied to anything measured
    reason: str  # why it failed ("; "-joined), or what was checked when it passed


def _num(v: float) -> str:
    return f"{v:g}"


def fidelity_gate(result: FidelityResult, sku: str, *, max_delta_e: float | None = DEFAULT_MAX_DELTA_E,
                  min_dino: float | None = None, min_shape_iou: float | None = None) -> GateVerdict:
    """Compare ``result`` with the limits (None: no limit for that metric). Failures name the metric, its value, the
    SKU and the limit, e.g. "colour ΔE 7.9 vs AUR-1001 reference, limit 5"."""
    if result.delta_e is None and result.shape_iou is None and result.dino is None:
        why = next(iter(result.unavailable.values()), "no score")
        return GateVerdict(False, f"no garment measurable against {sku}: {why}")
    failed: list[str] = []
    checked: list[str] = []
    if max_delta_e is not None and result.delta_e is not None:
        checked.append(f"ΔE {result.delta_e:.1f} ≤ {_num(max_delta_e)}")
        if result.delta_e > max_delta_e:
            failed.append(f"colour ΔE {result.delta_e:.1f} vs {sku} reference, limit {_num(max_delta_e)}")
    if min_dino is not None and result.dino is not None:
        checked.append(f"DINO {result.dino:.2f} ≥ {_num(min_dino)}")
        if result.dino < min_dino:
            failed.append(f"DINO similarity {result.dino:.2f} vs {sku} reference, minimum {_num(min_dino)}")
    if min_shape_iou is not None and result.shape_iou is not None:
        checked.append(f"shape IoU {result.shape_iou:.2f} ≥ {_num(min_shape_iou)}")
        if result.shape_iou < min_shape_iou:
            failed.append(f"shape IoU {result.shape_iou:.2f} vs {sku} reference, minimum {_num(min_shape_iou)}")
    if failed:
        return GateVerdict(False, "; ".join(failed))
    if not checked:
        return GateVerdict(None, f"no fidelity limit applies to what was measured against {sku}")
    return GateVerdict(True, f"{', '.join(checked)} vs {sku} reference")
