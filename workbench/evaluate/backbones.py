"""The model each metric group needs (its "backbone"), loaded through ``workbench.models.sources`` from the settings'
reference (or a run's ``backbones`` override). A missing model becomes an ``unavailable`` Backbone naming the
reference and the remedy, never an exception: the run stores that metric as unavailable, never as a number.

    b = load_backbone("clip", settings.models.clip_scorer, device="cpu")
    b.ok, b.model, b.info        # info: reference, revision, demo flag, package version (kept with the results)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# metric group -> the Settings.models field whose reference it loads
BACKBONE_SETTING = {"fid_kid": "fid_inception", "clip": "clip_scorer", "brand": "clip_scorer", "blip": "blip_itm",
                    "paired": "lpips_backbone", "diversity": "lpips_backbone", "preference": "preference",
                    "ocr": "ocr_backend"}


@dataclass
class Backbone:
    group: str
    ref: str
    model: Any = None
    error: dict[str, str] | None = None  # {"ref", "reason", "remedy"} when unavailable
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def _package_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _backbone_info(ref: str, package: str) -> dict[str, Any]:
    from workbench.generate.sample import model_revision
    from workbench.models.sources import is_demo_model

    return {"ref": ref, "revision": model_revision(ref) if "/" in ref else "", "demo_model": is_demo_model(ref),
            "package": f"{package} {_package_version(package)}".strip()}


def load_backbone(group: str, ref: str, device: str = "cpu") -> Backbone:
    """Load what a metric group needs; ModelUnavailable becomes an ``unavailable`` Backbone, never an exception."""
    from workbench.models import sources

    packages = {"fid_kid": "torch-fidelity", "clip": "open_clip_torch", "brand": "open_clip_torch",
                "blip": "transformers", "paired": "torchmetrics", "diversity": "torchmetrics",
                "preference": "transformers", "ocr": "rapidocr"}
    try:
        if group == "fid_kid":
            model = sources.load_feature_extractor(ref)
        elif group in ("clip", "brand"):  # the configured scorer, another open_clip model or "tuned:<name>"
            from workbench.models.scorers import ScorerError, load_scorer

            try:
                scorer = load_scorer(ref, device=device)
            except ScorerError as exc:
                raise sources.ModelUnavailable(ref, str(exc), "Name a tuned scorer from `workbench train scorers`."
                                               ) from exc
            model = scorer.triple
            if scorer.info is not None:  # the scores record the tuned scorer and where its weights are
                return Backbone(group, ref, model, info={**_backbone_info(scorer.path, packages[group]), "ref": ref,
                                                         "path": scorer.path, "scorer_id": scorer.info.id})
        elif group == "blip":
            model = sources.load_blip_itm(ref, device=device)
        elif group in ("paired", "diversity"):
            from workbench.evaluate.metrics import load_lpips

            model = load_lpips(ref)
        elif group == "preference":
            from workbench.evaluate.metrics import load_preference

            model = load_preference(ref, device=device)
        elif group == "ocr":
            from workbench.evaluate.ocr import load_ocr

            model = load_ocr(ref)
            info = {"ref": ref, "backend": model.backend, "fallback": model.fallback}
            return Backbone(group, ref, model, info=info)
        else:
            raise AssertionError(group)
    except sources.ModelUnavailable as exc:
        return Backbone(group, ref, error={"ref": exc.ref, "reason": exc.reason, "remedy": exc.remedy},
                        info={"ref": ref, "status": "unavailable"})
    return Backbone(group, ref, model, info=_backbone_info(ref, packages[group]))
