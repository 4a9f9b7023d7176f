"""Importers (imagefolder, kohya, attribute CSV, saved HF dataset, parquet, hub, zip), re-import, duplicates,
quality flags, the bad-input list and all-or-nothing imports."""
import json
import os
import zipfile

import pytest
from sqlalchemy import func, select

from workbench.data import dedupe, importer
from workbench.data.importer import import_dataset
from workbench.data.sources import SourceError, detect_kind
from workbench.data.store import get_dataset, query_items, ItemFilter
from workbench.data.tables import Dataset, Item
from helpers.data import (CURATOR, bomb_png, corrupt_jpeg, image_bytes, truncated_jpeg, truncated_png, write)
from workbench.db import session_scope


def items_of(dataset_id):
    with session_scope() as s:
        return list(s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)))


def counts():
    with session_scope() as s:
        return s.scalar(select(func.count(Dataset.id))), s.scalar(select(func.count(Item.id)))


def skip_reasons(report):
    return {s.where: s.reason for s in report.skipped}


def test_imagefolder_metadata_jsonl_with_attributes_and_unlisted_images(tmp_path):
    root = tmp_path / "folder"
    write(root / "a.png", image_bytes((300, 300), pattern=1))
    write(root / "sub" / "b.jpg", image_bytes((320, 280), pattern=2, fmt="JPEG"))
    write(root / "c.png", image_bytes((300, 300), pattern=3))  # not in the metadata
    write(root / "metadata.jsonl", (json.dumps({"file_name": "a.png", "text": "a red  dress", "brand": "ACME"}) + "\n"
                                   + json.dumps({"file_name": "sub/b.jpg", "text": "blue jeans"}) + "\n").encode())
    assert detect_kind(root) == "imagefolder"
    report = import_dataset(CURATOR, root, name="shop", workers=1)
    assert (report.added, report.already_present, report.skipped) == (3, 0, [])
    by_key = {i.source_key: i for i in items_of(report.dataset_id)}
    assert by_key["a.png"].caption == "a red dress" and by_key["a.png"].brand == "ACME"
    assert by_key["a.png"].attributes == {"brand": "ACME"}
    b = by_key["sub/b.jpg"]
    assert b.format == "JPEG" and (b.width, b.height) == (320, 280)
    assert by_key["c.png"].caption == "" and by_key["c.png"].flags == ["no_caption"]
    assert any("without a caption" in n for n in report.notes)
    a = by_key["a.png"]
    assert len(a.sha256) == 64 and len(a.phash) == 16
    stored = get_dataset(report.dataset_id)
    assert stored.name == "shop" and stored.imports[0]["added"] == 3
    from workbench.settings import get_settings
    stored = get_settings().path("datasets", str(report.dataset_id)) / a.path
    assert stored.read_bytes() == (root / "a.png").read_bytes()
    assert (get_settings().path("thumbs", a.sha256[:2], f"{a.sha256}.jpg")).exists()


def test_imagefolder_bad_lines_are_skipped_with_line_numbers(tmp_path):
    root = tmp_path / "f"
    write(root / "ok.png", image_bytes((300, 300), pattern=1))
    write(root / "also.png", image_bytes((300, 300), pattern=2))
    lines = [json.dumps({"file_name": "ok.png", "text": "fine"}), "{not json",
             json.dumps({"file_name": "../../etc/passwd", "text": "escape"}),
             json.dumps({"file_name": "/etc/hosts", "text": "absolute"}), json.dumps({"text": "no name"}),
             json.dumps({"file_name": "missing.png", "text": "gone"}), json.dumps(["a", "list"]),
             json.dumps({"file_name": "ok.png", "text": "again"})]
    raw = ("\n".join(lines) + "\n").encode() + b'{"file_name": "also.png", "text": "caf\xe9"}\n'
    write(root / "metadata.jsonl", raw)
    report = import_dataset(CURATOR, root, workers=1)
    reasons = skip_reasons(report)
    assert "not valid JSON" in reasons["metadata.jsonl line 2"]
    assert "not a relative path inside the folder" in reasons["metadata.jsonl line 3"]
    assert "not a relative path inside the folder" in reasons["metadata.jsonl line 4"]
    assert reasons["metadata.jsonl line 5"] == "no file_name"
    assert "'missing.png' not found" in reasons["metadata.jsonl line 6"]
    assert "expected a JSON object" in reasons["metadata.jsonl line 7"]
    assert "already described" in reasons["metadata.jsonl line 8"]
    assert "not UTF-8" in reasons["metadata.jsonl line 9"]
    assert report.added == 2  # ok.png with its caption, also.png without (its line was unreadable)
    assert {i.source_key: i.caption for i in items_of(report.dataset_id)} == {"ok.png": "fine", "also.png": ""}


