"""Garment masks: matting recovers a drawn silhouette on white and on light grey; shape IoU; the segmenter path with
the tiny SegFormer; a remote-code segmenter is refused unless trusted."""
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from workbench.fidelity import masks
from workbench.models import sources, tiny

TEE = [(30, 18), (42, 14), (50, 19), (58, 14), (70, 18), (88, 32), (80, 42), (72, 36), (72, 86), (28, 86), (28, 36),
       (20, 42), (12, 32)]
SS = 4  # drawn at 4x and reduced: anti-aliased edges like a photo's


def garment_on(bg, size=192, rgb=(176, 38, 52), seed=0, scale=1.0, shape=TEE, ss=SS):
    """A shaded t-shirt with a white chest print and a dark stripe, on ``bg`` with sensor-like noise and a faint
    floor shadow. Returns (image, silhouette drawn at the same size)."""
    big = size * ss
    s = big / 100 * scale
    off = (1 - scale) * big / 2
    pts = [(off + x * s, off + y * s) for x, y in shape]
    sil = Image.new("L", (big, big), 0)
    ImageDraw.Draw(sil).polygon(pts, fill=255)
    shade = np.linspace(1.0, 0.72, big)[:, None, None]
    cloth = np.asarray(rgb, np.float64) * shade * np.ones((big, big, 3))
    c = big // 2
    cloth[c - big // 14:c + big // 14, c - big // 7:c + big // 7] = (246, 246, 242)  # a white print
    cloth[c - big // 40:c + big // 40, c - big // 9:c + big // 9] = (20, 20, 30)  # lettering on it
    canvas = Image.new("RGB", (big, big), bg)
    d = ImageDraw.Draw(canvas)
    shadow = tuple(int(v * 0.95) for v in bg)  # ΔE ~4: a soft shadow under the garment must stay background
    d.ellipse([off + 20 * s, off + 86 * s, off + 80 * s, off + 92 * s], fill=shadow)
    canvas = canvas.filter(ImageFilter.GaussianBlur(ss * 2))
    img = np.where(np.asarray(sil)[..., None] > 127, cloth, np.asarray(canvas, np.float64))
    im = Image.fromarray(np.rint(img).astype(np.uint8)).resize((size, size), Image.Resampling.LANCZOS)
    noise = np.random.default_rng(seed).normal(0, 2.0, (size, size, 3))
    im = Image.fromarray(np.clip(np.asarray(im, np.float64) + noise, 0, 255).astype(np.uint8))
    return im, np.asarray(sil.resize((size, size), Image.Resampling.BOX)) >= 128


@pytest.mark.parametrize("bg", [(255, 255, 255), (226, 226, 226), (238, 234, 226)],
                         ids=["white", "light-grey", "warm-grey"])
def test_matting_recovers_the_drawn_silhouette(bg):
    image, silhouette = garment_on(bg)
    m = masks.garment_mask(image)
    assert m.source == "matting" and m.mask.shape == silhouette.shape and m.mask.dtype == bool
    assert masks.mask_iou(m.mask, silhouette) > 0.95
    assert np.allclose(m.background_lab, masks._lab(np.asarray([[bg]], np.uint8))[0, 0], atol=2.5)
    # the soft alpha agrees with the mask away from the edge and is soft only near it
    assert m.alpha.dtype == np.float32 and 0 <= m.alpha.min() and m.alpha.max() <= 1
    assert np.abs(m.alpha - silhouette).mean() < 0.03


def test_large_images_are_matted_at_working_size_and_returned_full_size():
    image, silhouette = garment_on((255, 255, 255), size=700, ss=1)
    m = masks.garment_mask(image)
    assert m.mask.shape == (700, 700) and m.alpha.shape == (700, 700)
    assert masks.mask_iou(m.mask, silhouette) > 0.95


def test_a_plain_image_has_no_garment_and_says_what_to_do():
    with pytest.raises(ValueError, match="segmentation model"):
        masks.garment_mask(Image.new("RGB", (64, 64), (250, 250, 250)))


def test_masked_crop_is_the_garment_on_white_square_around_its_box():
    image, silhouette = garment_on((226, 226, 226))
    m = masks.garment_mask(image)
    crop = masks.masked_crop(image, m)
    assert crop.width == crop.height
    left, top, right, bottom = masks.mask_bbox(silhouette)
    assert abs(crop.width - max(right - left, bottom - top) * 1.1) <= 3
    arr = np.asarray(crop)
    assert (arr[:2] == 255).all() and (arr[:, :2] == 255).all()  # the grey background became white


def test_shape_iou_ignores_placement_and_scale_but_not_outline():
    ref = garment_on((255, 255, 255), scale=1.0)[1]
    smaller = garment_on((255, 255, 255), scale=0.7)[1]
    longer_sleeves = garment_on((255, 255, 255), shape=[(x, y) for x, y in TEE[:5]] + [(96, 50), (84, 58)]
                                + TEE[7:11] + [(14, 58), (4, 50)])[1]
    assert masks.shape_iou(ref, ref) == 1.0
    assert masks.shape_iou(ref, smaller) > 0.95  # same shape, smaller and placed elsewhere on the canvas
    assert masks.shape_iou(ref, smaller, align="canvas") < 0.6  # ... which "canvas" alignment does count
    assert masks.shape_iou(ref, longer_sleeves) < 0.9
    with pytest.raises(ValueError, match="align"):
        masks.shape_iou(ref, ref, align="centre")


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    return tiny.save_tiny_segmenter(tmp_path_factory.mktemp("seg") / "tiny-segmenter")


def test_segmenter_path_with_the_tiny_segformer(tiny_segmenter):
    from workbench.models.segmenter import load_segmenter

    seg = load_segmenter(str(tiny_segmenter))
    assert seg.kind == "semantic" and seg.demo and seg.garment_ids == (1,)
    image, _ = garment_on((255, 255, 255), size=96)
    alpha = seg(image)
    assert alpha.shape == (96, 96) and alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1

    class Oracle:  # a segmenter that knows the answer: the mask follows its alpha, cleaned like matting
        ref = "oracle"

        def __call__(self, im):
            return garment_on((255, 255, 255), size=im.width)[1].astype(np.float32)

    m = masks.garment_mask(image, segmenter=Oracle())
    assert m.source == "segmenter:oracle" and masks.mask_iou(m.mask, garment_on((255, 255, 255), size=96)[1]) > 0.99


def test_garment_classes_leave_out_background_and_the_body():
    from workbench.models.segmenter import garment_classes

    labels = {0: "Background", 1: "Hat", 2: "Hair", 4: "Upper-clothes", 6: "Pants", 11: "Face", 12: "Left-leg",
              15: "Right-arm", 16: "Bag", 20: "skin_around_neck_region", 21: "left_sleeve_for_upper"}
    assert garment_classes(labels) == (1, 4, 6, 16, 21)


def test_segmenter_missing_or_running_repo_code_is_unavailable_with_the_remedy(tmp_path):
    from workbench.models.segmenter import load_segmenter
    from workbench.settings import get_settings

    with pytest.raises(sources.ModelUnavailable, match="workbench models pull segmenter"):
        load_segmenter(get_settings().models.segmenter)
    (tmp_path / "config.json").write_text('{"auto_map": {"AutoModelForImageSegmentation": "birefnet.BiRefNet"}}')
    (tmp_path / "model.safetensors").write_bytes(b"0")
    with pytest.raises(sources.ModelUnavailable, match="trust_remote_code"):
        load_segmenter(str(tmp_path))
