"""Product records: create/edit with checked fields (unknown fields, currency, URL, price named in the error), one
product per item, merge (photos, generation and LoRA links move, empty fields filled, merged_from, one audit row),
permissions, generation links, and the `workbench products` CLI."""
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from workbench.cli import app
from workbench.products.importing import import_catalog
from workbench.data.tables import Item
from helpers.data import CURATOR, image_bytes, write
from workbench.db import AuditLog, Job, session_scope
from workbench.products import (
    ProductError,
    create_product,
    generations_of_product,
    get_product,
    link_generation,
    link_items,
    list_products,
    merge_products,
    products_of_generation,
    products_of_items,
    tokens_of_run,
    unlink_items,
    update_product,
)
from workbench.products.tables import LoraProduct
from workbench.auth import PermissionDenied
from helpers.review import as_role


@pytest.fixture
def items(tmp_path):
    for n in range(5):
        write(tmp_path / "plain" / f"{n}.png", image_bytes((48, 48), pattern=90 + n))
    report = import_catalog(CURATOR, tmp_path / "plain", workers=1)
    with session_scope() as s:
        return list(s.scalars(select(Item.id).where(Item.dataset_id == report.dataset_id).order_by(Item.id)))


def _audit(action):
    with session_scope() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_create_and_edit_check_every_field(items):
    p = create_product(CURATOR, "AUR-1001", "Navy coat", category="coat", price="249.90", currency="eur",
                       url="https://shop.aurelo.example/p/AUR-1001", item_ids=items[:2], attributes={"fit": "slim"})
    assert (p.price, p.currency, p.item_ids, p.price_label) == (Decimal("249.9"), "EUR", items[:2], "249.9 EUR")
    assert len(p.thumbnails) == 2 and all(t.is_file() for t in p.thumbnails)
    with pytest.raises(ProductError, match="sku 'AUR-1001' exists already"):
        create_product(CURATOR, "AUR-1001")
    with pytest.raises(ProductError, match=r"unknown product field\(s\) colur, prize"):
        update_product(CURATOR, "AUR-1001", colur="navy", prize=3)
    with pytest.raises(ProductError, match="currency 'EURO': not an ISO 4217 code"):
        update_product(CURATOR, "AUR-1001", currency="EURO")
    with pytest.raises(ProductError, match="url 'javascript:alert\\(1\\)'"):
        update_product(CURATOR, "AUR-1001", url="javascript:alert(1)")
    with pytest.raises(ProductError, match="url 'ftp://x.example/a'"):
        update_product(CURATOR, "AUR-1001", url="ftp://x.example/a")
    for bad in ("-1", "abc", "1.23456", "nan"):
        with pytest.raises(ProductError, match="price"):
            update_product(CURATOR, "AUR-1001", price=bad)
    with pytest.raises(ProductError, match="colour_lab"):
        update_product(CURATOR, "AUR-1001", colour_lab=(120, 0, 0))
    with pytest.raises(ProductError, match="sku"):
        create_product(CURATOR, "bad sku with spaces")
    p = update_product(CURATOR, "AUR-1001", colour="navy", colour_lab=(25.0, 2.0, -30.0),
                       attributes={"fit": None, "lining": "silk"})
    assert p.colour == "navy" and p.colour_lab == (25.0, 2.0, -30.0) and p.swatch.startswith("#")
    assert p.attributes == {"lining": "silk"}
    assert get_product("AUR-1001").price == Decimal("249.9")  # unchanged fields stay
    [edit] = _audit("product.edit")
    assert edit.actor == "curator" and set(edit.after) == {"colour", "colour_lab", "attributes"}
    update_product(CURATOR, "AUR-1001", colour="navy")  # no change: no audit row
    assert len(_audit("product.edit")) == 1
    assert [x.sku for x in list_products("NAVY")] == ["AUR-1001"] and list_products(category="bag") == []


def test_an_item_shows_one_product(items):
    create_product(CURATOR, "A", item_ids=items[:2])
    create_product(CURATOR, "B")
    with pytest.raises(ProductError, match=rf"item {items[0]} \(sku A\)"):
        link_items(CURATOR, "B", items[:1])
    with pytest.raises(ProductError, match="no item"):
        link_items(CURATOR, "B", [999999])
    link_items(CURATOR, "B", items[:1], move=True)
    assert get_product("A").item_ids == items[1:2] and get_product("B").item_ids == items[:1]
    unlink_items(CURATOR, "A", items[1:2])
    assert products_of_items(items) == {items[0]: "B"}  # the unlinked item is a plain item again


