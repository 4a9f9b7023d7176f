"""OCR logo checks with RapidOCR, offline: the wordmark on the synthetic catalog is read and matched; an image without
it (or with a garbled one) fails; look-alike characters are folded; EasyOCR without weights falls back, and says so."""
import numpy as np
import pytest
from PIL import Image

from workbench.data.demo import BRAND, draw_garment, make_demo_catalog
from workbench.evaluate.ocr import DEFAULT_THRESHOLD, check_logo, draw_overlay, load_ocr, match_score, normalise


@pytest.fixture(scope="module")
def engine():
    return load_ocr("rapidocr")


def test_reads_the_wordmark_on_synthetic_catalog_images(engine, tmp_path):
    cat = make_demo_catalog(tmp_path / "cat", seed=0, size=160, colours=1, extras=False)
    # a dark-on-light and a light-on-dark shot: both inks the catalog uses
    paths = [p for p, r in zip(cat.image_paths, cat.rows) if r["articleType"] in ("Tshirts", "Caps")]
    assert len(paths) == 2
    for path in paths:
        check = check_logo(engine, Image.open(path), BRAND)
        assert check.passed, (path, check.text, check.score)
        assert check.score == 100.0 and check.matched.upper() == BRAND
        assert check.confidence > 0.9 and check.backend.startswith("rapidocr ") and check.fallback == ""
        assert len(check.lines) >= 1 and len(check.lines[0].box) == 4


def test_fails_on_an_image_without_the_wordmark_and_on_a_garbled_one(engine):
    plain = check_logo(engine, draw_garment("t-shirt", (30, 42, 94), 160, brand=""), BRAND)
    assert not plain.passed and plain.score < DEFAULT_THRESHOLD
    garbled = check_logo(engine, draw_garment("t-shirt", (30, 42, 94), 160, brand="AURALO"), BRAND)
    assert "AURALO" in garbled.text.upper()  # read fine, but one letter wrong in a six-letter logo
    assert not garbled.passed and garbled.score == pytest.approx(100 * 5 / 6)
    other = check_logo(engine, draw_garment("t-shirt", (30, 42, 94), 160), "NORTHWIND")
    assert not other.passed  # the right text for another brand is a failure


def test_overlay_draws_the_boxes(engine):
    image = draw_garment("hoodie", (214, 160, 36), 160)
    check = check_logo(engine, image, BRAND)
    overlay = np.asarray(draw_overlay(image, check))
    assert overlay.shape == (160, 160, 3)
    green = (overlay[..., 1] > 150) & (overlay[..., 0] < 60) & (overlay[..., 2] < 100)
    assert green.sum() > 20  # the matched box is drawn in green
    detail = check.to_detail()
    assert detail["passed"] and detail["boxes"][0]["text"].upper() == BRAND


def test_normalisation_folds_case_spacing_and_lookalikes():
    assert normalise("North Wind") == normalise("NORTHWIND") == normalise("n0rth-wind")
    assert normalise("AURE1O") == normalise("aurelo") == normalise("AURE|O")
    assert normalise("ACME 5TUDI0") == normalise("acme studio")
    assert normalise("ACNE") != normalise("ACME")
    assert match_score("AURELO", "AURELO STUDIO 2026") == 100.0  # the logo inside a longer line
    assert match_score("AURELO", "A") < 50  # one stray letter never matches a whole logo
    assert match_score("AURELO", "") == 0.0


def test_check_logo_rejects_an_empty_logo_text(engine):
    with pytest.raises(ValueError, match="logo_text"):
        check_logo(engine, Image.new("RGB", (32, 32)), " - ")


def test_easyocr_without_weights_falls_back_to_rapidocr_and_records_it():
    engine = load_ocr("easyocr:en")
    assert engine.backend.startswith("rapidocr ")
    assert "easyocr:en unavailable" in engine.fallback and "craft_mlt_25k.pth" in engine.fallback
