"""Shop-the-look: the catalog embedding index finds each product's own reference photos (and altered copies) as
top-1 with the tiny DINOv2 and CLIP; build_index is incremental; a garment mask's parts are queried on their own;
missing weights say "unavailable" and tag nothing; tag_generation records "retrieved" links without the SKU the
image was generated for, idempotently; the export's product feed matches the database; the review card lists the
products with their links."""
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.data import CURATOR
from helpers.review import as_role, make_generation, make_users, page_as, page_text
from PIL import Image

from workbench.data.demo import draw_garment, make_demo_catalog
from workbench.fidelity import masks
from workbench.models import tiny
from workbench.products import (
    get_product,
    link_generation,
    list_products,
    products_of_generation,
    retrieval,
    update_product,
)
from workbench.products.importing import import_catalog
from workbench.products.tagging import tag_generation
from workbench.review import decide, export_approved
from workbench.settings import Settings

ANALYST = as_role("analyst")
PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "6_Review.py")


@pytest.fixture(scope="module")
def embedders(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieval-kit")
    refs = {"dinov2": str(tiny.save_tiny_dinov2(root / "dino")),
            "clip_scorer": str(tiny.save_tiny_open_clip(root / "clip"))}
    settings = Settings(models=refs)
    return {m: retrieval.load_embedder(m, settings) for m in ("dino", "clip")}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The demo catalog's drawer at 64 px: 7 garments x 2 colours = 14 products, one photo each."""
    root = tmp_path_factory.mktemp("catalog")
    make_demo_catalog(root, size=64, colours=2, extras=False)
    return root


def _import(catalog):
    retrieval.clear_cache()
    import_catalog(CURATOR, catalog, workers=1)
    for n, p in enumerate(list_products()):
        update_product(CURATOR, p.sku, price=f"{19 + n}.90", currency="EUR", url=f"https://shop.example/p/{p.sku}")
    return list_products()


def _altered(image: Image.Image) -> Image.Image:
    """A resized, re-encoded (JPEG q70) copy of a reference photo."""
    buf = io.BytesIO()
    image.convert("RGB").resize((56, 56), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=70)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("model", ["dino", "clip"])
def test_each_reference_photo_finds_its_own_product_first(workspace, catalog, embedders, model):
    products = _import(catalog)
    emb = embedders[model]
    result = retrieval.build_index(ANALYST, model, embedder=emb, masks=masks)
    assert (result.added, result.total, result.failed, result.demo) == (14, 14, [], True)
    (hit, *_) = retrieval.nearest_products(products[0].images[0], k=3, embedder=emb, masks=masks)
    p = products[0]
    assert (hit.sku, hit.item_id, hit.url, hit.currency, hit.price) == (p.sku, p.item_ids[0], p.url, "EUR", p.price)
    assert hit.score == pytest.approx(1.0, abs=2e-3)
    # Every photo, and a resized JPEG copy of it (the random-weight tiny models keep those top-1 on this catalog
    # too), embedded in one batch as nearest_products would (garment crop) and searched one by one.
    photos = [Image.open(p.images[0]) for p in products]
    queries = emb.embed([retrieval.index_region(im, masks) for im in photos + [_altered(im) for im in photos]])
    found = [retrieval.nearest_by_vector(q, emb.model_ref, k=1)[0].sku for q in queries]
    assert found == [p.sku for p in products] * 2


def test_build_index_is_incremental_and_the_matrix_follows_the_table(workspace, catalog, embedders):
    products = _import(catalog)
    emb = embedders["dino"]
    first = retrieval.build_index(ANALYST, "dino", items=[i for p in products[:5] for i in p.item_ids], embedder=emb)
    assert (first.added, first.total) == (5, 5)
    assert retrieval.load_index(emb.model_ref).items == 5
    again = retrieval.build_index(ANALYST, "dino", embedder=emb)
    assert (again.added, again.already, again.total) == (9, 5, 14)
    assert retrieval.build_index(ANALYST, "dino", embedder=emb).added == 0  # a re-run adds nothing
    loaded = retrieval.load_index(emb.model_ref)  # reloaded because the table changed
    assert (loaded.items, loaded.dim) == (14, emb.dim)
    last = products[-1]
    assert retrieval.nearest_products(Image.open(last.images[0]), k=1, embedder=emb)[0].sku == last.sku
    with pytest.raises(retrieval.RetrievalError, match="dimension 5"):
        retrieval.nearest_by_vector(np.ones(5), emb.model_ref)
    with pytest.raises(retrieval.RetrievalError, match="no dataset item with id 999"):
        retrieval.build_index(ANALYST, "dino", items=[999], embedder=emb)
    with pytest.raises(Exception, match="evaluate"):
        retrieval.build_index(as_role("marketer"), "dino", embedder=emb)


def test_each_large_part_of_the_garment_mask_is_queried_on_its_own():
    canvas = Image.new("RGB", (160, 96), "white")
    canvas.paste(draw_garment("jacket", (30, 60, 150), 72), (4, 12))
    canvas.paste(draw_garment("cap", (170, 40, 40), 72), (84, 12))
    regions = retrieval.query_regions(canvas, masks)
    assert len(regions) == 4  # the frame, the whole garment mask, and its two parts
    assert retrieval.query_regions(canvas) == [canvas]  # without the masks module: the whole frame only
    assert len(retrieval.query_regions(Image.new("RGB", (64, 64)), masks)) == 1  # nothing stands out


def test_missing_weights_say_unavailable_and_tag_nothing(workspace, catalog):
    _import(catalog)  # settings name the released DINOv2 (facebook/dinov2-base), not in this test's empty cache
    result = retrieval.build_index(ANALYST, "dino")
    assert result.unavailable.startswith("unavailable: facebook/dinov2-base — ") and result.added == 0
    gid = make_generation()
    tagged = tag_generation(ANALYST, gid, model="dino")
    assert tagged.unavailable == result.unavailable and tagged.linked == [] and products_of_generation(gid) == []
    from typer.testing import CliRunner

    from workbench.cli import app

    for args in (["index"], ["tag", "--generation", str(gid)]):
        out = CliRunner().invoke(app, ["products", *args, "--model", "dino"])
        assert out.exit_code == 1 and "unavailable: " in out.output and "workbench models pull dinov2" in out.output
    assert products_of_generation(gid) == []


def _generation_of(product, **kw) -> int:
    """A generated image whose pixels are the product's own photo."""
    gid = make_generation(**kw)
    from workbench.review import get_item

    shutil.copy(product.images[0], get_item("ana", gid).image_path)
    return gid


def test_tag_generation_records_retrieved_products_but_not_the_one_it_was_made_for(workspace, catalog, embedders):
    make_users()
    products = _import(catalog)
    emb = embedders["dino"]
    retrieval.build_index(ANALYST, "dino", embedder=emb, masks=masks)
    own = products[0]
    gid = _generation_of(own)
    link_generation(as_role("marketer"), gid, [own.sku])
    r = tag_generation("ari", gid, k=3, min_score=-1.0, embedder=emb, masks=masks)
    assert r.generated_for == [own.sku] and len(r.linked) == 3 and own.sku not in {m.sku for m in r.linked}
    links = products_of_generation(gid)
    assert (links[0].sku, links[0].source) == (own.sku, "generated_for")
    retrieved = {(x.sku, x.score) for x in links if x.source == "retrieved"}
    assert {x.scored_by for x in links if x.source == "retrieved"} == {emb.model_ref}  # which model scored them
    assert retrieved == {(m.sku, round(m.score, 4)) for m in r.linked}
    again = tag_generation("ari", gid, k=3, min_score=-1.0, embedder=emb, masks=masks)  # idempotent
    assert products_of_generation(gid) == links and again.unlinked == []
    stricter = tag_generation("ari", gid, k=3, min_score=1.01, embedder=emb, masks=masks)  # nothing is that close
    assert stricter.linked == [] and sorted(stricter.unlinked) == sorted(m.sku for m in r.linked)
    assert [(x.sku, x.source) for x in products_of_generation(gid)] == [(own.sku, "generated_for")]
    with pytest.raises(Exception, match="evaluate"):
        tag_generation("mia", gid, embedder=emb)


def test_export_feed_lists_every_approved_image_and_product_as_stored(workspace, catalog, embedders):
    make_users()
    products = _import(catalog)
    long_prompt = "nwo_style " + "soft brushed cotton, " * 10 + "studio light"
    a = _generation_of(products[0], prompt=long_prompt)
    b = _generation_of(products[1])
    plain_image = make_generation()  # approved, shows no product: no feed row
    rejected = _generation_of(products[2])
    link_generation(as_role("marketer"), a, [products[0].sku])
    link_generation(ANALYST, a, [products[3].sku, products[4].sku], source="retrieved", score=0.9123)
    link_generation(as_role("marketer"), b, [products[1].sku])
    link_generation(as_role("marketer"), rejected, [products[2].sku])
    for gid in (a, b, plain_image):
        decide("ana", gid, "approve")
    decide("ana", rejected, "reject", comment="not the product")

    result = export_approved("ana", brand="northwind")
    assert result.feed_csv.parent == result.path.parent and result.feed_json.parent == result.path.parent
    files = {r["generation_id"]: r["file"] for r in result.records}
    want = [(gid, files[gid], x.sku, x.url, f"{x.price:f}", x.currency, x.source)
            for gid in (a, b) for x in products_of_generation(gid)]
    rows = list(csv.DictReader(io.StringIO(result.feed_csv.read_text())))
    doc = json.loads(result.feed_json.read_text())
    for got in (rows, doc["products"]):
        assert [(int(r["generation_id"]), r["image_file"], r["sku"], r["product_url"], r["price"], r["currency"],
                 r["source"]) for r in got] == want
    assert len(want) == 4 and doc["zip"] == result.path.name
    assert rows[0]["price"] == "19.9" and rows[0]["product_url"] == f"https://shop.example/p/{products[0].sku}"
    alt = rows[0]["alt_text"]
    assert len(alt) <= 125 and alt.endswith("…") and long_prompt.startswith(alt[:-1])
    assert rows[1]["score"] == "0.9123" and rows[1]["source"] == "retrieved"


def test_the_review_card_lists_the_products_with_links(workspace, catalog):
    make_users()
    products = _import(catalog)
    update_product(CURATOR, products[1].sku, url="https://shop.example/p/(odd)")
    gid = make_generation()
    link_generation(as_role("marketer"), gid, [products[0].sku])
    link_generation(ANALYST, gid, [products[1].sku], source="retrieved", score=0.87)
    link_generation(ANALYST, gid, [products[2].sku], source="retrieved", score=0.5)
    from workbench.db import session_scope
    from workbench.products.tables import Product

    with session_scope() as s:  # a value update_product refuses, written past it
        s.query(Product).filter(Product.sku == products[2].sku).update({"url": "javascript:alert(1)"})
    at = page_as(PAGE, "ana").run()
    assert not at.exception, at.exception
    card = next(m.value for m in at.markdown if m.value.startswith("**Products in this image**"))
    first, second, third = card.splitlines()[1:]
    p0, p1 = get_product(products[0].sku), get_product(products[1].sku)
    assert f"[product page](https://shop.example/p/{p0.sku})" in first and "generated for" in first
    assert "19.9 EUR" in first and "similar (0.87)" in second
    assert "(https://shop.example/p/%28odd%29)" in second  # a ")" cannot end the link early
    assert p1.name in page_text(at)
    assert "similar (0.50)" in third and "javascript" not in card and "](" not in third
