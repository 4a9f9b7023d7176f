"""Generating for a product and checking it: `generate run --product` puts the SKU in the PNG provenance and the DB; a
recoloured copy of the product is held by the fidelity gate with its reason in the review queue; the brand's limits
come from its profile; a product's colour is measured from its photos; the prompt is built from the product."""
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from helpers.data import CURATOR
from helpers.review import as_role, make_generation
from workbench.data.demo import draw_garment
from workbench.products import create_product, fidelity_rows, fidelity_summary, link_generation, products_of_generation

RED = (176, 38, 52)
MIA = as_role("marketer")


@pytest.fixture
def jacket(tmp_path):
    """AUR-1001: a red AURELO jacket with two reference photos (dataset items)."""
    from workbench.data.tables import Item
    from workbench.db import session_scope
    from workbench.products.importing import import_catalog

    (tmp_path / "photos").mkdir()
    for n in (1, 2):
        draw_garment("jacket", RED, 96, rng=random.Random(n)).save(tmp_path / "photos" / f"{n}.png")
    report = import_catalog(CURATOR, tmp_path / "photos", workers=1)
    with session_scope() as s:
        ids = list(s.scalars(select(Item.id).where(Item.dataset_id == report.dataset_id).order_by(Item.id)))
    return create_product(CURATOR, "AUR-1001", "Aurelo Red Jacket", item_ids=ids, category="Jackets", colour="Red",
                          brand="AURELO")


def _generation_of(image: Image.Image, **kw) -> int:
    gid = make_generation(brand="", **kw)
    from workbench.generate.tables import Generation
    from workbench.db import session_scope

    with session_scope() as s:
        image.save(s.get(Generation, gid).image_path)
    return gid


def test_a_recoloured_copy_of_the_product_is_held_by_the_fidelity_gate_with_the_reason(jacket):
    from workbench.generate.product import check_fidelity
    from workbench.review import QueueFilter, list_queue

    reference = Image.open(jacket.images[0]).convert("RGB")
    recoloured = Image.fromarray(np.asarray(reference)[..., [2, 1, 0]])  # red cloth turns blue, white stays white
    same, other = _generation_of(reference, seed=1), _generation_of(recoloured, seed=2)
    for gid in (same, other):
        link_generation(MIA, gid, ["AUR-1001"])
    checks = check_fidelity(MIA, [same, other], "AUR-1001", [reference, recoloured], models={})
    ok, bad = checks
    assert bad.result.delta_e > 5.0 > ok.result.delta_e and bad.result.delta_e > ok.result.delta_e
    assert ok.passed is True and bad.passed is False
    assert bad.reason == f"colour ΔE {bad.result.delta_e:.1f} vs AUR-1001 reference, limit 5"
    assert "unavailable" in bad.result.unavailable["dino"]  # no DINOv2 given: only ΔE and shape count
    # the review queue: held (out of the default queue), with the reason
    default = {i.generation_id for i in list_queue(as_role("approver"), QueueFilter())}
    assert same in default and other not in default
    [held] = list_queue(as_role("approver"), QueueFilter(gate="held"))
    assert held.generation_id == other and held.gate.fidelity_passed is False
    assert held.gate.flags == (f"fidelity: {bad.reason}",)
    [link] = products_of_generation(other)
    assert link.fidelity_passed is False and link.fidelity_reason == bad.reason
    rows = fidelity_rows("AUR-1001")
    assert [(r.generation_id, r.passed) for r in rows] == [(same, True), (other, False)]
    assert rows[1].delta_e == pytest.approx(bad.result.delta_e) and rows[1].dino is None
    [summary] = fidelity_summary()
    assert (summary.sku, summary.images, summary.passed, summary.pass_rate) == ("AUR-1001", 2, 1, 0.5)


