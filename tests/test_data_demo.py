"""The synthetic demo catalog: deterministic, complete, importable, and its wordmark is legible."""
import csv
import hashlib

import pytest

from workbench.data.demo import BRAND, GARMENTS, import_demo_catalog, make_demo_catalog
from helpers.data import CURATOR


def _digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_catalog_is_deterministic_by_seed(tmp_path):
    a = make_demo_catalog(tmp_path / "a", seed=1, size=96, colours=2)
    b = make_demo_catalog(tmp_path / "b", seed=1, size=96, colours=2)
    c = make_demo_catalog(tmp_path / "c", seed=2, size=96, colours=2)
    assert _digest(a.root) == _digest(b.root)
    assert _digest(a.root) != _digest(c.root)


def test_demo_catalog_contents_and_csv(tmp_path):
    cat = make_demo_catalog(tmp_path, seed=0, size=96, colours=3)
    assert len(cat.rows) == 7 * 3 + 1
    rows = list(csv.DictReader(open(cat.csv_path)))
    assert {r["articleType"] for r in rows} == {g[0] for g in GARMENTS.values()}
    assert len({(r["articleType"], r["baseColour"]) for r in rows}) == 21
    assert all(r["brand"] == BRAND for r in rows)
    assert all(p.exists() for p in cat.image_paths)
    from PIL import Image
    im = Image.open(cat.image_paths[0])
    assert im.size == (96, 96) and im.getpixel((1, 1)) == (255, 255, 255) or min(im.getpixel((1, 1))) > 245


def test_import_demo_catalog_into_the_workspace_shows_flags(tmp_path):
    first = import_demo_catalog(CURATOR, seed=0, size=128, colours=2)
    assert first.added == 15 and first.skipped == []
    assert first.duplicates["groups"] == 1  # the re-encoded reshoot
    assert first.flags.get("caption_fields_missing") == 1
    again = import_demo_catalog(CURATOR, seed=0, size=128, colours=2)
    assert (again.added, again.already_present) == (0, 15)


def test_wordmark_is_legible_to_ocr(tmp_path):
    rapidocr = pytest.importorskip("rapidocr")
    from workbench.data.demo import draw_garment
    import numpy as np
    engine = rapidocr.RapidOCR()
    im = draw_garment("t-shirt", (30, 42, 94), 512)
    out = engine(np.asarray(im))
    texts = [t.upper() for t in (out.txts or ())]
    assert BRAND in texts, texts
