"""AppTest for the Datasets page's Products tab: products from an import are listed with their fields, one opens,
and its edit form saves (checked values refused with the reason); merging two products."""
from pathlib import Path

import pytest

from workbench.products.importing import import_catalog
from helpers.data import CURATOR, image_bytes, write
from workbench.products import get_product, list_products
from workbench import auth
from helpers.review import make_users, page_as, page_text

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Datasets.py")


@pytest.fixture(autouse=True)
def setup(workspace, monkeypatch, tmp_path):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()
    root = tmp_path / "kaggle"
    for n, pid in enumerate((15970, 39386)):
        write(root / "images" / f"{pid}.jpg", image_bytes((64, 64), pattern=n, fmt="JPEG"))
    write(root / "styles.csv", (
        b"id,gender,articleType,baseColour,productDisplayName\n"
        b"15970,Men,Shirts,Navy Blue,Turtle Check Men Navy Blue Shirt\n"
        b"39386,Men,Jeans,Blue,Peter England Men Party <b>Blue</b> Jeans\n"))
    import_catalog(CURATOR, root, template="a {baseColour} {articleType}", workers=1)


def _products_tab():
    at = page_as(PAGE, user="mia")
    at.session_state["datasets_tab"] = "Products"
    return at.run()


def test_the_tab_lists_imported_products_and_an_edit_saves():
    at = _products_tab()
    assert not at.exception
    text = page_text(at)
    assert "2 of 2 products" in text and "Turtle Check Men Navy Blue Shirt" in text
    assert "Peter England Men Party <b>Blue</b> Jeans" in text  # shown literally, never as HTML
    opens = [b.key for b in at.button if b.key.startswith("datasets_products_open_")]
    assert len(opens) == 2
    at.button(key=opens[0]).click().run()
    assert at.session_state["datasets_products_open"] == "15970"
    at.text_input(key="datasets_products_f_price").input("39.90")
    at.text_input(key="datasets_products_f_currency").input("EUR")
    at.text_input(key="datasets_products_f_url").input("https://shop.example/p/15970")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    p = get_product("15970")
    assert (str(p.price), p.currency, p.url, p.updated_by) == ("39.9", "EUR", "https://shop.example/p/15970", "mia")
    assert "15970 saved" in page_text(at)
    at.text_input(key="datasets_products_f_url").input("javascript:alert(1)")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert "give an http:// or https:// address" in page_text(at)
    assert get_product("15970").url == "https://shop.example/p/15970"
    at.text_input(key="datasets_products_text").input("jeans").run()
    assert "1 of 2 products" in page_text(at)


def test_merging_two_products_from_the_tab():
    at = _products_tab()
    at.multiselect(key="datasets_products_merge_skus").select("15970").select("39386").run()
    at.selectbox(key="datasets_products_merge_keep").select("15970").run()
    at.checkbox(key="datasets_products_merge_sure").check().run()
    at.button(key="datasets_products_merge").click().run()
    assert not at.exception
    assert [p.sku for p in list_products()] == ["15970"]
    assert get_product("15970").attributes["merged_from"] == ["39386"] and len(get_product("15970").item_ids) == 2