def test_the_brand_profile_sets_the_fidelity_limits(jacket):
    from workbench.generate.product import brand_limits, check_fidelity
    from workbench.prompts import PromptError, parse_brand
    from workbench.prompts.library import save_brand_text

    brand = parse_brand("name: b\nfidelity: {max_delta_e: 0.01, min_dino: 0.8}\n", "b.yaml")
    assert brand.fidelity_limits == {"max_delta_e": 0.01, "min_dino": 0.8, "min_shape_iou": None}
    assert parse_brand("name: b\n", "b.yaml").fidelity_limits["max_delta_e"] == 5.0  # the default
    with pytest.raises(PromptError, match=r"b.yaml:3: fidelity.max_delta_e: must be a number from 0 to 100"):
        parse_brand("name: b\nfidelity:\n  max_delta_e: lots\n", "b.yaml")
    with pytest.raises(PromptError, match="fidelity.min_ssim: unknown key"):
        parse_brand("name: b\nfidelity: {min_ssim: 0.5}\n", "b.yaml")
    save_brand_text(as_role("admin"), "name: strict\nfidelity: {max_delta_e: 1}\n")
    assert brand_limits("strict")["max_delta_e"] == 1.0
    # a shot of the jacket a shade off passes the default limit but not the strict brand's
    shot = draw_garment("jacket", (166, 42, 60), 96, rng=random.Random(9))
    gid = _generation_of(shot)
    link_generation(MIA, gid, ["AUR-1001"])
    [loose] = check_fidelity(MIA, gid, "AUR-1001", shot, models={})
    [strict] = check_fidelity(MIA, gid, "AUR-1001", shot, brand="strict", models={})
    assert 1.0 < strict.result.delta_e < 5.0
    assert loose.passed is True and strict.passed is False and strict.reason.endswith("limit 1")


def test_measure_colour_stores_the_garments_lab(jacket):
    from workbench.data.demo import rgb_to_lab
    from workbench.products import ProductError, measure_colour

    p = measure_colour(CURATOR, "AUR-1001")
    assert np.allclose(p.colour_lab, rgb_to_lab(RED), atol=2.0)  # the cloth, not the white print or the sweep
    create_product(CURATOR, "AUR-2", "no photos")
    with pytest.raises(ProductError, match="AUR-2: no reference photos"):
        measure_colour(CURATOR, "AUR-2")
    from workbench.cli import app

    out = CliRunner().invoke(app, ["products", "measure", "--all"])
    assert out.exit_code == 0 and out.output.startswith("AUR-1001: Lab (")


def test_the_product_prompt_uses_its_template_attributes_brand_and_token(jacket, monkeypatch):
    from workbench.generate import product as gp
    from workbench.generate.pipeline import LoraSpec
    from workbench.prompts.library import save_brand_text

    save_brand_text(as_role("admin"), "name: aurelo\ntrigger: aurelo_style\nnegative: blurry\n")
    pp = gp.product_prompt("AUR-1001")
    assert pp.brand == "aurelo" and pp.template == "jacket" and pp.token is None and pp.lora is None
    assert pp.prompt.startswith("a photo of red jacket, Aurelo Red Jacket, aurelo_style red jacket, ")
    assert "blurry" in pp.negative and "crooked zipper" in pp.negative
    monkeypatch.setattr(gp, "product_lora", lambda sku, settings=None: (LoraSpec("/runs/7/lora", 1.0, "p"), "bkz"))
    pp = gp.product_prompt("AUR-1001")
    assert pp.prompt.startswith("a photo of bkz jacket, aurelo_style red jacket")
    assert pp.token == "bkz" and pp.lora.scale == 1.0


def test_generate_run_for_a_product_records_the_sku_in_png_provenance_and_the_db(jacket, tmp_path):
    from workbench.cli import app
    from workbench.generate.sample import read_png_metadata
    from workbench.models import tiny
    from workbench.products import generations_of_product

    model = tiny.save_tiny_sdxl(tmp_path / "tiny-sdxl")
    out = CliRunner().invoke(app, ["generate", "run", "--product", "AUR-1001", "--model", str(model), "--steps", "1",
                                   "--size", "64", "--device", "cpu", "--batch", "aur"])
    assert out.exit_code == 0, out.output
    assert "product AUR-1001: a photo of red jacket" in out.output
    [line] = [x for x in out.output.splitlines() if x.startswith("seed ")]
    path = line.split(": ", 1)[1].split(" · ")[0]
    prov = read_png_metadata(Path(path)).provenance
    assert prov["products"] == ["AUR-1001"] and prov["prompt"].startswith("a photo of red jacket")
    [gid] = generations_of_product("AUR-1001", source="generated_for")
    [link] = products_of_generation(gid)
    assert link.sku == "AUR-1001" and link.source == "generated_for"
    [row] = fidelity_rows(generation_ids=[gid])  # the random tiny model's image is checked like any other
    assert row.passed is not None and row.reason and " · " in line