def test_kohya_txt_captions_and_undecodable_caption_file(tmp_path):
    root = tmp_path / "kohya" / "10_tok woman"
    write(root / "1.png", image_bytes((300, 300), pattern=1))
    write(root / "1.txt", b"tok woman, red coat\n")
    write(root / "2.png", image_bytes((300, 300), pattern=2))
    write(root / "2.txt", b"\xff\xfe\xfa broken")  # UTF-16 BOM then odd bytes: decodes, so make it worse:
    write(root / "2.txt", b"caf\xe9 au lait")
    write(root / "3.webp", image_bytes((300, 300), pattern=3, fmt="WEBP"))
    report = import_dataset(CURATOR, tmp_path / "kohya", workers=1)
    assert report.kind == "kohya"
    assert report.added == 2
    assert "caption file 2.txt is not UTF-8" in skip_reasons(report)["10_tok woman/2.png"]
    by_key = {i.source_key: i for i in items_of(report.dataset_id)}
    assert by_key["10_tok woman/1.png"].caption == "tok woman, red coat"
    assert by_key["10_tok woman/3.webp"].format == "WEBP" and "no_caption" in by_key["10_tok woman/3.webp"].flags


STYLES = """id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName
15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt
39386,Men,Apparel,Bottomwear,Jeans,Blue,Summer,2012,Casual,Peter England Men Party Blue Jeans
59263,Women,Accessories,Watches,Watches,Silver,Winter,2016.0,Casual,Titan Women Silver Watch
21379,Men,Apparel,Topwear,Tshirts,Black,,2011,Casual,Manchester United Men Solid Black Track Pants, Limited, Edition
53759,NA,Apparel,Topwear,Tshirts,None,Summer,2012,Casual,Puma Men Grey T-shirt
1855,Men,Apparel,Topwear,Tshirts,Grey,Summer
9999,Men,Apparel,Topwear,Tshirts,Grey,Summer,2011,Casual,No image for me
"""


def test_kaggle_styles_csv_exact_caption_rule_and_bad_rows(tmp_path):
    root = tmp_path / "kaggle"
    write(root / "styles.csv", STYLES.encode())
    for n, pid in enumerate(("15970", "39386", "59263", "21379", "53759", "1855")):
        write(root / "images" / f"{pid}.jpg", image_bytes((300, 400), pattern=10 + n, fmt="JPEG"))
    report = import_dataset(CURATOR, root / "styles.csv", workers=1)
    assert report.kind == "csv" and report.added == 5
    reasons = skip_reasons(report)
    assert reasons["styles.csv line 7"] == "7 fields, the header has 10 (missing columns)"
    assert "no image for id 9999" in reasons["styles.csv line 8"]
    items = {i.attributes["id"]: i for i in items_of(report.dataset_id)}
    assert items["15970"].caption == "an image of a 2011 Fall Navy Blue Men's Shirt"
    assert items["39386"].caption == "an image of a 2012 Summer Blue Men's Jeans"
    assert items["59263"].caption == "an image of a 2016 Winter Silver Women's Watch"
    # empty season dropped; stray commas joined back into productDisplayName
    assert items["21379"].caption == "an image of a 2011 Black Men's T-shirt"
    assert items["21379"].attributes["productDisplayName"] == \
        "Manchester United Men Solid Black Track Pants, Limited, Edition"
    # "NA" gender drops the whole "{gender}'s" token, "None" colour is dropped
    assert items["53759"].caption == "an image of a 2012 Summer T-shirt"
    assert "caption_fields_missing" in items["53759"].flags and "caption_fields_missing" in items["21379"].flags
    assert items["15970"].flags == [] and items["15970"].caption_source == "template"
    assert items["15970"].category == "Shirts" and items["15970"].colour == "Navy Blue"


