"""A product's logo region (issue #21 item 4): four corners recorded per product photo (normalised), set from the CLI
and the Generate page, audited; `workbench generate logo` and the Place logo tab use it when no corners are given,
on the photo itself and, mapped through the scene's placement, on its product scenes (that one is in
test_generate_scene.py, beside the scene kit). The click-to-pick corner logic
(clicks -> ordered quadrilateral, reset, a fifth click starts again) is a pure function tested here, as AppTest
cannot click inside a component."""
import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from helpers.data import CURATOR
from helpers.review import as_role
from test_generate_logo import BRAND, CORNERS, LOGO, _flat_garment

PX = ",".join(f"{x},{y}" for x, y in CORNERS)


def _product(tmp_path, sku: str, photo: Image.Image):
    from workbench.data.tables import Item
    from workbench.db import session_scope
    from workbench.products import create_product
    from workbench.products.importing import import_catalog

    folder = tmp_path / f"photos-{sku}"
    folder.mkdir()
    photo.save(folder / "1.png")
    report = import_catalog(CURATOR, folder, workers=1)
    with session_scope() as s:
        ids = list(s.scalars(select(Item.id).where(Item.dataset_id == report.dataset_id)))
    return create_product(CURATOR, sku, "Aurelo tee", item_ids=ids, category="T-shirts", brand="AURELO")


@pytest.fixture
def tee(tmp_path):
    """AUR-7: one 256 px photo of a flat garment (the OCR test's), the brand profile and its SVG logo."""
    from workbench.generate.scenes.logo import save_brand_logo
    from workbench.prompts.library import save_brand_text

    admin = as_role("admin")
    save_brand_text(admin, BRAND)
    save_brand_logo(admin, "aurelo", LOGO)
    return _product(tmp_path, "AUR-7", _flat_garment())


def test_a_logo_region_round_trips_through_the_db_and_the_cli_and_is_audited(tee):
    from workbench.auth import PermissionDenied
    from workbench.cli import app
    from workbench.db import AuditLog, session_scope
    from workbench.products import ProductError
    from workbench.products.logo_region import clear_logo_region, logo_region, set_logo_region

    assert logo_region("AUR-7") is None
    run = CliRunner().invoke
    res = run(app, ["products", "logo-region", "AUR-7", "--corners", PX])  # pixels of the 256 px photo
    assert res.exit_code == 0, res.output
    r = logo_region("AUR-7")
    assert r.item_id == tee.item_ids[0]
    assert np.allclose(r.corners, [(x / 256, y / 256) for x, y in CORNERS], atol=1e-6)
    shown = run(app, ["products", "logo-region", "AUR-7"])
    assert shown.exit_code == 0 and '"photo_size": [256, 256]' in shown.output
    assert '"pixels": [[40.0, 96.0], [216.0, 104.0], [214.0, 150.0], [38.0, 140.0]]' in shown.output
    assert json.loads(run(app, ["products", "show", "AUR-7"]).output)["logo_region"]["item_id"] == r.item_id
    crossed = "40,96,214,150,216,104,38,140"  # top-left, bottom-right, top-right, bottom-left: crosses itself
    bad = run(app, ["products", "logo-region", "AUR-7", "--corners", crossed])
    assert bad.exit_code == 2 and "convex quadrilateral in order" in bad.output
    outside = run(app, ["products", "logo-region", "AUR-7", "--normalised", "--corners", "0,0,1.2,0,1,1,0,1"])
    assert outside.exit_code == 2 and "must lie in 0..1" in outside.output
    assert np.allclose(logo_region("AUR-7").corners, r.corners)  # refused writes changed nothing
    with pytest.raises(PermissionDenied):
        set_logo_region(as_role("approver"), "AUR-7", r.corners)
    with pytest.raises(ProductError, match="not a photo of AUR-7"):
        set_logo_region(CURATOR, "AUR-7", r.corners, item_id=999_999)
    with session_scope() as s:
        [row] = s.scalars(select(AuditLog).where(AuditLog.action == "product.logo_region"))
        assert row.entity_id == "AUR-7" and row.before["corners"] is None
        assert np.allclose(row.after["corners"], r.corners)
    assert clear_logo_region(CURATOR, "AUR-7") and logo_region("AUR-7") is None
    assert run(app, ["products", "logo-region", "AUR-7"]).exit_code == 1


