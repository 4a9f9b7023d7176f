"""Evaluation metrics against independent references on seeded inputs: scikit-image (PSNR, SSIM), numpy/scipy (FID,
KID), the models' own embeddings and heads computed by hand (CLIP, BLIP, PickScore, brand consistency), the LPIPS
formula; tiny backbones injected; missing real weights raise ModelUnavailable."""
import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from workbench.evaluate import metrics as M
from workbench.models import sources, tiny
from workbench.models.sources import ModelUnavailable


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The tiny kit's scoring models (the SDXL pipeline is not needed here)."""
    root = tmp_path_factory.mktemp("kit")
    return {"open_clip": tiny.save_tiny_open_clip(root / "clip"), "blip_itm": tiny.save_tiny_blip_itm(root / "blip"),
            "feature_extractor": tiny.save_tiny_feature_extractor(root / "fid")}


def _smooth(rng, size=64, scale=8):
    """A seeded image with structure (upsampled noise), so SSIM has something to measure."""
    small = rng.integers(0, 256, (size // scale, size // scale, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def _noisy(rng, img, sigma):
    return np.clip(img.astype(float) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _t(arrays):
    return torch.from_numpy(np.stack(arrays).astype(np.float64) / 255.0).permute(0, 3, 1, 2)


def _pil(rng, n, size=40, lo=0, hi=256):
    return [Image.fromarray(rng.integers(lo, hi, (size, size, 3)).astype(np.uint8)) for _ in range(n)]


# -- PSNR / SSIM ----------------------------------------------------------------------------------------------------

def test_psnr_is_per_image_and_equals_scikit_image():
    rng = np.random.default_rng(0)
    refs = [_smooth(rng) for _ in range(4)]
    gens = [_noisy(rng, r, s) for r, s in zip(refs, (2, 8, 20, 40))]
    psnr = M.Psnr()
    psnr.update(_t(gens), _t(refs))
    expected = [peak_signal_noise_ratio(r, g, data_range=255) for r, g in zip(refs, gens)]
    np.testing.assert_allclose(psnr.last_values.numpy(), expected, rtol=1e-6)
    pooled = 10 * np.log10(1 / np.mean((_t(gens).numpy() - _t(refs).numpy()) ** 2))
    assert float(psnr.compute()) == pytest.approx(np.mean(expected), rel=1e-6)
    assert abs(pooled - np.mean(expected)) > 1  # pooling the error over the batch would give another number
    same = M.Psnr()
    same.update(_t(refs[:1]), _t(refs[:1]))
    assert float(same.last_values[0]) == M.PSNR_MAX_DB  # identical images: capped, not inf


def test_ssim_within_001_of_scikit_image_gaussian_ssim():
    rng = np.random.default_rng(1)
    refs = [_smooth(rng) for _ in range(3)]
    gens = [_noisy(rng, r, s) for r, s in zip(refs, (5, 20, 60))]
    ssim = M.Ssim()
    ssim.update(_t(gens), _t(refs))
    expected = [structural_similarity(r, g, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=255) for r, g in zip(refs, gens)]
    assert np.max(np.abs(ssim.last_values.numpy() - expected)) < 0.01
    assert expected[0] > expected[1] > expected[2]  # the noise levels were told apart


# -- FID / KID ------------------------------------------------------------------------------------------------------

def _features(extractor, images):
    with torch.no_grad():
        return extractor(M.fid_batch(images)).double().numpy()


def test_fid_equals_a_numpy_scipy_frechet_distance_on_the_same_features(kit):
    extractor = sources.load_feature_extractor(str(kit["feature_extractor"]))
    rng = np.random.default_rng(2)
    real, fake = _pil(rng, 72, lo=0, hi=200), _pil(rng, 68, lo=60, hi=256)  # more images than the 64 features
    dist = M.GenerativeDistances(extractor, fid_bootstrap=0)
    for i in range(0, 72, 32):  # streamed in batches, as a run does
        dist.update(real[i:i + 32], real=True)
    for i in range(0, 68, 32):
        dist.update(fake[i:i + 32], real=False)
    result = dist.compute()

    f1, f2 = _features(extractor, real), _features(extractor, fake)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert expected > 0
    assert result.fid == pytest.approx(expected, rel=1e-6)
    assert (result.n_real, result.n_fake) == (72, 68)
    assert M.frechet_distance(torch.from_numpy(f1), torch.from_numpy(f1)) == pytest.approx(0.0, abs=1e-8)


def test_kid_equals_a_direct_unbiased_mmd_with_a_cubic_kernel(kit):
    extractor = sources.load_feature_extractor(str(kit["feature_extractor"]))
    rng = np.random.default_rng(3)
    real, fake = _pil(rng, 30, lo=0, hi=200), _pil(rng, 30, lo=60, hi=256)
    dist = M.GenerativeDistances(extractor, kid_subsets=1, kid_subset_size=30, fid_bootstrap=0)
    dist.update(real, real=True)
    dist.update(fake, real=False)
    result = dist.compute()

    x, y = _features(extractor, real), _features(extractor, fake)
    d, m = x.shape[1], x.shape[0]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = kxx / (m * (m - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (m * m)
    assert result.kid == pytest.approx(expected, rel=1e-6)
    assert result.kid_std == 0.0 and result.kid_subset_size == 30


def test_small_sets_are_flagged_unreliable_with_a_bootstrap_interval(kit):
    extractor = sources.load_feature_extractor(str(kit["feature_extractor"]))
    rng = np.random.default_rng(4)
    dist = M.GenerativeDistances(extractor, fid_bootstrap=20)
    dist.update(_pil(rng, 12, lo=0, hi=200), real=True)
    dist.update(_pil(rng, 9, lo=60, hi=256), real=False)
    r = dist.compute()
    assert not r.fid_reliable and not r.kid_reliable
    assert r.fid_ci is not None and r.fid_ci[0] <= r.fid_ci[1]
    assert r.kid_subset_size == 9  # torchmetrics' default 1,000 clipped to the smaller set
    dist.reset_generated()  # the reference features stay
    assert (dist.n_real, dist.n_fake) == (12, 0)


def test_clean_resize_is_pil_bicubic_in_float():
    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (50, 70, 3)).astype(np.uint8))
    out = M.clean_resize(img, 299)
    assert out.shape == (299, 299, 3) and out.dtype == np.uint8
    ref = np.asarray(Image.fromarray(np.asarray(img)[..., 1].astype(np.float32), mode="F").resize(
        (299, 299), Image.Resampling.BICUBIC))
    assert np.abs(out[..., 1].astype(float) - np.clip(ref, 0, 255)).max() <= 0.5 + 1e-4
    batch = M.fid_batch([img, img])
    assert batch.shape == (2, 3, 299, 299) and batch.dtype == torch.uint8


# -- CLIP, BLIP, brand consistency, preference -----------------------------------------------------------------------

def test_clip_score_equals_open_clip_embeddings_by_hand(kit):
    model, preprocess, tokenizer = sources.load_open_clip(str(kit["open_clip"]))
    rng = np.random.default_rng(6)
    images = _pil(rng, 3, size=48)
    prompts = ["a red t-shirt on white", "a navy cap", "olive trousers, studio photo"]
    clip = M.ClipScore(model, preprocess, tokenizer)
    clip.update(images, prompts)
    expected = []
    with torch.no_grad():
        for im, p in zip(images, prompts):
            i = model.encode_image(preprocess(im).unsqueeze(0))[0]
            t = model.encode_text(tokenizer([p]))[0]
            expected.append(float(torch.dot(i, t) / (i.norm() * t.norm())))
    np.testing.assert_allclose(clip.last_values.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(M.clip_score_100(clip.last_values).numpy(), [100 * max(c, 0) for c in expected],
                               atol=1e-4)
    assert float(clip.compute()) == pytest.approx(np.mean(expected), abs=1e-6)
    with pytest.raises(ValueError, match="one prompt per image"):
        clip.update(images, prompts[:2])


def test_blip_score_equals_the_itm_head_by_hand(kit):
    model, processor = sources.load_blip_itm(str(kit["blip_itm"]))
    rng = np.random.default_rng(7)
    images = _pil(rng, 2, size=48)
    texts = ["a photo of a shirt", "a jacket on white background"]
    blip = M.BlipScore(model, processor)
    blip.update(images, texts)
    inputs = processor(images=images, text=texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        img = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        txt = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                 encoder_hidden_states=img,
                                 encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long)).last_hidden_state
        logits = model.itm_head(txt[:, 0, :]).double()
    expected = (logits[:, 1].exp() / logits.exp().sum(-1)).numpy()
    np.testing.assert_allclose(blip.last_values.numpy(), expected, rtol=1e-6)
    assert ((0 < blip.last_values) & (blip.last_values < 1)).all()


def test_brand_consistency_is_cosine_to_the_reference_centroid(kit):
    clip = M.ClipScore(*sources.load_open_clip(str(kit["open_clip"])))
    rng = np.random.default_rng(8)
    refs, gens = _pil(rng, 5, size=48), _pil(rng, 2, size=48)
    centroid, n = M.BrandConsistency.centroid_of(clip, [refs[:3], refs[3:]])
    assert n == 5
    brand = M.BrandConsistency(clip, centroid)
    brand.update(gens)
    model, preprocess = clip.model, clip.preprocess
    norm = torch.nn.functional.normalize
    with torch.no_grad():
        r = norm(model.encode_image(torch.stack([preprocess(i) for i in refs])).double(), dim=-1)
        g = norm(model.encode_image(torch.stack([preprocess(i) for i in gens])).double(), dim=-1)
    c = r.mean(0)
    expected = (g @ (c / c.norm())).numpy()
    np.testing.assert_allclose(brand.last_values.numpy(), expected, rtol=1e-6)


def _tiny_preference_model(folder):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = tiny.tiny_clip_tokenizer()
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=77,
                                      bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
                                      eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>")),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(str(folder), safe_serialization=True)
    CLIPProcessor(CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tok).save_pretrained(str(folder))
    return folder


def test_preference_score_is_logit_scale_times_cosine(tmp_path):
    model, processor = M.load_preference(str(_tiny_preference_model(tmp_path / "pick")))
    rng = np.random.default_rng(9)
    images, texts = _pil(rng, 2, size=48), ["a red shirt", "a cap"]
    pref = M.PreferenceScore(model, processor)
    pref.update(images, texts)
    pix = processor(images=images, return_tensors="pt")["pixel_values"]
    ids = processor(text=texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        i = model.visual_projection(model.vision_model(pixel_values=pix).pooler_output).double()
        t = model.text_projection(model.text_model(**ids).pooler_output).double()
        expected = (model.logit_scale.exp().double() * torch.nn.functional.cosine_similarity(i, t)).numpy()
    np.testing.assert_allclose(pref.last_values.numpy(), expected, rtol=1e-6)


# -- LPIPS ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lpips_net():
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    torch.manual_seed(0)
    return _NoTrainLpips(net="squeeze", pretrained=True, pnet_rand=True)  # random backbone: no download


def test_lpips_with_an_injected_backbone_follows_the_lpips_formula(lpips_net):
    rng = np.random.default_rng(10)
    a = _t([_smooth(rng) for _ in range(2)]).float()
    b = _t([_noisy(rng, (x.permute(1, 2, 0).numpy() * 255).astype(np.uint8), 30) for x in a]).float()
    lp = M.Lpips(lpips_net)
    lp.update(a, b)
    with torch.no_grad():
        f0 = lpips_net.net(lpips_net.scaling_layer(2 * a - 1))
        f1 = lpips_net.net(lpips_net.scaling_layer(2 * b - 1))
        total = 0
        for k, (x, y) in enumerate(zip(f0, f1)):
            x = x / torch.sqrt((x ** 2).sum(1, keepdim=True) + 1e-10)
            y = y / torch.sqrt((y ** 2).sum(1, keepdim=True) + 1e-10)
            total = total + lpips_net.lins[k].model((x - y) ** 2).mean((2, 3))
    np.testing.assert_allclose(lp.last_values.numpy(), total.reshape(-1).numpy(), rtol=1e-5)
    assert (lp.last_values > 0).all()
    same = M.Lpips(lpips_net)
    same.update(a, a)
    assert same.last_values.abs().max() < 1e-6


def test_lpips_diversity_is_zero_for_a_collapsed_set(lpips_net):
    rng = np.random.default_rng(11)
    one = _t([_smooth(rng)]).float()
    varied = _t([_smooth(rng) for _ in range(3)]).float()
    div = M.LpipsDiversity(lpips_net)
    div.update(one.repeat(3, 1, 1, 1))
    assert div.last_value == pytest.approx(0.0, abs=1e-6)
    div.update(varied)
    assert div.last_value > 0.01
    div.update(one)  # a prompt with one image has no pairs
    assert div.last_value is None and int(div.groups) == 2


# -- aggregates and memory -------------------------------------------------------------------------------------------

def test_aggregate_mean_interval_median_top5():
    a = M.aggregate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, None, float("nan")], higher_is_better=True)
    assert (a.n, a.mean, a.median, a.top5) == (10, 5.5, 5.5, 8.0)
    assert a.ci_low < 5.5 < a.ci_high
    low = M.aggregate(range(1, 11), higher_is_better=False)
    assert low.top5 == 3.0
    rng = np.random.default_rng(0)
    wide = M.aggregate(rng.normal(0, 1, 20))
    narrow = M.aggregate(rng.normal(0, 1, 2000))
    assert (narrow.ci_high - narrow.ci_low) < (wide.ci_high - wide.ci_low) / 4
    assert M.aggregate([]).mean is None and M.aggregate([3.0]).ci_low is None


def test_metric_state_does_not_grow_with_images():
    psnr = M.Psnr()
    rng = np.random.default_rng(12)
    for _ in range(5):
        x = _t([_smooth(rng, 32, 4) for _ in range(4)])
        psnr.update(x, x.flip(-1))
    assert psnr.total.numel() == 1 and psnr.count.numel() == 1 and int(psnr.count) == 20


# -- missing weights --------------------------------------------------------------------------------------------------

def test_missing_real_weights_raise_model_unavailable_naming_the_model():
    from workbench.evaluate.backbones import load_backbone
    from workbench.settings import get_settings

    refs = get_settings().models
    for load, ref in [(M.load_lpips, refs.lpips_backbone), (sources.load_feature_extractor, refs.fid_inception),
                      (sources.load_open_clip, refs.clip_scorer), (sources.load_blip_itm, refs.blip_itm),
                      (M.load_preference, refs.preference)]:
        with pytest.raises(ModelUnavailable) as exc:
            load(ref)
        assert ref in str(exc.value) and "workbench models pull" in exc.value.remedy
    backbone = load_backbone("fid_kid", refs.fid_inception)
    assert not backbone.ok and backbone.error["ref"] == refs.fid_inception and backbone.model is None
