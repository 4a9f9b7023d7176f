"""Evaluation metrics: each one a torchmetrics ``Metric`` (or torchmetrics' own) with its backbone passed in.

    clip = ClipScore(model, preprocess, tokenizer)            # open_clip, from sources.load_open_clip or the tiny kit
    clip.update(images, prompts)                              # PIL images, one prompt each
    clip.last_values                                          # this batch's per-image cosines
    clip.compute()                                            # mean over everything seen
    aggregate(values, higher_is_better=True)                  # mean, 95% bootstrap CI, median, top-5 average

    dist = GenerativeDistances(load_feature_extractor(ref))   # FID + KID sharing one feature pass
    dist.update(reference_images, real=True); dist.update(generated_images, real=False)
    dist.compute()                                            # DistanceResult: fid (+ interval), kid ± std, n, reliable

What each number means, its range, direction and caveats: ``METRIC_CARDS`` (the Evaluate page shows them).

Memory: images are never kept. Per-image metrics keep a running sum and count; FID keeps running sums of the features
and their outer products (constant in n); KID keeps the feature vectors (n x d floats: ~16 KiB per image for
Inception's 2048 features, never pixels), which the FID bootstrap interval reuses.

Sample sizes. FID is biased upwards at small n (the bias shrinks like 1/n) and, with fewer images than Inception's
2,048 feature dimensions, the covariance estimate is rank-deficient; pytorch-fid recommends at least 2,048 images.
Below ``FID_RELIABLE_N`` a FID is reported as unreliable (the UI shows "unreliable: n=…") together with a bootstrap
interval over both sets. KID is unbiased at any n but noisy: its subset size is torchmetrics' default 1,000 clipped
to the smaller set, the std over subsets is always reported, and below ``KID_RELIABLE_N`` images it is flagged too.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torchmetrics import Metric

from workbench.evaluate.cards import (FID_BOOTSTRAP, FID_INPUT_PX, FID_RELIABLE_N, KID_RELIABLE_N,
                                      KID_SUBSET_SIZE, KID_SUBSETS, METRIC_CARDS, METRIC_GROUPS, PAIRED_PX, PSNR_MAX_DB,
                                      Aggregate, aggregate, bootstrap_interval)
from workbench.models.clip import clip_cosines
from workbench.models.clip import image_embeddings as clip_image_embeddings

__all__ = ["METRIC_CARDS", "METRIC_GROUPS", "Aggregate", "BlipScore", "BrandConsistency", "ClipScore",
           "DistanceResult", "GenerativeDistances", "Lpips", "LpipsDiversity", "PerImageMetric", "Psnr", "Ssim",
           "PreferenceScore", "aggregate", "bootstrap_interval", "clean_resize", "clip_score_100", "fid_batch",
           "frechet_distance", "load_lpips", "load_preference", "paired_tensor"]


# -- image preparation --------------------------------------------------------------------------------------------

def _resize_float(arr: np.ndarray, size: int) -> np.ndarray:
    """Each channel resized as a float image with PIL's bicubic filter (clean-fid's "clean" resize: no uint8
    rounding between the resize steps, antialiased like PIL)."""
    chans = [np.asarray(Image.fromarray(arr[..., c].astype(np.float32), mode="F")
                        .resize((size, size), Image.Resampling.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(chans, axis=-1), 0, 255)


def clean_resize(image: Image.Image, size: int = FID_INPUT_PX) -> np.ndarray:
    """(size, size, 3) uint8 for the Inception extractor. clean-fid feeds the float result on; torch-fidelity's
    Inception takes uint8, so it is rounded once at the end (an error of at most half a grey level)."""
    arr = np.asarray(image.convert("RGB"))
    return np.rint(_resize_float(arr, size)).astype(np.uint8)


def fid_batch(images: Sequence[Image.Image], size: int = FID_INPUT_PX) -> Tensor:
    """PIL images -> a uint8 (N, 3, size, size) tensor, resized the clean-fid way."""
    return torch.from_numpy(np.stack([clean_resize(im, size) for im in images])).permute(0, 3, 1, 2).contiguous()


def paired_tensor(image: Image.Image, size: int = PAIRED_PX) -> Tensor:
    """(3, size, size) float64 in [0, 1]: the common frame in which a generated image meets its product photo."""
    im = image.convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float64) / 255.0).permute(2, 0, 1).contiguous()


# -- FID and KID --------------------------------------------------------------------------------------------------

class SharedFeatures(nn.Module):
    """Wraps a feature extractor so FID and KID, which both call it with the same batch tensor, run it once.
    Accepts extractors that return a tensor or a tuple (torch-fidelity's Inception returns a tuple)."""

    def __init__(self, extractor: nn.Module, input_px: int = FID_INPUT_PX):
        super().__init__()
        self.extractor = extractor.eval()
        self._last: tuple[Tensor, Tensor] | None = None
        with torch.no_grad():
            self.num_features = int(self._run(torch.zeros(1, 3, input_px, input_px, dtype=torch.uint8)).shape[-1])

    def _run(self, x: Tensor) -> Tensor:
        out = self.extractor(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.reshape(x.shape[0], -1)

    def forward(self, x: Tensor) -> Tensor:
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        with torch.no_grad():
            feats = self._run(x)
        self._last = (x, feats)
        return feats


@dataclass(frozen=True)
class DistanceResult:
    fid: float
    fid_ci: tuple[float, float] | None  # bootstrap interval, computed when n is below FID_RELIABLE_N
    kid: float
    kid_std: float  # std over KID subsets
    kid_subset_size: int
    n_real: int
    n_fake: int

    @property
    def fid_reliable(self) -> bool:
        return min(self.n_real, self.n_fake) >= FID_RELIABLE_N

    @property
    def kid_reliable(self) -> bool:
        return min(self.n_real, self.n_fake) >= KID_RELIABLE_N


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature matrices, computed like torchmetrics (unbiased covariances, eigenvalues of the
    product), clamped at 0 (a set against itself can come out as -4e-12)."""
    from torchmetrics.image.fid import _compute_fid

    real, fake = real.double(), fake.double()
    value = _compute_fid(real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T))
    return max(0.0, float(value))


class GenerativeDistances:
    """FID and KID (torchmetrics' own metrics) of generated sets against one reference set, with an injected feature
    extractor (real: torch-fidelity's Inception from ``settings.models.fid_inception``; tests: the tiny kit's).

    The reference features stay across ``reset_generated()``, so several image sets compare against one pass over
    the reference photos."""

    def __init__(self, extractor: nn.Module, kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                 fid_bootstrap: int = FID_BOOTSTRAP, seed: int = 0):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.features = SharedFeatures(extractor)
        self.fid = FrechetInceptionDistance(feature=self.features, reset_real_features=False)
        with warnings.catch_warnings():  # "KID will save all extracted features": features, not images; intended
            warnings.simplefilter("ignore", UserWarning)
            self.kid = KernelInceptionDistance(feature=self.features, reset_real_features=False, subsets=kid_subsets,
                                               subset_size=kid_subset_size)
        self.kid_subset_size = kid_subset_size
        self.fid_bootstrap = fid_bootstrap
        self.seed = seed

    def update(self, images: Sequence[Image.Image] | Tensor, real: bool) -> None:
        x = images if isinstance(images, Tensor) else fid_batch(images)
        self.fid.update(x, real=real)
        self.kid.update(x, real=real)

    def reset_generated(self) -> None:
        self.fid.reset()
        self.kid.reset()

    @property
    def n_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    @property
    def n_fake(self) -> int:
        return int(self.fid.fake_features_num_samples)

    def compute(self) -> DistanceResult:
        from torchmetrics.utilities import dim_zero_cat

        n_real, n_fake = self.n_real, self.n_fake
        if n_real < 2 or n_fake < 2:
            raise ValueError(f"FID/KID need at least 2 images in each set (reference {n_real}, generated {n_fake})")
        fid = max(0.0, float(self.fid.compute()))
        subset = min(self.kid_subset_size, n_real, n_fake)
        self.kid.subset_size = subset
        torch.manual_seed(self.seed)  # KID's subsets are drawn with torch's global generator
        kid_mean, kid_std = self.kid.compute()
        ci = None
        if min(n_real, n_fake) < FID_RELIABLE_N and self.fid_bootstrap > 0:
            real = dim_zero_cat(self.kid.real_features).double()
            fake = dim_zero_cat(self.kid.fake_features).double()
            g = torch.Generator().manual_seed(self.seed)
            boots = [frechet_distance(real[torch.randint(0, n_real, (n_real,), generator=g)],
                                      fake[torch.randint(0, n_fake, (n_fake,), generator=g)])
                     for _ in range(self.fid_bootstrap)]
            ci = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
        return DistanceResult(fid=fid, fid_ci=ci, kid=float(kid_mean), kid_std=float(kid_std), kid_subset_size=subset,
                              n_real=n_real, n_fake=n_fake)


# -- per-image metrics ----------------------------------------------------------------------------------------------

class PerImageMetric(Metric):
    """A metric with one value per image: ``update`` scores a batch (kept in ``last_values`` for the caller to store)
    and adds it to a running sum; ``compute`` is the mean. Nothing per image is kept in the metric's state."""

    is_differentiable = False
    full_state_update = False
    higher_is_better: bool = True

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")
        self.last_values: Tensor = torch.empty(0, dtype=torch.float64)

    def score(self, *args: Any) -> Tensor:
        raise NotImplementedError

    def update(self, *args: Any) -> None:
        with torch.no_grad():
            values = self.score(*args).detach().double().reshape(-1).cpu()
        self.total += values.sum()
        self.count += values.numel()
        self.last_values = values

    def compute(self) -> Tensor:
        return self.total / self.count


class Psnr(PerImageMetric):
    """PSNR per image (dB), not pooled over the batch: torchmetrics with ``dim=(1, 2, 3)``. Inputs: (N, 3, H, W)
    in [0, 1]."""

    higher_is_better = True

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        from torchmetrics.functional.image import peak_signal_noise_ratio

        values = peak_signal_noise_ratio(preds, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
        return values.reshape(-1).clamp(max=PSNR_MAX_DB)


class Ssim(PerImageMetric):
    """SSIM per image with the usual Gaussian window (sigma 1.5, 11 px). Inputs: (N, 3, H, W) in [0, 1].

    torchmetrics averages the SSIM map over the whole image, borders included (where its reflection padding
    feeds the window); Wang et al.'s reference code and scikit-image leave out the 5 px the window cannot cover.
    The map comes from torchmetrics and is averaged the reference way, so a 64 px image differs from scikit-image by
    ~1e-6 instead of ~0.02."""

    higher_is_better = True
    border = 5  # (11 - 1) // 2
    chunk = 2  # images per convolution: the grouped 11x11 conv needs ~180 MB of buffers per 512² image

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        from torchmetrics.functional.image import structural_similarity_index_measure

        out = []
        for i in range(0, preds.shape[0], self.chunk):
            # float32: CPU convolutions in float64 are ~15x slower, and SSIM needs no more than float32 precision
            _, full = structural_similarity_index_measure(
                preds[i:i + self.chunk].float(), target[i:i + self.chunk].float(), gaussian_kernel=True, sigma=1.5,
                kernel_size=11, data_range=1.0, reduction="none", return_full_image=True)
            b = self.border
            out.append(full[..., b:-b, b:-b].reshape(full.shape[0], -1).mean(-1))
        return torch.cat(out)


class Lpips(PerImageMetric):
    """LPIPS distance per image pair with an injected network (torchmetrics' ``_LPIPS``: a backbone plus the shipped
    linear layers; see ``load_lpips``). Inputs: (N, 3, H, W) in [0, 1]."""

    higher_is_better = False

    def __init__(self, net: nn.Module, **kwargs: Any):
        super().__init__(**kwargs)
        self.net = net.eval()

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        return self.net(preds.float(), target.float(), normalize=True).reshape(-1)


class LpipsDiversity(Metric):
    """Mean pairwise LPIPS among the images of one prompt (a LoRA that collapsed to one picture scores ~0).
    ``update(images)`` takes all images of one prompt; ``last_value`` is that prompt's diversity (None below 2)."""

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, net: nn.Module, **kwargs: Any):
        super().__init__(**kwargs)
        self.net = net.eval()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("groups", torch.tensor(0), dist_reduce_fx="sum")
        self.last_value: float | None = None

    def update(self, images: Tensor) -> None:
        k = images.shape[0]
        if k < 2:
            self.last_value = None
            return
        i, j = torch.triu_indices(k, k, offset=1)
        with torch.no_grad():
            d = self.net(images[i].float(), images[j].float(), normalize=True).reshape(-1).double()
        self.last_value = float(d.mean())
        self.total += d.mean()
        self.groups += 1

    def compute(self) -> Tensor:
        return self.total / self.groups


class ClipScore(PerImageMetric):
    """Cosine similarity between an image and its prompt with an open_clip model (raw, -1..1). The 0-100
    "CLIPScore" scale (torchmetrics' definition) is ``clip_score_100(cos) = 100 * max(cos, 0)``."""

    higher_is_better = True

    def __init__(self, model: nn.Module, preprocess: Callable, tokenizer: Callable, device: str = "cpu", **kwargs: Any):
        super().__init__(**kwargs)
        self.model, self.preprocess, self.tokenizer, self.device_name = model.eval(), preprocess, tokenizer, device

    def image_embeddings(self, images: Sequence[Image.Image]) -> Tensor:
        """Unit image embeddings (``models.clip``'s, float32) as float64, for the brand centroid arithmetic."""
        return clip_image_embeddings(self.model, self.preprocess, images, self.device_name).double()

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> Tensor:
        """The gate's cosine (``models.clip.clip_cosines``), so an image gets one CLIP number everywhere."""
        if len(images) != len(texts):
            raise ValueError(f"CLIP score needs one prompt per image: {len(images)} images, {len(texts)} prompts")
        return clip_cosines(self.model, self.preprocess, self.tokenizer, images, texts, self.device_name)


def clip_score_100(cosine: Tensor | float) -> Tensor | float:
    """CLIPScore on torchmetrics' 0-100 scale: 100 * max(cosine, 0)."""
    if isinstance(cosine, Tensor):
        return 100.0 * cosine.clamp(min=0)
    return 100.0 * max(float(cosine), 0.0)


class BrandConsistency(PerImageMetric):
    """Cosine similarity of an image's CLIP embedding to the centroid of the brand's reference photos (the mean of
    their unit embeddings, renormalised): does the image look like this brand's catalog?"""

    higher_is_better = True

    def __init__(self, clip: ClipScore, centroid: Tensor, **kwargs: Any):
        super().__init__(**kwargs)
        if centroid.ndim != 1 or not torch.isfinite(centroid).all() or float(centroid.norm()) == 0:
            raise ValueError("the brand centroid must be a non-zero embedding vector")
        self.clip = clip
        self.centroid = (centroid / centroid.norm()).double()

    @staticmethod
    def centroid_of(clip: ClipScore, batches: Iterable[Sequence[Image.Image]]) -> tuple[Tensor, int]:
        """Stream the reference photos batch by batch: (centroid, number of photos)."""
        total, n = None, 0
        for batch in batches:
            emb = clip.image_embeddings(batch)
            total = emb.sum(0) if total is None else total + emb.sum(0)
            n += emb.shape[0]
        if total is None:
            raise ValueError("the brand has no reference photos to build a centroid from")
        return total / n, n

    def score(self, images: Sequence[Image.Image]) -> Tensor:
        return self.clip.image_embeddings(images) @ self.centroid


class BlipScore(PerImageMetric):
    """BLIP image-text matching probability: softmax of BlipForImageTextRetrieval's ITM head, index 1 ("match"),
    in 0..1. (Not BLIP's contrastive cosine, which is the ``use_itm_head=False`` output.)"""

    higher_is_better = True

    def __init__(self, model: nn.Module, processor: Any, device: str = "cpu", **kwargs: Any):
        super().__init__(**kwargs)
        self.model, self.processor, self.device_name = model.eval(), processor, device

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> Tensor:
        inputs = self.processor(images=[im.convert("RGB") for im in images], text=list(texts), return_tensors="pt",
                                padding=True, truncation=True).to(self.device_name)
        with torch.no_grad():
            out = self.model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"],
                             attention_mask=inputs.get("attention_mask"), use_itm_head=True)
        return torch.softmax(out.itm_score.double(), dim=-1)[:, 1]


class PreferenceScore(PerImageMetric):
    """PickScore (Kirstain et al. 2023): a CLIP model fine-tuned on human preferences; score = logit_scale * cosine
    between the image and the prompt (about 15-25 for real models). Useful to rank images of the same prompt; the
    absolute value has no fixed meaning."""

    higher_is_better = True

    def __init__(self, model: nn.Module, processor: Any, device: str = "cpu", **kwargs: Any):
        super().__init__(**kwargs)
        self.model, self.processor, self.device_name = model.eval(), processor, device

    @staticmethod
    def _tensor(out: Any) -> Tensor:
        # transformers 5 returns an output object from get_*_features (NOTES, "Metrics"); 4.x returned the tensor.
        return out if isinstance(out, Tensor) else out.pooler_output

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> Tensor:
        pix = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").to(self.device_name)
        txt = self.processor(text=list(texts), padding=True, truncation=True, max_length=77,
                             return_tensors="pt").to(self.device_name)
        with torch.no_grad():
            img = self._tensor(self.model.get_image_features(pixel_values=pix["pixel_values"])).double()
            tx = self._tensor(self.model.get_text_features(input_ids=txt["input_ids"],
                                                           attention_mask=txt.get("attention_mask"))).double()
            img = img / img.norm(dim=-1, keepdim=True)
            tx = tx / tx.norm(dim=-1, keepdim=True)
            return self.model.logit_scale.exp().double() * (img * tx).sum(-1)


# -- loaders for the backbones sources.py does not cover -------------------------------------------------------------

LPIPS_NETS = {"torchvision:alexnet": "alex", "torchvision:vgg16": "vgg", "torchvision:squeezenet1_1": "squeeze"}


def load_lpips(ref: str) -> nn.Module:
    """torchmetrics' LPIPS network: the torchvision backbone from the torch hub cache (``workbench models pull
    lpips_backbone``) and the linear layers torchmetrics ships. Raises ModelUnavailable when the backbone is missing."""
    from workbench.models.sources import ModelUnavailable, local_path

    if ref not in LPIPS_NETS:
        raise ModelUnavailable(ref, "not an LPIPS backbone", f"Use one of {', '.join(LPIPS_NETS)}.")
    local_path(ref)  # the cached torchvision file, or ModelUnavailable naming the remedy
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    return _NoTrainLpips(net=LPIPS_NETS[ref], pretrained=True, pnet_rand=False)


def load_preference(ref: str, device: str = "cpu") -> tuple[nn.Module, Any]:
    """(CLIPModel, processor) of a PickScore-style preference model folder or cached hub repo. Never downloads."""
    from workbench.models.sources import ModelUnavailable, local_path

    path = local_path(ref)
    from transformers import AutoProcessor, CLIPModel

    model = CLIPModel.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
    try:
        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(ref, f"no processor/tokenizer files next to the weights ({exc.__class__.__name__})",
                               "Put the CLIP processor files (preprocessor_config.json, tokenizer) in the folder.") \
            from None
    return model.to(device).eval(), processor
