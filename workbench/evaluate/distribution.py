"""Distribution metrics next to FID/KID: CMMD (Jayasumana et al., CVPR 2024, "Rethinking FID") and FD-DINOv2 (Stein
et al., NeurIPS 2023, "Exposing flaws of generative model evaluation metrics").

    c = Cmmd(embed=lambda ims: clip_image_embeddings(clip, ims))     # torchmetrics Metric, lower is better
    c.update(reference_images, real=True); c.update(generated_images, real=False); c.compute()
    f = FdDinov2(embed=dino.features)                                 # same pattern
    r = distribution_scores(reference_images, generated_images, models=load_fidelity_models())  # DistributionResult

CMMD. Squared MMD between CLIP image embeddings (unit length) of the two sets with a Gaussian RBF kernel
k(x, y) = exp(-||x - y||² / (2 σ²)), σ = 10, times 1000, estimated as in the reference code (google-research/cmmd):
the means of the full kernel matrices, diagonals included (Gretton et al.'s minimum-variance "biased" estimator):
    CMMD = 1000 · (mean K_xx + mean K_yy - 2 mean K_xy).
Including the diagonals adds exactly 1000 · ((1 - k̄_xx)/n + (1 - k̄_yy)/m) (k̄ = mean off-diagonal kernel value):
reported as ``cmmd_bias``, the value two samples of one distribution of these sizes would still show. The paper
uses CLIP ViT-L/14 at 336 px (OpenAI weights, images squashed to 336²); here the CLIP model is the workbench's scorer
(settings.models.clip_scorer) with its own preprocessing, so values compare across runs of one workbench, not with
the paper's tables.

FD-DINOv2. The Fréchet distance between Gaussians fitted to DINOv2 CLS features (the formula FID uses, on DINOv2
instead of Inception features); Stein et al. use ViT-L/14, the default here is settings.models.dinov2.

Sample sizes. CMMD has no covariance to estimate and is unbiased up to ``cmmd_bias``, which shrinks like 1/n:
with unit CLIP embeddings the kernel is >= exp(-4/200), so the bias is at most 19.8/n + 19.8/m and typically a tenth
of that (within-set squared distances of ~0.4). ``CMMD_RELIABLE_N = 100`` keeps the bias under ~0.05 for typical
CLIP sets (about 0.4 at worst), below the gaps of ~0.1-1 between models the paper reports; the paper's point is that
CMMD settles at small sample sizes where FID keeps drifting. FD-DINOv2 is a Fréchet distance: biased upwards at
small n and rank-deficient below the feature dimension (768 for dinov2-base, 1024 for -large), so it gets FID's
threshold (``FD_DINOV2_RELIABLE_N = 2000``) and a bootstrap interval below it. The issue's hope that both "work on
small sets" holds for CMMD, not for FD-DINOv2.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torchmetrics import Metric

from workbench.evaluate.product_cards import (
    CMMD_RELIABLE_N,
    CMMD_SCALE,
    CMMD_SIGMA,
    DISTRIBUTION_CARDS,
    FD_BOOTSTRAP,
    FD_DINOV2_RELIABLE_N,
)

__all__ = ["CMMD_RELIABLE_N", "DISTRIBUTION_CARDS", "FD_DINOV2_RELIABLE_N", "Cmmd", "DistributionResult",
           "FdDinov2", "cmmd", "cmmd_bias", "distribution_scores", "fd_bootstrap_interval", "fd_dinov2"]

def _tensor(x: Any) -> Tensor:
    return x.double() if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float64)


def _rbf_mean(a: Tensor, b: Tensor, gamma: float, drop_diagonal: bool = False) -> float:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    k = torch.exp(-gamma * d2.clamp_min(0))
    if drop_diagonal:
        n = k.shape[0]
        return float((k.sum() - k.diagonal().sum()) / max(n * (n - 1), 1))
    return float(k.mean())


def cmmd(x: Any, y: Any, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """CMMD of two embedding matrices (n, d) and (m, d), the reference estimator (full kernel means)."""
    x, y = _tensor(x), _tensor(y)
    gamma = 1.0 / (2 * sigma ** 2)
    return scale * (_rbf_mean(x, x, gamma) + _rbf_mean(y, y, gamma) - 2 * _rbf_mean(x, y, gamma))


def cmmd_bias(x: Any, y: Any, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """How much of ``cmmd`` the kernel diagonals contribute: scale · ((1 - k̄_xx)/n + (1 - k̄_yy)/m)."""
    x, y = _tensor(x), _tensor(y)
    gamma = 1.0 / (2 * sigma ** 2)
    return scale * sum((1 - _rbf_mean(z, z, gamma, drop_diagonal=True)) / z.shape[0] for z in (x, y))


def fd_dinov2(x: Any, y: Any) -> float:
    """Fréchet distance of two DINOv2 feature matrices (the FID formula, clamped at 0)."""
    from workbench.evaluate.metrics import frechet_distance

    return frechet_distance(_tensor(x), _tensor(y))


# -- torchmetrics Metrics -------------------------------------------------------------------------------------------

class FeatureSetMetric(Metric):
    """Keeps the embeddings of a reference and a generated set (n x d floats, never pixels). ``update`` takes PIL
    images (run through ``embed``) or a feature tensor; ``real=True`` for the reference set. The reference features
    stay across ``reset_generated()``, so several generated sets compare against one pass over the references."""

    is_differentiable = False
    full_state_update = False
    higher_is_better = False

    def __init__(self, embed: Callable[[Sequence[Image.Image]], Tensor] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.embed = embed
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, images: Sequence[Image.Image] | Tensor, real: bool) -> None:
        if isinstance(images, Tensor):
            feats = images
        else:
            if self.embed is None:
                raise ValueError(f"{type(self).__name__} was built without an embed function: pass feature tensors")
            feats = self.embed(list(images))
        (self.real_features if real else self.fake_features).append(_tensor(feats).cpu())

    def reset_generated(self) -> None:
        self.fake_features = []

    def features(self) -> tuple[Tensor, Tensor]:
        real = torch.cat(self.real_features) if self.real_features else torch.empty(0, 0)
        fake = torch.cat(self.fake_features) if self.fake_features else torch.empty(0, 0)
        if real.shape[0] < 2 or fake.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 images in each set (reference "
                             f"{real.shape[0]}, generated {fake.shape[0]})")
        return real, fake


class Cmmd(FeatureSetMetric):
    """CMMD (see the module docstring): ``compute()`` is the reference estimator; ``bias()`` its diagonal term."""

    def __init__(self, embed: Callable[[Sequence[Image.Image]], Tensor] | None = None, sigma: float = CMMD_SIGMA,
                 scale: float = CMMD_SCALE, **kwargs: Any):
        super().__init__(embed, **kwargs)
        self.sigma, self.scale = sigma, scale

    def compute(self) -> Tensor:
        return torch.tensor(cmmd(*self.features(), sigma=self.sigma, scale=self.scale), dtype=torch.float64)

    def bias(self) -> float:
        return cmmd_bias(*self.features(), sigma=self.sigma, scale=self.scale)


class FdDinov2(FeatureSetMetric):
    """FD-DINOv2 (see the module docstring): pass ``embed=DinoEmbedder.features`` (raw CLS features)."""

    def compute(self) -> Tensor:
        return torch.tensor(fd_dinov2(*self.features()), dtype=torch.float64)


# -- one call for a page or a job -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DistributionResult:
    cmmd: float | None
    cmmd_bias: float | None
    fd_dinov2: float | None
    fd_dinov2_ci: tuple[float, float] | None  # bootstrap interval, below FD_DINOV2_RELIABLE_N
    n_real: int
    n_fake: int
    unavailable: dict[str, str] = field(default_factory=dict)
    demo: bool = False

    @property
    def cmmd_reliable(self) -> bool:
        return min(self.n_real, self.n_fake) >= CMMD_RELIABLE_N

    @property
    def fd_dinov2_reliable(self) -> bool:
        return min(self.n_real, self.n_fake) >= FD_DINOV2_RELIABLE_N


def fd_bootstrap_interval(real: Any, fake: Any, n_boot: int = FD_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the Fréchet distance, both sets resampled (as GenerativeDistances does
    for FID; resampling repeats images, which inflates the distance)."""
    import numpy as np

    real, fake = _tensor(real), _tensor(fake)
    g = torch.Generator().manual_seed(seed)
    boots = [fd_dinov2(real[torch.randint(0, len(real), (len(real),), generator=g)],
                       fake[torch.randint(0, len(fake), (len(fake),), generator=g)]) for _ in range(n_boot)]
    return float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def distribution_scores(reference: Sequence[Image.Image], generated: Sequence[Image.Image], *,
                        models: Mapping[str, Any], fd_bootstrap: int = FD_BOOTSTRAP) -> DistributionResult:
    """CMMD (models["clip_scorer"]) and FD-DINOv2 (models["dinov2"]) of a generated set against reference photos.
    ``models`` as ``fidelity.load_fidelity_models`` returns it; a missing model makes its metric "unavailable"."""
    from workbench.fidelity.scores import _usable, clip_image_embeddings

    if len(reference) < 2 or len(generated) < 2:
        raise ValueError(f"distribution metrics need at least 2 images per set (reference {len(reference)}, "
                         f"generated {len(generated)})")
    unavailable: dict[str, str] = {}
    values: dict[str, Any] = {"cmmd": None, "cmmd_bias": None, "fd_dinov2": None, "fd_dinov2_ci": None}
    demo = False
    clip, why = _usable(models, "clip_scorer")
    if clip is None:
        unavailable["cmmd"] = why
    else:
        x, y = clip_image_embeddings(clip, list(reference)), clip_image_embeddings(clip, list(generated))
        values.update(cmmd=cmmd(x, y), cmmd_bias=cmmd_bias(x, y))
        demo |= bool(getattr(clip, "demo", False))
    dino, why = _usable(models, "dinov2")
    if dino is None:
        unavailable["fd_dinov2"] = why
    else:
        x, y = dino.features(list(reference)), dino.features(list(generated))
        values["fd_dinov2"] = fd_dinov2(x, y)
        if min(len(x), len(y)) < FD_DINOV2_RELIABLE_N and fd_bootstrap > 0:
            values["fd_dinov2_ci"] = fd_bootstrap_interval(x, y, fd_bootstrap)
        demo |= bool(getattr(dino, "demo", False))
    return DistributionResult(**values, n_real=len(reference), n_fake=len(generated), unavailable=unavailable,
                              demo=demo)
