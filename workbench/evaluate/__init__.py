"""Evaluation: metrics (FID/KID, CLIP, BLIP, LPIPS, SSIM, PSNR, brand consistency, PickScore), OCR logo checks, and
evaluation runs that compare image sets (batches, checkpoints, base vs fine-tuned) against a reference set.

Modules: ``cards`` (sample-size thresholds, metric cards, aggregates: no torch), ``metrics`` (torchmetrics Metrics
with injected backbones), ``ocr`` (RapidOCR / EasyOCR logo checks with fuzzy matching), ``config`` (EvalConfig, image
and reference sets and how they resolve to images, caption pairing), ``backbones`` (loading each metric group's
model), ``run`` (the runner, ``run_evaluation``, create/start, the ``evaluate`` job), ``suites`` (prompt suites),
``results`` (reading, display strings, CSV export), ``tables`` (migration 0006), ``cli`` (``workbench evaluate``,
``workbench eval``).

This package's face re-exports ``cards``, so pages, the CLI and a run's last step read the cards and aggregates
without importing torch:

    from workbench.evaluate import METRIC_CARDS
    METRIC_CARDS["fid"].caveats
"""
from workbench.evaluate.cards import (FID_BOOTSTRAP, FID_INPUT_PX, FID_RELIABLE_N, KID_RELIABLE_N, KID_SUBSET_SIZE,
                                      KID_SUBSETS, METRIC_CARDS, METRIC_GROUPS, PAIRED_PX, PSNR_MAX_DB, TOP_K,
                                      Aggregate, MetricCard, aggregate, bootstrap_interval)

__all__ = ["FID_BOOTSTRAP", "FID_INPUT_PX", "FID_RELIABLE_N", "KID_RELIABLE_N", "KID_SUBSET_SIZE", "KID_SUBSETS",
           "METRIC_CARDS", "METRIC_GROUPS", "PAIRED_PX", "PSNR_MAX_DB", "TOP_K", "Aggregate", "MetricCard",
           "aggregate", "bootstrap_interval"]