def test_merge_moves_photos_and_links_fills_empty_fields_and_is_audited(items):
    create_product(CURATOR, "AUR-1001", "Navy coat", item_ids=items[:1], attributes={"fit": "slim"})
    create_product(CURATOR, "navy-coat", "navy coat (scraped)", category="coat", price="249", currency="EUR",
                   url="https://shop.example/navy", item_ids=items[1:3], attributes={"fit": "regular", "a": 1})
    create_product(CURATOR, "navy-coat-2", item_ids=items[3:4])
    link_generation(as_role("marketer"), 7, ["navy-coat"])
    link_generation(as_role("analyst"), 8, ["navy-coat-2"], source="retrieved", score=0.8)
    with session_scope() as s:
        s.add(Job(id=50, kind="train_lora", title="t", config={}, metrics={}, result={}))
        s.flush()
        s.add(LoraProduct(run_id=50, product_id=get_product("navy-coat").id, token="bkz"))
    p = merge_products(CURATOR, "AUR-1001", ["navy-coat", "navy-coat-2"])
    assert p.name == "Navy coat" and p.category == "coat" and p.price == Decimal(249)  # kept, or filled when empty
    assert p.url == "https://shop.example/navy" and p.currency == "EUR"
    assert p.attributes == {"fit": "slim", "a": 1, "merged_from": ["navy-coat", "navy-coat-2"]}
    assert p.item_ids == items[:4]
    assert [x.sku for x in list_products()] == ["AUR-1001"]
    assert generations_of_product("AUR-1001") == [7, 8] and products_of_generation(8)[0].sku == "AUR-1001"
    assert tokens_of_run(50) == {"AUR-1001": "bkz"}
    [row] = _audit("product.merge")
    assert row.entity_id == "AUR-1001" and [m["sku"] for m in row.before["merged"]] == ["navy-coat", "navy-coat-2"]
    with pytest.raises(ProductError, match="no product with sku 'gone'"):
        merge_products(CURATOR, "AUR-1001", ["gone"])


def test_permissions_and_generation_links(items):
    with pytest.raises(PermissionDenied):
        create_product(as_role("approver"), "X")
    for role in ("marketer", "analyst", "admin"):
        create_product(as_role(role), f"X-{role}")
    with pytest.raises(PermissionDenied):
        update_product(as_role("approver"), "X-admin", name="n")
    with pytest.raises(PermissionDenied):
        merge_products(as_role("approver"), "X-admin", ["X-analyst"])
    with pytest.raises(PermissionDenied):  # recording what an image was generated for is the generating role's
        link_generation(as_role("analyst"), 1, ["X-admin"])
    with pytest.raises(ProductError, match="no product with sku NOPE"):
        link_generation(as_role("marketer"), 1, ["X-admin", "NOPE"])
    assert generations_of_product("X-admin") == []  # nothing half-linked
    link_generation(as_role("marketer"), 1, ["X-admin"])
    link_generation(as_role("analyst"), 1, ["X-marketer"], source="retrieved", score=0.5)
    update_product(CURATOR, "X-admin", price="10", currency="USD", url="https://s.example/x")
    links = products_of_generation(1)
    assert [(x.sku, x.source) for x in links] == [("X-admin", "generated_for"), ("X-marketer", "retrieved")]
    assert (links[0].price, links[0].currency, links[0].url) == (Decimal(10), "USD", "https://s.example/x")


def test_cli_list_show_edit_link_merge(items):
    runner = CliRunner()
    create_product(CURATOR, "AUR-1", "Coat", item_ids=items[:1])
    create_product(CURATOR, "AUR-2", "Coat dup")
    out = runner.invoke(app, ["products", "edit", "AUR-1", "--price", "99.5", "--currency", "gbp", "--url",
                              "https://s.example/1", "--attr", "fit=slim", "--colour", "navy"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["price"] == "99.5" and json.loads(out.output)["attributes"] == {"fit": "slim"}
    out = runner.invoke(app, ["products", "edit", "AUR-1", "--currency", "XXQ"])
    assert out.exit_code == 2 and "not an ISO 4217 code" in out.output
    out = runner.invoke(app, ["products", "link", "AUR-2", str(items[1]), str(items[2])])
    assert out.exit_code == 0 and "2 photo(s)" in out.output
    out = runner.invoke(app, ["products", "list"])
    assert "AUR-1" in out.output and "99.5 GBP" in out.output
    out = runner.invoke(app, ["products", "merge", "AUR-1", "AUR-2"])
    assert out.exit_code == 0 and "merged AUR-2" in out.output
    shown = json.loads(runner.invoke(app, ["products", "show", "AUR-1"]).output)
    assert shown["items"] == items[:3] and shown["colour"] == "navy" and shown["loras"] == []
    assert runner.invoke(app, ["products", "show", "AUR-2"]).exit_code == 2
