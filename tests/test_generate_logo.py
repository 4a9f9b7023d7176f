"""Logo placement from SVG (issue #21 item 4): a brand's SVG logo placed on a flat synthetic garment with a
perspective warp is read back by the OCR logo check with the brand's text; hostile or broken SVGs (external
references, entities, huge sizes) are refused with a clear message, before anything renders them."""
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.review import as_role

LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="80" viewBox="0 0 300 80">'
        '<text x="150" y="58" font-family="DejaVu Sans, sans-serif" font-weight="bold" font-size="50" '
        'text-anchor="middle" fill="#111111">AURELO</text></svg>')
CORNERS = [(40, 96), (216, 104), (214, 150), (38, 140)]  # a slightly tilted, perspective quadrilateral
BRAND = """name: aurelo
title: AURELO
logo_text: AURELO
"""


@pytest.fixture(scope="module")
def ocr():
    from workbench.evaluate.ocr import load_ocr

    return load_ocr("rapidocr")


def _flat_garment() -> Image.Image:
    """A flat light-grey garment panel with a soft vertical fold (shading) on white, 256 px."""
    x = np.linspace(0, 1, 256)
    fold = 1.0 - 0.12 * np.exp(-((x - 0.62) / 0.08) ** 2)  # a darker fold across the chest
    panel = np.full((256, 256, 3), 215.0) * fold[None, :, None]
    panel[:20], panel[-20:], panel[:, :16], panel[:, -16:] = 255, 255, 255, 255
    return Image.fromarray(panel.astype(np.uint8))


def test_an_svg_logo_placed_on_a_flat_garment_is_read_back_by_ocr_with_the_brand_text(ocr):
    from workbench.evaluate.placement import brand_logo, place_and_check
    from workbench.generate.scenes.logo import brand_logo_path, save_brand_logo
    from workbench.prompts.library import save_brand_text

    admin = as_role("admin")
    save_brand_text(admin, BRAND)
    path = save_brand_logo(admin, "aurelo", LOGO)
    assert path == brand_logo_path("aurelo") and path.is_file()
    svg, text = brand_logo("aurelo")
    assert text == "AURELO"
    garment = _flat_garment()
    without = ocr.read(garment)
    assert not any("AURELO" in l.text.upper() for l in without)  # nothing to read before
    out = place_and_check(garment, svg, CORNERS, text, colour="#1E2A5E", engine=ocr)
    assert out.check.passed, out.check.text
    assert out.check.score >= 85 and "AURELO" in out.check.matched.upper().replace(" ", "")
    # the warp put the logo inside the quadrilateral, and the fold shades the ink
    a = out.placed.alpha
    ys, xs = np.nonzero(a > 0.5)
    assert 38 <= xs.min() and xs.max() <= 216 and 96 <= ys.min() and ys.max() <= 150
    ink = np.asarray(out.image, dtype=float)[a > 0.9]
    assert np.array_equal(np.asarray(garment)[a == 0], np.asarray(out.image)[a == 0])  # untouched elsewhere
    assert ink[:, 2].mean() > ink[:, 0].mean()  # the navy colour asked for


def test_the_logo_shading_follows_the_garment():
    from workbench.generate.scenes.logo import place_logo

    garment = _flat_garment()
    block = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20"><rect width="100" height="20" '
             'fill="#C0C0C0"/></svg>')
    out = np.asarray(place_logo(garment, block, [(40, 100), (216, 100), (216, 140), (40, 140)]).image, dtype=float)
    fold_col, flat_col = int(0.62 * 255), 60
    assert out[120, fold_col].mean() < out[120, flat_col].mean() - 10  # darker in the fold, like the cloth
    assert abs(out[120, flat_col].mean() - 192) < 6  # flat cloth: the logo's own grey (#C0C0C0)


HOSTILE = {
    "external entity": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                        '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>', "DTD or entities"),
    "entity bomb": ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;'
                    '&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><svg xmlns="http://www.w3.org/2000/svg">'
                    '<text>&c;</text></svg>', "DTD or entities"),
    "image from a file": ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
                          '<image xlink:href="/etc/passwd" width="10" height="10"/></svg>', "points outside the file"),
    "image from the network": ('<svg xmlns="http://www.w3.org/2000/svg"><image href="http://169.254.169.254/x.png" '
                               'width="10" height="10"/></svg>', "points outside the file"),
    "use of another file": ('<svg xmlns="http://www.w3.org/2000/svg"><use href="other.svg#logo"/></svg>',
                            "points outside the file"),
    "css url": ('<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(https://evil.example/p.svg#g)" '
                'width="5" height="5"/></svg>', "url(https://evil.example"),
    "css import": ('<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(x.css);</style></svg>', "@import"),
    "stylesheet": ('<?xml-stylesheet href="http://evil.example/s.css"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                   "xml-stylesheet"),
    "script": ('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
    "huge size": ('<svg xmlns="http://www.w3.org/2000/svg" width="1000000" height="1000000"><rect width="10" '
                  'height="10"/></svg>', "width='1000000'"),
    "huge viewBox": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1e9 1e9"/>', "viewBox"),
    "huge file": ('<svg xmlns="http://www.w3.org/2000/svg">' + "<g/>" * 200_000 + "</svg>", "byte limit"),
    "too many elements": ('<svg xmlns="http://www.w3.org/2000/svg">' + "<g/>" * 6_000 + "</svg>", "elements"),
    "not svg": ('<html><body>AURELO</body></html>', "not <svg>"),
    "broken": ('<svg xmlns="http://www.w3.org/2000/svg"><rect', "not well-formed"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_or_broken_svg_is_refused_with_a_clear_message(name):
    from workbench.generate.scenes.logo import LogoError, check_svg, place_logo

    svg, why = HOSTILE[name]
    with pytest.raises(LogoError, match="refused") as err:
        check_svg(svg)
    assert why in str(err.value)
    with pytest.raises(LogoError):  # placing never renders it either
        place_logo(_flat_garment(), svg, CORNERS)


def test_the_cli_places_a_logo_and_reports_the_ocr_check(tmp_path, ocr):
    from workbench.cli import app

    (tmp_path / "logo.svg").write_text(LOGO)
    _flat_garment().save(tmp_path / "shirt.png")
    corners = ",".join(f"{x},{y}" for x, y in CORNERS)
    res = CliRunner().invoke(app, ["generate", "logo", "--image", str(tmp_path / "shirt.png"), "--corners", corners,
                                   "--svg", str(tmp_path / "logo.svg"), "--text", "AURELO"])
    assert res.exit_code == 0, res.output
    assert "PASS for 'AURELO'" in res.output and (tmp_path / "shirt.logo.png").is_file()
    (tmp_path / "evil.svg").write_text(HOSTILE["image from a file"][0])
    bad = CliRunner().invoke(app, ["generate", "logo", "--image", str(tmp_path / "shirt.png"), "--corners", corners,
                                   "--svg", str(tmp_path / "evil.svg"), "--text", "AURELO"])
    assert bad.exit_code == 2 and "refused" in bad.output and not (tmp_path / "evil.logo.png").exists()
    wrong = CliRunner().invoke(app, ["generate", "logo", "--image", str(tmp_path / "shirt.png"), "--corners", "1,2,3",
                                     "--svg", str(tmp_path / "logo.svg"), "--text", "AURELO"])
    assert wrong.exit_code == 2 and "eight numbers" in wrong.output
