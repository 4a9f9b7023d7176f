"""CMMD against a direct numpy computation of its formula; FD-DINOv2 against a scipy Fréchet distance; the Metric
classes, sample-size flags and the one-call entry point with the tiny models."""
import numpy as np
import pytest
import torch
from scipy import linalg

from workbench.evaluate import distribution as dist
from workbench.evaluate.product_cards import CMMD_RELIABLE_N, FD_DINOV2_RELIABLE_N


def shirts(n, rgb):
    import random

    from workbench.data.demo import draw_garment

    return [draw_garment(g, rgb, 64, rng=random.Random(i)) for i, g in zip(range(n), ["t-shirt", "hoodie"] * n)]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    x = unit(rng.normal(size=(40, 16)))
    y = unit(rng.normal(size=(30, 16)) + 0.6)  # a shifted distribution
    return x, y


def numpy_cmmd(x, y, sigma=10.0, scale=1000.0):
    """Jayasumana et al.'s estimator written out pair by pair: every (i, j) of each kernel matrix, diagonals too."""
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))

    kxx = np.mean([[k(a, b) for b in x] for a in x])
    kyy = np.mean([[k(a, b) for b in y] for a in y])
    kxy = np.mean([[k(a, b) for b in y] for a in x])
    return scale * (kxx + kyy - 2 * kxy)


def scipy_frechet(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_cmmd_equals_the_formula_computed_directly(feats):
    x, y = feats
    assert dist.cmmd(x, y) == pytest.approx(numpy_cmmd(x, y), rel=1e-10, abs=1e-10)
    # a shifted set is far; two halves of one set differ by about the diagonal term alone (small-sample bias)
    assert dist.cmmd(x, y) - dist.cmmd_bias(x, y) > 2.0
    assert abs(dist.cmmd(x[:20], x[20:]) - dist.cmmd_bias(x[:20], x[20:])) < 0.2
    assert dist.cmmd(x, x) == pytest.approx(0.0, abs=1e-9)
    # the diagonal term: full-matrix CMMD minus the off-diagonal (U-statistic) version
    def off(a, b=None):
        g = np.exp(-((a[:, None] - a[None]) ** 2).sum(-1) / 200)
        return (g.sum() - np.trace(g)) / (len(a) * (len(a) - 1))

    gxy = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / 200).mean()
    assert dist.cmmd(x, y) - dist.cmmd_bias(x, y) == pytest.approx(1000 * (off(x) + off(y) - 2 * gxy), abs=1e-9)


def test_fd_dinov2_equals_a_scipy_frechet_distance(feats):
    x, y = feats
    x, y = x * 7.0, y * 7.0 + 1.0  # raw DINOv2 features are not unit length
    assert dist.fd_dinov2(x, y) == pytest.approx(scipy_frechet(x, y), rel=1e-6)
    assert dist.fd_dinov2(x, x) == pytest.approx(0.0, abs=1e-6)


def test_metric_classes_accumulate_batches_and_keep_the_reference(feats):
    x, y = feats
    c = dist.Cmmd()
    c.update(torch.from_numpy(x[:25]), real=True)
    c.update(torch.from_numpy(x[25:]), real=True)
    c.update(torch.from_numpy(y), real=False)
    assert float(c.compute()) == pytest.approx(numpy_cmmd(x, y), rel=1e-10)
    assert c.higher_is_better is False
    c.reset_generated()
    c.update(torch.from_numpy(x[:10]), real=False)
    assert float(c.compute()) == pytest.approx(numpy_cmmd(x, x[:10]), rel=1e-10)
    f = dist.FdDinov2()
    f.update(torch.from_numpy(x), real=True)
    f.update(torch.from_numpy(y), real=False)
    assert float(f.compute()) == pytest.approx(scipy_frechet(x, y), rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 images"), pytest.warns(UserWarning, match="before the"):
        dist.Cmmd().compute()
    with pytest.raises(ValueError, match="embed function"):
        dist.Cmmd().update([object()], real=True)


def test_distribution_scores_with_the_tiny_models_flags_small_sets(tmp_path):
    from workbench.fidelity.scores import load_fidelity_models
    from workbench.models import tiny
    from workbench.settings import Settings

    models = load_fidelity_models(Settings(models={"dinov2": str(tiny.save_tiny_dinov2(tmp_path / "d")),
                                                   "clip_scorer": str(tiny.save_tiny_open_clip(tmp_path / "c"))}))
    ref, gen = shirts(6, (176, 38, 52)), shirts(5, (40, 60, 160))
    r = dist.distribution_scores(ref, gen, models=models, fd_bootstrap=5)
    assert r.cmmd > 0 and 0 <= r.cmmd_bias < r.cmmd + 1e-12 and r.fd_dinov2 > 0 and r.demo
    assert r.fd_dinov2_ci is not None and r.n_real == 6 and r.n_fake == 5
    assert not r.cmmd_reliable and not r.fd_dinov2_reliable and r.unavailable == {}
    assert CMMD_RELIABLE_N < FD_DINOV2_RELIABLE_N  # CMMD is trusted on far smaller sets
    missing = dist.distribution_scores(ref, gen, models=load_fidelity_models())
    assert missing.cmmd is None and missing.fd_dinov2 is None
    assert "workbench models pull dinov2" in missing.unavailable["fd_dinov2"]
