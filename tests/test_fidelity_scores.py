"""Product fidelity: CIEDE2000 against Sharma, Wu and Dalal's published test data; the ΔE reading; a recoloured
garment scores a different colour; DINO / CLIP-I with the tiny models; missing models are "unavailable", never a
number."""
import time

import numpy as np
import pytest
from PIL import Image

from workbench.data.demo import draw_garment
from workbench.fidelity import scores as fidelity
from workbench.evaluate.product_cards import PRODUCT_CARDS, delta_e_reading
from workbench.models import sources, tiny

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes, supplementary test
# data, and mathematical observations", Color Res. Appl. 30(1), Table 1: L1 a1 b1, L2 a2 b2, ΔE00 (kL = kC = kH = 1).
SHARMA_2005 = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_equals_sharma_wu_dalal_2005_all_34_pairs():
    assert len(SHARMA_2005) == 34
    table = np.asarray(SHARMA_2005)
    got = fidelity.ciede2000(table[:, 0:3], table[:, 3:6])
    worst = np.abs(got - table[:, 6]).max()
    assert worst <= 1e-4, f"largest deviation {worst:.2e}"
    for row in SHARMA_2005:  # symmetric, and pair by pair as floats
        assert fidelity.ciede2000(row[3:6], row[0:3]) == pytest.approx(row[6], abs=1e-4)


@pytest.mark.parametrize("de,reading", [(0.0, "not noticeable"), (1.99, "not noticeable"),
                                        (2.0, "noticeable (ΔE 2-5)"), (5.0, "noticeable (ΔE 2-5)"),
                                        (5.01, "a different colour")])
def test_delta_e_reading(de, reading):
    assert delta_e_reading(de).startswith(reading)


def test_cards_cover_every_metric_and_say_which_way_is_better():
    assert set(PRODUCT_CARDS) == {"dino", "clip_i", "delta_e", "shape_iou", "cmmd", "fd_dinov2"}
    assert PRODUCT_CARDS["delta_e"].higher_is_better is False and PRODUCT_CARDS["dino"].higher_is_better
    assert PRODUCT_CARDS["cmmd"].reliable_n < PRODUCT_CARDS["fd_dinov2"].reliable_n
    assert all(c.key == k and c.title and c.meaning and c.caveats for k, c in PRODUCT_CARDS.items())


def test_dominant_colour_is_the_cloth_not_the_print():
    cloth = np.tile([[40.0, 60.0, 20.0]], (700, 1))
    print_ = np.tile([[95.0, 0.0, 0.0]], (300, 1))
    lab = fidelity.dominant_lab(np.concatenate([cloth, print_]) + np.random.default_rng(0).normal(0, 0.5, (1000, 3)))
    assert np.allclose(lab, (40, 60, 20), atol=0.2)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity-kit")
    dino = tiny.save_tiny_dinov2(root / "tiny-dinov2")
    clip = tiny.save_tiny_open_clip(root / "tiny-open-clip")
    from workbench.settings import Settings

    return fidelity.load_fidelity_models(Settings(models={"dinov2": str(dino), "clip_scorer": str(clip)}))


@pytest.fixture(scope="module")
def product():
    """An AURELO demo t-shirt: two reference photos (different framing), a new shot, and a recoloured copy."""
    import random

    refs = [draw_garment("t-shirt", (176, 38, 52), 160, rng=random.Random(s)) for s in (1, 2)]
    shot = draw_garment("t-shirt", (176, 38, 52), 160, rng=random.Random(3))
    arr = np.asarray(shot)
    recoloured = Image.fromarray(arr[..., [2, 1, 0]])  # red cloth becomes blue, white stays white
    return refs, shot, recoloured


def test_recoloured_garment_scores_a_different_colour(product, models):
    refs, shot, recoloured = product
    ref = fidelity.prepare_references(refs, models=models)
    same = fidelity.fidelity_scores(refs[0], ref, models=models)
    new = fidelity.fidelity_scores(shot, ref, models=models)
    other = fidelity.fidelity_scores(recoloured, ref, models=models)
    assert same.delta_e < 1.0 and new.delta_e < 1.0
    assert other.delta_e > 5.0 and other.delta_e > same.delta_e
    assert other.delta_e_reading == "a different colour (ΔE > 5)"
    assert same.shape_iou > 0.97 and other.shape_iou > 0.97  # recolouring keeps the shape
    assert same.mask_source == "matting" and same.n_references == 2


def test_dino_and_clip_i_with_the_tiny_models_are_cosines_marked_demo(product, models):
    refs, shot, _ = product
    r = fidelity.fidelity_scores(shot, refs, models=models)  # references as photos: prepared on the fly
    assert r.unavailable == {} and r.demo
    for v in (r.dino, r.clip_i):
        assert -1.0 <= v <= 1.0 + 1e-9
    alone = fidelity.fidelity_scores(refs[0], [refs[0]], models=models)
    assert alone.dino == pytest.approx(1.0) and alone.clip_i == pytest.approx(1.0)
    # independent check of the DINO score: mean over references of the cosine of the masked crops
    from workbench.fidelity.masks import garment_mask, masked_crop

    crops = [masked_crop(im, garment_mask(im)) for im in refs + [shot]]
    f = models["dinov2"].features(crops).numpy()
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    assert r.dino == pytest.approx(float(np.mean(f[:2] @ f[2])), abs=1e-9)


def test_missing_models_are_unavailable_with_the_remedy_never_a_number(product):
    refs, shot, _ = product
    start = time.perf_counter()
    models = fidelity.load_fidelity_models()  # the defaults: not on this offline machine
    assert time.perf_counter() - start < 5.0
    assert isinstance(models["dinov2"], sources.ModelUnavailable)
    r = fidelity.fidelity_scores(shot, refs, models=models)
    assert r.dino is None and r.clip_i is None
    assert r.unavailable["dino"].startswith("unavailable: facebook/dinov2-base")
    assert "workbench models pull dinov2" in r.unavailable["dino"]
    assert "workbench models pull clip_scorer" in r.unavailable["clip_i"]
    assert r.delta_e is not None and r.shape_iou is not None and not r.demo  # these need no model


def test_an_image_without_a_garment_gives_no_numbers(product, models):
    refs, _, _ = product
    r = fidelity.fidelity_scores(Image.new("RGB", (96, 96), "white"), refs, models=models)
    assert r.dino is r.delta_e is r.shape_iou is None
    assert set(r.unavailable) == {"dino", "clip_i", "delta_e", "shape_iou"}
    assert "no garment found" in r.unavailable["delta_e"]