def test_csv_template_with_unknown_field_is_refused(tmp_path):
    write(tmp_path / "styles.csv", STYLES.encode())
    with pytest.raises(ValueError, match=r"\{baseColor\}.*not among the columns"):
        import_dataset(CURATOR, tmp_path / "styles.csv", template="a {baseColor} {articleType}", workers=1)
    assert counts() == (0, 0)


def _hf_dataset(tmp_path, n=3, kream=True):
    import datasets
    from PIL import Image
    import io
    texts = ["outer, The North Face 1996 Eco Nuptse Jacket Black, a photography of the north face black down jacket",
             "shoes, Nike Air Force 1 '07 Low White, a photography of a white sneaker",
             "bag, Kream, Ltd, Edition, Tote, a photography of a tote bag"][:n]
    if not kream:
        texts = [f"plain caption {i}" for i in range(n)]
    images = [Image.open(io.BytesIO(image_bytes((300, 300), pattern=40 + i))) for i in range(n)]
    return datasets.Dataset.from_dict({"image": images, "text": texts},
                                      features=datasets.Features({"image": datasets.Image(),
                                                                  "text": datasets.Value("string")}))


def test_hf_save_to_disk_with_kream_parsing(tmp_path):
    ds = _hf_dataset(tmp_path)
    path = tmp_path / "kream-product-blip-captions"
    ds.save_to_disk(str(path))
    assert detect_kind(path) == "hf"
    report = import_dataset(CURATOR, path, workers=1)  # "kream" in the name turns parsing on
    assert report.added == 3 and report.skipped == []
    items = items_of(report.dataset_id)
    assert items[0].caption == "a photography of the north face black down jacket"
    assert items[0].attributes["category"] == "outer" and items[0].category == "outer"
    assert items[0].attributes["product_name"] == "The North Face 1996 Eco Nuptse Jacket Black"
    assert items[2].attributes["product_name"] == "Kream, Ltd, Edition, Tote"  # commas inside the product name


def test_hf_parquet_plain_text_and_row_without_image(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [{"image": {"bytes": image_bytes((300, 300), pattern=50 + i), "path": f"p{i}.png"}, "text": f"caption {i}"}
            for i in range(3)]
    rows.append({"image": {"bytes": None, "path": "nothing.png"}, "text": "no bytes"})
    rows.append({"image": {"bytes": b"not an image at all", "path": "x.png"}, "text": "junk"})
    path = tmp_path / "train-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    report = import_dataset(CURATOR, path, kream=False, workers=1)
    assert report.added == 3
    reasons = skip_reasons(report)
    assert "no embedded image bytes" in reasons["train-00000.parquet:row 3"]
    assert any("not an image" in r for w, r in reasons.items() if w.startswith("train-00000.parquet:000004"))
    assert sorted(i.caption for i in items_of(report.dataset_id)) == ["caption 0", "caption 1", "caption 2"]


def test_hub_name_offline_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match=r"'hahminlew/kream-product-blip-captions' is not available here.*"
                                          r"offline.*save_to_disk"):
        import_dataset(CURATOR, "hahminlew/kream-product-blip-captions", workers=1)
    assert counts() == (0, 0)


def test_zip_upload_with_zip_slip_and_symlink_entries(tmp_path):
    zpath = tmp_path / "upload.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("shots/a.png", image_bytes((300, 300), pattern=60))
        zf.writestr("shots/a.txt", "a caption from the zip")
        zf.writestr("shots/b.png", image_bytes((300, 300), pattern=61))
        zf.writestr("../../evil.png", image_bytes((300, 300), pattern=62))
        zf.writestr("/abs/evil2.png", image_bytes((300, 300), pattern=63))
        link = zipfile.ZipInfo("shots/link.png")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    report = import_dataset(CURATOR, zpath, workers=1)
    assert report.kind == "zip" and report.added == 2
    reasons = skip_reasons(report)
    assert "zip-slip" in reasons["../../evil.png"] and "zip-slip" in reasons["/abs/evil2.png"]
    assert "symlink" in reasons["shots/link.png"]
    assert not (tmp_path.parent / "evil.png").exists() and not (tmp_path / "evil.png").exists()
    assert {i.caption for i in items_of(report.dataset_id)} == {"a caption from the zip", ""}


