"""Issue #17, dataset side: zip bombs, racing imports, odd image modes, broken CSV quoting, symlinked folders, hostile
regexes, huge captions and uploads. The samples come from tests/hostile_data.py."""
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import func, select

from hostile import data as hd
from workbench.data import importer, store
from workbench.data import captions
from workbench.data.importer import import_dataset
from workbench.data.sources import SourceError
from workbench.data.tables import Dataset, Item
from helpers.data import CURATOR, image_bytes, write
from workbench.db import session_scope
from workbench.settings import get_settings


def items_of(dataset_id):
    with session_scope() as s:
        return list(s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)))


def reasons(report):
    return {s.where: s.reason for s in report.skipped}


# -- 3: zip bombs and entries the importer never reads -------------------------------------------------------------

def test_a_zip_of_many_small_bomb_entries_is_refused_before_extracting(tmp_path):
    z = hd.zip_bomb(tmp_path / "bomb.zip", entries=20, entry_size=5 * 2**20)  # 100 MiB from ~100 KB
    with pytest.raises(SourceError, match="bomb.zip.*(ratio|compress)"):
        import_dataset(CURATOR, z, name="bomb", workers=1)
    leftovers = [p for p in get_settings().path("datasets").rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_zip_extracts_only_photos_and_captions_and_reports_the_rest(tmp_path):
    report = import_dataset(CURATOR, hd.zip_with_non_media(tmp_path / "mixed.zip"), workers=1)
    assert report.added == 2
    why = reasons(report)
    for name in ("set/payload.bin", "set/run.sh", "set/inner.zip"):
        assert "not an image or caption file" in why[name]
    assert {i.caption for i in items_of(report.dataset_id)} == {"a caption from the zip", ""}


def test_a_zip_entry_that_lies_about_its_size_is_skipped(tmp_path):
    report = import_dataset(CURATOR, hd.zip_lying_size(tmp_path / "liar.zip"), workers=1)
    assert report.added == 1
    assert "liar.png" in reasons(report)


# -- 5: racing imports ---------------------------------------------------------------------------------------------

def _race(monkeypatch, n, run):
    """Run ``run(i)`` in ``n`` threads that all reach the write transaction together (after each read what the
    dataset already held), as imports from several browser tabs do."""
    barrier = threading.Barrier(n, timeout=60)
    real = importer._commit

    def gated(*a, **k):
        barrier.wait()
        return real(*a, **k)

    monkeypatch.setattr(importer, "_commit", gated)
    results, errors = [None] * n, []

    def target(i):
        try:
            results[i] = run(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def test_concurrent_imports_into_one_dataset_store_each_photo_once(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    for i in range(12):
        write(root / f"{i:02d}.png", image_bytes((96, 96), pattern=600 + i))
    seed = tmp_path / "seed"
    write(seed / "s.png", image_bytes((96, 96), pattern=699))
    first = import_dataset(CURATOR, seed, name="shop", workers=1)
    results, errors = _race(monkeypatch, 3, lambda i: import_dataset(CURATOR, root, dataset_id=first.dataset_id,
                                                                     workers=1))
    assert errors == []
    assert len(items_of(first.dataset_id)) == 13
    assert sorted(r.added for r in results) == [0, 0, 12]
    assert all(r.added + r.already_present == 12 for r in results)


def test_two_imports_racing_to_create_one_dataset_name_share_it(tmp_path, monkeypatch):
    roots = []
    for k in range(2):
        root = tmp_path / f"src{k}"
        for i in range(3):
            write(root / f"{i}.png", image_bytes((96, 96), pattern=620 + 10 * k + i))
        roots.append(root)
    results, errors = _race(monkeypatch, 2, lambda i: import_dataset(CURATOR, roots[i], name="new-set", workers=1))
    assert errors == []
    with session_scope() as s:
        assert s.scalar(select(func.count(Dataset.id))) == 1
    assert results[0].dataset_id == results[1].dataset_id
    assert len(items_of(results[0].dataset_id)) == 6
    notes = results[0].notes + results[1].notes
    assert any("just created by another import" in n for n in notes)


def test_the_same_bytes_twice_in_one_import_are_stored_once(tmp_path):
    root = tmp_path / "d"
    base = image_bytes((300, 300), pattern=640)
    write(root / "a.png", base)
    write(root / "a_copy.png", base)
    report = import_dataset(CURATOR, root, workers=1)
    assert report.added == 1 and "the same bytes as a.png" in reasons(report)["a_copy.png"]


# -- 6: image modes and unexpected errors --------------------------------------------------------------------------

def test_16_bit_and_other_modes_are_imported_scaled_not_clipped(tmp_path):
    root = tmp_path / "modes"
    hd.png_16bit(root / "gray16.png")
    hd.png_16bit(root / "gray16.tif", fmt="TIFF")
    for mode in ("F", "I", "I;16B", "CMYK", "LA", "P"):
        hd.image_in_mode(root / f"m_{mode.replace(';', '')}.{'png' if mode in ('P', 'LA') else 'tif'}", mode)
    write(root / "good.png", image_bytes((300, 300), pattern=650))
    report = import_dataset(CURATOR, root, workers=1)
    assert report.skipped == [] and report.added == 9
    gray = next(i for i in items_of(report.dataset_id) if i.source_key == "gray16.png")
    thumb = Image.open(store.ensure_thumbnail(gray)).convert("L")
    w, h = thumb.size
    assert 100 < thumb.getpixel((w // 2, h // 2)) < 155  # the middle of a 0..65535 ramp is mid-grey
    assert thumb.getpixel((w - 2, h // 2)) > 240 and thumb.getpixel((1, h // 2)) < 15


def test_an_unexpected_error_on_one_file_skips_it_with_its_name(tmp_path, monkeypatch):
    from workbench.data import images

    root = tmp_path / "x"
    write(root / "good.png", image_bytes((300, 300), pattern=660))
    write(root / "weird.png", image_bytes((300, 300), pattern=661))
    real = images.analyse

    def flaky(data, max_pixels=None):
        a = real(data, max_pixels)
        if data == (root / "weird.png").read_bytes():
            raise KeyError("something Pillow never documented")
        return a

    monkeypatch.setattr(images, "analyse", flaky)
    report = import_dataset(CURATOR, root, workers=1)
    assert report.added == 1
    assert "KeyError" in reasons(report)["weird.png"]


def test_a_zip_with_a_file_and_a_folder_of_the_same_name(tmp_path):
    report = import_dataset(CURATOR, hd.zip_file_and_folder_same_name(tmp_path / "clash.zip"), workers=1)
    assert report.added == 2
    assert "x.png/y.png" in reasons(report)


# -- 7: broken quoting in CSV and JSONL ----------------------------------------------------------------------------

def test_an_unterminated_quote_in_styles_csv_loses_only_its_own_row(tmp_path):
    csv_path = hd.csv_unterminated_quote(tmp_path / "kaggle")
    report = import_dataset(CURATOR, csv_path, workers=1)
    assert "never closed" in reasons(report)["styles.csv line 3"]
    captions = {i.attributes["id"]: i.caption for i in items_of(report.dataset_id)}
    assert set(captions) == {"1", "3", "4", "5"}
    assert "White Men's Sneaker" in captions["3"]
    assert all("\n" not in c and "Black" not in c for k, c in captions.items() if k != "4")


def test_an_unterminated_quote_in_metadata_csv_loses_only_its_caption(tmp_path):
    hd.metadata_csv_unterminated_quote(tmp_path / "f")
    report = import_dataset(CURATOR, tmp_path / "f", workers=1)
    assert "never closed" in reasons(report)["metadata.csv line 2"]
    assert {i.source_key: i.caption for i in items_of(report.dataset_id)} == {
        "a.png": "", "b.png": "blue jeans", "c.png": "green coat"}


def test_hostile_jsonl_lines_are_skipped_one_by_one(tmp_path):
    hd.metadata_jsonl_hostile_lines(tmp_path / "j")
    report = import_dataset(CURATOR, tmp_path / "j", workers=1)
    why = reasons(report)
    assert "metadata.jsonl line 2" in why and "metadata.jsonl line 3" in why
    assert {i.source_key: i.caption for i in items_of(report.dataset_id)} == {"a.png": "a caption",
                                                                             "b.png": "b caption"}


# -- 13: symlinked folders, regexes, caption length ---------------------------------------------------------------

def test_a_csv_cannot_reach_through_a_symlinked_folder(tmp_path):
    csv_path = hd.csv_symlinked_dir(tmp_path / "src", tmp_path / "elsewhere")
    report = import_dataset(CURATOR, csv_path, template="{text}", workers=1)
    assert report.added == 1
    assert "outside the source folder" in reasons(report)["list.csv line 3"]


def test_an_imagefolder_cannot_reach_through_a_symlinked_folder(tmp_path):
    import json
    import os
    root = tmp_path / "f"
    write(tmp_path / "elsewhere" / "secret.png", image_bytes((300, 300), pattern=670))
    write(root / "ok.png", image_bytes((300, 300), pattern=671))
    os.symlink(tmp_path / "elsewhere", root / "pics")
    write(root / "metadata.jsonl", (json.dumps({"file_name": "pics/secret.png", "text": "x"}) + "\n").encode())
    report = import_dataset(CURATOR, root, workers=1)
    assert report.added == 1 and "outside the source folder" in reasons(report)["metadata.jsonl line 1"]


def test_a_catastrophic_regex_times_out_and_changes_nothing(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="took too long"):
        captions.find_replace(hd.EVIL_REGEX_SUBJECT, hd.EVIL_REGEX, "x", regex=True, timeout=0.3)
    assert time.monotonic() - t0 < 3
    assert captions.find_replace(hd.EVIL_REGEX_SUBJECT, hd.ISSUE_REGEX, "x", regex=True) == hd.EVIL_REGEX_SUBJECT
    root = tmp_path / "k"
    write(root / "a.png", image_bytes((300, 300), pattern=680))
    write(root / "a.txt", hd.EVIL_REGEX_SUBJECT.encode())
    report = import_dataset(CURATOR, root, workers=1)
    with pytest.raises(ValueError, match="took too long"):
        store.bulk_find_replace(CURATOR, report.dataset_id, hd.EVIL_REGEX, "x", regex=True)
    assert items_of(report.dataset_id)[0].caption == hd.EVIL_REGEX_SUBJECT


def test_long_captions_are_cut_on_import_and_refused_on_edit(tmp_path):
    report = import_dataset(CURATOR, hd.long_caption_folder(tmp_path / "k").parent, workers=1)
    item = items_of(report.dataset_id)[0]
    assert len(item.caption) <= captions.MAX_CAPTION_CHARS
    assert any("cut to" in n and "long.png" in n for n in report.notes)
    with pytest.raises(store.DatasetError, match="too long"):
        store.set_caption(CURATOR, item.id, "x" * (captions.MAX_CAPTION_CHARS + 1))
    with pytest.raises(store.DatasetError, match="too long"):
        store.apply_prefix(CURATOR, report.dataset_id, "y" * 100)
    assert items_of(report.dataset_id)[0].caption == item.caption


# -- 13d: uploads --------------------------------------------------------------------------------------------------

def test_uploads_get_unique_server_names_and_are_removed(tmp_path):
    import io
    import os
    from workbench.data.uploads import discard_upload, save_upload

    up = get_settings().path("uploads")
    a = save_upload(io.BytesIO(b"first"), "photos.zip")
    b = save_upload(io.BytesIO(b"second"), "../../photos.zip")
    assert a != b and a.parent == b.parent == up
    assert a.read_bytes() == b"first" and b.read_bytes() == b"second"
    assert "photos" not in a.name and a.suffix == ".zip"
    old = time.time() - 2 * 86400
    os.utime(a, (old, old))
    c = save_upload(io.BytesIO(b"third"), "x.zip")
    assert not a.exists() and b.exists() and c.exists()  # a day-old upload is cleaned up at the next upload
    discard_upload(b)
    assert not b.exists()


@pytest.mark.empty_workspace
def test_migration_0008_merges_duplicate_rows_and_makes_sha_unique():
    import datetime as dt

    import sqlalchemy as sa
    from alembic import command

    from workbench import db

    engine = db.get_engine()
    cfg = db._alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    now = dt.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO datasets (id, name, imports, split_config, created_at, updated_at) "
                             "VALUES (1, 'd', '[]', '{}', :t, :t)"), {"t": now})
        row = dict(dataset_id=1, path="images/x.png", phash="0" * 16, width=9, height=9, format="PNG",
                   attributes="{}", created_at=now)
        for id_, sha, caption, flags in ((1, "a" * 64, "", '["exact_duplicate", "no_caption"]'),
                                         (2, "a" * 64, "kept caption", '["exact_duplicate"]'),
                                         (3, "a" * 64, "", '["exact_duplicate", "no_caption"]'),
                                         (4, "b" * 64, "other", "[]")):
            conn.execute(sa.text("INSERT INTO items (id, dataset_id, source_key, path, sha256, phash, width, height, "
                                 "format, attributes, created_at, caption, flags, dup_group) VALUES (:id, :dataset_id, "
                                 ":k, :path, :sha, :phash, :width, :height, :format, :attributes, :created_at, "
                                 ":caption, :flags, :g)"),
                         {**row, "id": id_, "k": f"{id_}.png", "sha": sha, "caption": caption, "flags": flags,
                          "g": 1 if sha == "a" * 64 else None})
    db.reset_for_tests()
    with session_scope() as s:  # migrates to the heads
        rows = s.execute(select(Item.id, Item.caption, Item.flags, Item.dup_group).order_by(Item.id)).all()
    assert [tuple(r) for r in rows] == [(1, "kept caption", [], None), (4, "other", [], None)]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO items (dataset_id, source_key, path, sha256, phash, width, height, format, "
                             "attributes, created_at, caption, flags) VALUES (1, 'z', 'p', :sha, '0', 1, 1, 'PNG', "
                             "'{}', :t, '', '[]')"), {"sha": "b" * 64, "t": now})
