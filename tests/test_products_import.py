"""Products from each importer: Kaggle styles.csv (ids, names, colours, article types), KREAM product names, an
imagefolder metadata.jsonl with a sku column (price, currency, url checked), the folder-per-product layout (folder
name -> name, slug or sku.txt -> sku); re-import updates instead of duplicating; items without a product stay valid."""
import json

from sqlalchemy import select

from workbench.products.importing import import_catalog
from workbench.data.tables import Item
from helpers.data import CURATOR, image_bytes, write
from workbench.db import AuditLog, session_scope
from workbench.products import get_product, list_products, products_of_items


def _items(dataset_id):
    with session_scope() as s:
        return list(s.scalars(select(Item.id).where(Item.dataset_id == dataset_id).order_by(Item.id)))


def test_kaggle_styles_csv_ids_names_colours_and_article_types(tmp_path):
    root = tmp_path / "kaggle"
    for n, pid in enumerate((15970, 39386, 59263)):
        write(root / "images" / f"{pid}.jpg", image_bytes((64, 64), pattern=n, fmt="JPEG"))
    write(root / "styles.csv", (
        b"id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        b"15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt\n"
        b"39386,Men,Apparel,Bottomwear,Jeans,Blue,Summer,2012,Casual,Peter England Men Party Blue Jeans\n"
        b"59263,Women,Accessories,Watches,Watches,Silver,Winter,2016,Casual,Titan Women Silver, Watch\n"))
    report = import_catalog(CURATOR, root, workers=1)
    assert report.added == 3
    assert report.products == {"created": 3, "updated": 0, "linked": 3, "conflicts": 0}
    assert any("products: 3 created, 0 updated, 3 photo(s) linked" in n for n in report.notes)
    shirt = get_product("15970")
    assert (shirt.name, shirt.colour, shirt.category) == ("Turtle Check Men Navy Blue Shirt", "Navy Blue", "Shirts")
    assert shirt.attributes["gender"] == "Men" and shirt.attributes["season"] == "Fall"
    assert get_product("59263").name == "Titan Women Silver, Watch"  # Kaggle's unquoted comma
    assert len(shirt.item_ids) == 1 and shirt.images[0].is_file()
    assert set(products_of_items(_items(report.dataset_id)).values()) == {"15970", "39386", "59263"}
    with session_scope() as s:
        assert s.query(AuditLog).filter(AuditLog.action == "product.create").count() == 3

    again = import_catalog(CURATOR, root, workers=1)  # nothing new: no duplicate products
    assert again.products == {"created": 0, "updated": 0, "linked": 0, "conflicts": 0}
    assert len(list_products()) == 3


def test_kream_product_names_become_products(tmp_path):
    root = tmp_path / "kream-sample"
    rows = [("a.png", "top, Stussy Basic Logo Hoodie Black, a black hoodie"),
            ("b.png", "top, Stussy Basic Logo Hoodie Black, a black hoodie on a hanger"),
            ("c.png", "shoes, Nike Air Force 1 '07 Low White, a white sneaker")]
    for n, (name, _) in enumerate(rows):
        write(root / name, image_bytes((64, 64), pattern=10 + n))
    write(root / "metadata.jsonl", "".join(json.dumps({"file_name": f, "text": t}) + "\n" for f, t in rows).encode())
    report = import_catalog(CURATOR, root, workers=1)
    assert report.products["created"] == 2 and report.products["linked"] == 3
    hoodie = get_product("stussy-basic-logo-hoodie-black")
    assert hoodie.name == "Stussy Basic Logo Hoodie Black" and hoodie.category == "top" and len(hoodie.item_ids) == 2
    assert get_product("nike-air-force-1-07-low-white").category == "shoes"


def test_imagefolder_metadata_with_a_sku_column_and_shop_fields(tmp_path):
    root = tmp_path / "shop"
    meta = [{"file_name": "a.png", "text": "navy coat front", "sku": "AUR-1001", "name": "Navy wool coat",
             "price": "249.00", "currency": "eur", "url": "https://shop.aurelo.example/p/AUR-1001", "colour": "navy",
             "category": "coat", "fit": "regular"},
            {"file_name": "b.png", "text": "navy coat back", "sku": "AUR-1001"},
            {"file_name": "c.png", "text": "a bag", "sku": "AUR-2002", "url": "javascript:alert(1)", "price": "abc",
             "currency": "XYZ"},
            {"file_name": "d.png", "text": "a mood photo"}]  # no product: stays a plain item
    for n, row in enumerate(meta):
        write(root / row["file_name"], image_bytes((64, 64), pattern=20 + n))
    write(root / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in meta).encode())
    report = import_catalog(CURATOR, root, workers=1)
    assert report.added == 4 and report.products["created"] == 2 and report.products["linked"] == 3
    coat = get_product("AUR-1001")
    assert (coat.name, coat.colour, coat.category, str(coat.price), coat.currency) == \
        ("Navy wool coat", "navy", "coat", "249", "EUR")
    assert coat.url == "https://shop.aurelo.example/p/AUR-1001" and coat.attributes == {"fit": "regular"}
    assert len(coat.item_ids) == 2 and coat.colour_lab is None  # measured later (fidelity metrics)
    bag = get_product("AUR-2002")
    assert (bag.url, bag.price, bag.currency) == ("", None, "")  # refused values are not stored ...
    notes = "\n".join(report.notes)
    assert "AUR-2002: url" in notes and "AUR-2002: price" in notes and "AUR-2002: currency" in notes  # ... but named
    assert len(products_of_items(_items(report.dataset_id))) == 3


def test_folder_per_product_layout_with_slugs_and_a_sku_file(tmp_path):
    root = tmp_path / "scrape"
    for n in range(3):
        write(root / "Navy Wool Coat (Regular Fit)" / f"{n}.jpg", image_bytes((64, 64), pattern=30 + n, fmt="JPEG"))
    for n in range(4):
        write(root / "Red silk scarf" / f"photo{n}.png", image_bytes((64, 64), pattern=40 + n))
    write(root / "Red silk scarf" / "sku.txt", b"AUR-3003\n")
    write(root / "loose.png", image_bytes((64, 64), pattern=50))  # at the top: no product
    report = import_catalog(CURATOR, root, workers=1)
    assert report.added == 8
    assert report.products == {"created": 2, "updated": 0, "linked": 7, "conflicts": 0}
    coat = get_product("navy-wool-coat-regular-fit")
    assert coat.name == "Navy Wool Coat (Regular Fit)" and len(coat.item_ids) == 3
    scarf = get_product("AUR-3003")
    assert scarf.name == "Red silk scarf" and len(scarf.item_ids) == 4


def test_kohya_repeat_folders_are_not_products(tmp_path):
    root = tmp_path / "kohya"
    write(root / "10_tok jacket" / "a.png", image_bytes((64, 64), pattern=60))
    write(root / "10_tok jacket" / "a.txt", b"a photo of tok jacket")
    report = import_catalog(CURATOR, root, workers=1)
    assert report.added == 1 and report.products["created"] == 0 and list_products() == []
    assert not any(n.startswith("products:") for n in report.notes)