def test_reimport_adds_nothing_and_new_files_are_added(tmp_path):
    root = tmp_path / "k"
    for i in range(3):
        write(root / f"{i}.png", image_bytes((300, 300), pattern=70 + i))
    first = import_dataset(CURATOR, root, name="k", workers=1)
    again = import_dataset(CURATOR, root, name="k", workers=1)
    assert (again.dataset_id, again.added, again.already_present) == (first.dataset_id, 0, 3)
    write(root / "3.png", image_bytes((300, 300), pattern=73))
    third = import_dataset(CURATOR, root, dataset_id=first.dataset_id, workers=1)
    assert (third.added, third.already_present) == (1, 3)
    assert counts() == (1, 4)
    assert len(get_dataset(first.dataset_id).imports) == 3


def test_exact_and_near_duplicates_are_flagged_and_grouped(tmp_path):
    from PIL import Image
    import io
    root = tmp_path / "d"
    base = image_bytes((400, 400), pattern=80, fmt="PNG")
    write(root / "a.png", base)
    write(root / "a_copy.png", base)  # exact: one photo per dataset (unique dataset_id, sha256), reported
    im = Image.open(io.BytesIO(base)).resize((380, 380), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=70)
    write(root / "a_small.jpg", buf.getvalue())  # near: resized + re-encoded
    write(root / "other.png", image_bytes((400, 400), pattern=81))
    report = import_dataset(CURATOR, root, workers=1)
    by_key = {i.source_key: i for i in items_of(report.dataset_id)}
    assert "a_copy.png" not in by_key and "the same bytes as a.png" in skip_reasons(report)["a_copy.png"]
    assert "near_duplicate" in by_key["a_small.jpg"].flags and "near_duplicate" in by_key["a.png"].flags
    assert by_key["a.png"].dup_group == by_key["a_small.jpg"].dup_group == by_key["a.png"].id
    assert by_key["other.png"].dup_group is None and by_key["other.png"].flags == ["no_caption"]
    assert dedupe.hamming(by_key["a.png"].phash, by_key["a_small.jpg"].phash) <= dedupe.NEAR_DISTANCE
    assert report.duplicates["groups"] == 1


def test_same_shape_in_another_colour_is_not_a_near_duplicate(tmp_path):
    from workbench.data.demo import draw_garment
    import io
    root = tmp_path / "c"
    for name, rgb in (("navy", (30, 42, 94)), ("red", (190, 30, 45))):
        buf = io.BytesIO()
        draw_garment("t-shirt", rgb, 256).save(buf, "PNG")
        write(root / f"{name}.png", buf.getvalue())
    report = import_dataset(CURATOR, root, workers=1)
    a, b = items_of(report.dataset_id)
    assert dedupe.hamming(a.phash, b.phash) <= dedupe.NEAR_DISTANCE  # phash alone would call them duplicates
    assert a.dup_group is None and b.dup_group is None


def test_bad_inputs_are_each_skipped_with_a_reason_and_the_rest_imported(tmp_path):
    root = tmp_path / "bad"
    write(root / "good.png", image_bytes((300, 300), pattern=90))
    write(root / "tiny.png", image_bytes((40, 40), pattern=91))
    write(root / "wide.png", image_bytes((1200, 300), pattern=92))
    write(root / "corrupt.jpg", corrupt_jpeg())
    write(root / "trunc.png", truncated_png((300, 300)))
    write(root / "trunc.jpg", truncated_jpeg((300, 300)))
    write(root / "empty.jpg", b"")
    write(root / "notes.png", b"this is a text file pretending to be a png\n")
    write(root / "bomb.png", bomb_png())
    write(root / "huge.png", bomb_png(30_000, 10))
    os.symlink(root / "good.png", root / "link.png")
    report = import_dataset(CURATOR, root, workers=1)
    reasons = skip_reasons(report)
    assert report.added == 3
    assert "empty file (0 bytes)" == reasons["empty.jpg"]
    assert reasons["notes.png"].startswith("not an image")
    assert "decompression bomb" in reasons["bomb.png"]
    assert "huge dimensions 30000x10" in reasons["huge.png"]
    assert "truncated" in reasons["trunc.png"] or "corrupt" in reasons["trunc.png"]
    assert "truncated" in reasons["trunc.jpg"] or "corrupt" in reasons["trunc.jpg"]
    assert reasons["corrupt.jpg"].startswith("corrupt image data")
    assert "symlink" in reasons["link.png"]
    assert len(report.skipped) == 8
    by_key = {i.source_key: i for i in items_of(report.dataset_id)}
    assert "tiny" in by_key["tiny.png"].flags and "extreme_aspect" in by_key["wide.png"].flags
    assert "tiny" not in by_key["good.png"].flags
    stored = get_dataset(report.dataset_id).imports[-1]
    assert stored["skipped_count"] == 8
    assert {"where": "empty.jpg", "reason": "empty file (0 bytes)"} in stored["skipped"]
    assert query_items(report.dataset_id, ItemFilter(flag="tiny")).total == 1