def test_a_logo_placed_with_the_stored_region_is_the_one_placed_with_typed_corners_and_reads_back(tee, tmp_path):
    from workbench.cli import app
    from workbench.generate.scenes.logo import place_logo
    from workbench.products.logo_region import normalise, set_logo_region

    set_logo_region(CURATOR, "AUR-7", normalise(CORNERS, 256, 256))
    shirt = tmp_path / "shirt.png"
    _flat_garment().save(shirt)
    res = CliRunner().invoke(app, ["generate", "logo", "--image", str(shirt), "--product", "AUR-7", "--brand",
                                   "aurelo", "--colour", "#1E2A5E"])  # no --corners: the product's region
    assert res.exit_code == 0, res.output
    assert "corners from AUR-7's logo region (same framing): 40.0,96.0,216.0,104.0" in res.output
    assert "PASS for 'AURELO'" in res.output  # the one OCR read of this file
    typed = place_logo(_flat_garment(), LOGO, CORNERS, colour="#1E2A5E").image  # as test_generate_logo's OCR test
    got = np.asarray(Image.open(tmp_path / "shirt.logo.png"), dtype=int)
    assert np.abs(got - np.asarray(typed, dtype=int)).max() <= 1
    none = CliRunner().invoke(app, ["generate", "logo", "--image", str(shirt), "--brand", "aurelo"])
    assert none.exit_code == 2 and "give --corners, or --product SKU" in none.output


def test_clicks_become_an_ordered_quad_a_fifth_click_starts_again_and_reset_empties():
    from workbench.ui.scene import CornerPicks, order_quad

    def click(x, y, t, shown=128):  # the component's value: a click on the image shown 128 px wide (of 256)
        return {"x": x, "y": y, "width": shown, "height": shown, "unix_time": t}

    p = CornerPicks()
    p = p.click(click(20, 48, 1), (256, 256))
    assert p.points == ((40.0, 96.0),)  # scaled from the shown size to the image's
    assert p.click(click(20, 48, 1), (256, 256)) == p  # a rerun hands the same click back: not taken twice
    assert p.click(None, (256, 256)) == p and p.quad is None
    for t, (x, y) in enumerate([(108, 52), (107, 75), (19, 70)], 2):
        p = p.click(click(x, y, t), (256, 256))
    assert p.quad == [(40, 96), (216, 104), (214, 150), (38, 140)]
    # a click order that crosses itself, or runs the other way, still gives the unmirrored quad from click 1
    assert order_quad([(40, 96), (216, 104), (38, 140), (214, 150)]) == [(40, 96), (216, 104), (214, 150), (38, 140)]
    assert order_quad([(40, 96), (38, 140), (214, 150), (216, 104)]) == [(40, 96), (216, 104), (214, 150), (38, 140)]
    fifth = p.click(click(200, 200, 9), (256, 256))
    assert fifth.points == ((256.0, 256.0),) and fifth.quad is None  # a new quad; clamped to the image
    gone = p.reset()
    assert gone.points == () and gone.click(click(108, 52, 4), (256, 256)) == gone  # the last click stays taken


def test_the_place_logo_tab_uses_the_products_stored_region_and_saves_a_new_one(tee):
    from streamlit.testing.v1 import AppTest

    from helpers.review import make_users
    from workbench.products.logo_region import logo_region, normalise, set_logo_region

    make_users()  # the tab saves as the signed-in marketer, mia
    set_logo_region(CURATOR, "AUR-7", normalise(CORNERS, 256, 256))

    def tab():
        from workbench.ui.scene import render_logo_tab

        render_logo_tab("mia")

    at = AppTest.from_function(tab, default_timeout=60).run()
    assert not at.exception, at.exception
    item = tee.item_ids[0]
    at.selectbox(key="generate_logo_source").set_value(f"photo:AUR-7:{item}").run()
    assert not at.exception, at.exception
    ident = f"photo:AUR-7:{item}"
    assert at.selectbox(key=f"generate_logo_product_{ident}").value == "AUR-7"  # the photo's product
    assert at.text_input(key=f"generate_logo_corners_{ident}_AUR-7").value == "40,96,216,104,214,150,38,140"
    captions = " ".join(c.value for c in at.caption)
    assert "logo region" in captions and "corners 40,96,216,104,214,150,38,140" in captions
    at.selectbox(key="generate_logo_brand").set_value("aurelo").run()
    assert not at.warning and any("preview" in c for i in at.get("image") for c in i.captions)  # the live preview
    at.text_input(key=f"generate_logo_corners_{ident}_AUR-7").set_value("30,90,200,90,200,150,30,150")
    at.button(key="generate_logo_use_typed").click().run()
    assert "corners 30,90,200,90,200,150,30,150" in " ".join(c.value for c in at.caption)
    at.button(key="generate_logo_save_region").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Saved as AUR\\-7's logo region (item" in at.success[0].value  # plain() escapes the sku
    assert np.allclose(logo_region("AUR-7").corners, normalise([(30, 90), (200, 90), (200, 150), (30, 150)], 256,
                                                              256))