def test_csv_with_unknown_encoding_lines(tmp_path):
    root = tmp_path / "enc"
    write(root / "images" / "1.jpg", image_bytes((300, 300), pattern=95, fmt="JPEG"))
    write(root / "images" / "2.jpg", image_bytes((300, 300), pattern=96, fmt="JPEG"))
    raw = STYLES.splitlines()[0].encode() + b"\n" + \
        b"1,Men,Apparel,Topwear,Tshirts,Grey,Summer,2011,Casual,Caf\xe9 shirt\n" + \
        b"2,Men,Apparel,Topwear,Tshirts,Red,Summer,2011,Casual,Plain shirt\n"
    write(root / "styles.csv", raw)
    report = import_dataset(CURATOR, root / "styles.csv", workers=1)
    assert report.added == 1 and "not UTF-8" in skip_reasons(report)["styles.csv line 2"]


def test_a_crash_mid_import_leaves_no_half_imported_dataset(tmp_path, monkeypatch):
    root = tmp_path / "x"
    for i in range(4):
        write(root / f"{i}.png", image_bytes((300, 300), pattern=100 + i))

    def boom(session, dataset_id):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importer.dedupe, "recompute", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_dataset(CURATOR, root, name="x", workers=1)
    assert counts() == (0, 0)
    from workbench.settings import get_settings
    ds_root = get_settings().path("datasets")
    assert [p.name for p in ds_root.iterdir()] == []  # no dataset folder, no staging left behind
    monkeypatch.undo()
    assert import_dataset(CURATOR, root, name="x", workers=1).added == 4


def test_worker_pool_import_matches_inline(tmp_path):
    root = tmp_path / "many"
    for i in range(70):
        write(root / f"{i:03d}.jpg", image_bytes((96, 96), pattern=200 + i, fmt="JPEG"))
    pooled = import_dataset(CURATOR, root, name="pooled", workers=2)
    inline = import_dataset(CURATOR, root, name="inline", workers=1)
    assert pooled.added == inline.added == 70
    key = lambda i: (i.source_key, i.sha256, i.phash, i.color, i.width, i.flags)  # noqa: E731
    assert [key(i) for i in items_of(pooled.dataset_id)] == [key(i) for i in items_of(inline.dataset_id)]


def test_a_pooled_import_from_a_streamlit_page_does_not_rerun_the_page_in_its_workers(tmp_path):
    """Streamlit installs the page script as ``__main__``; spawned workers re-run their parent's main script, so a
    64+ photo import from the Datasets page used to start workers that ran the page and never took work (a hang)."""
    import subprocess
    import sys

    root = tmp_path / "shoot"
    for i in range(importer.POOL_MIN_ITEMS):
        write(root / f"{i:03d}.png", image_bytes((48, 48), pattern=300 + i))
    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('the Datasets page ran inside an import worker')\n")
    code = "\n".join([
        "import sys, types",
        "page = types.ModuleType('__main__')",
        f"page.__file__ = {str(page)!r}",
        "sys.modules['__main__'] = page  # what Streamlit's script runner does for every page run",
        "from workbench.data.importer import import_dataset",
        "from workbench.auth import system_actor",
        f"report = import_dataset(system_actor(), {str(root)!r}, name='big shoot', workers=2)",
        "assert sys.modules['__main__'] is page",
        "print('added', report.added)",
    ])
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the pooled import did not finish in 120 s: its workers ran the page script")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["added", str(importer.POOL_MIN_ITEMS)]
