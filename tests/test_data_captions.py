"""Caption rules (template, singular types, KREAM), prefix, find/replace, single edits and the captioning job."""
import pytest
from sqlalchemy import select

from workbench.data import store
from workbench.data.captioning import _as_caption_fn, caption_items
from workbench.data.captions import (DEFAULT_TEMPLATE, TemplateError, caption_flags, find_replace, parse_kream,
                                     render_template, singular, with_prefix)
from workbench.data.importer import import_dataset
from workbench.data.tables import Item
from helpers.data import CURATOR, image_bytes, write
from workbench.db import AuditLog, session_scope


@pytest.mark.parametrize("plural, expected", [
    ("Tshirts", "T-shirt"), ("Shirts", "Shirt"), ("Sweatshirts", "Sweatshirt"), ("Dresses", "Dress"),
    ("Watches", "Watch"), ("Jeans", "Jeans"), ("Track Pants", "Track Pants"), ("Trousers", "Trousers"),
    ("Casual Shoes", "Casual Shoe"), ("Handbags", "Handbag"), ("Accessories", "Accessory"), ("Kurtas", "Kurta"),
    ("Hoodies", "Hoodie"), ("Briefs", "Briefs"), ("Dress", "Dress"),
])
def test_singular_article_types(plural, expected):
    assert singular(plural) == expected


def test_template_drops_missing_fields_with_their_suffix():
    full = {"year": "2011", "season": "Fall", "baseColour": "Navy Blue", "gender": "Men", "articleType": "Tshirts"}
    assert render_template(DEFAULT_TEMPLATE, full).text == "an image of a 2011 Fall Navy Blue Men's T-shirt"
    for missing in (None, "", "  ", "None", "NA", "n/a", "nan", float("nan"), "null"):
        r = render_template(DEFAULT_TEMPLATE, {**full, "gender": missing})
        assert r.text == "an image of a 2011 Fall Navy Blue T-shirt" and r.missing == ["gender"]
    r = render_template(DEFAULT_TEMPLATE, {"articleType": "Jeans", "year": "2012.0"})
    assert r.text == "an image of a 2012 Jeans" and r.missing == ["season", "baseColour", "gender"]


def test_template_errors_name_the_problem():
    with pytest.raises(TemplateError, match="no {field} placeholder"):
        render_template("just text", {})
    with pytest.raises(TemplateError, match="plain column name"):
        render_template("a {year!r}", {"year": 1})


def test_kream_text_parsing():
    k = parse_kream("top, Stussy Basic Logo T-Shirt Black, a photography of a black t - shirt with a white logo")
    assert (k.category, k.product_name, k.caption) == ("top", "Stussy Basic Logo T-Shirt Black",
                                                         "a photography of a black t - shirt with a white logo")
    assert parse_kream("just a caption") is None and parse_kream("a, b") is None


def test_prefix_is_idempotent_and_find_replace():
    assert with_prefix("a red coat", "a photo of TOK woman") == "a photo of TOK woman, a red coat"
    assert with_prefix("a photo of TOK woman, a red coat", "a photo of TOK woman") == "a photo of TOK woman, a red coat"
    assert with_prefix("", "TOK") == "TOK"
    assert find_replace("a Red red coat", "red", "blue") == "a Red blue coat"
    assert find_replace("a Red red coat", "red", "blue", ignore_case=True) == "a blue blue coat"
    assert find_replace("size 12 and 14", r"\d+", "N", regex=True) == "size N and N"
    assert find_replace("a+b", "a+b", r"c\1") == r"c\1"  # literal mode: no regex, no backrefs
    with pytest.raises(ValueError, match="not a valid regular expression"):
        find_replace("x", "(", "y", regex=True)
    assert caption_flags("") == ["no_caption"] and caption_flags("a None shirt") == ["caption_fields_missing"]
    assert caption_flags("a NAVY shirt") == []


def _dataset(tmp_path, n=3, captions=True):
    root = tmp_path / "src"
    for i in range(n):
        write(root / f"{i}.png", image_bytes((300, 300), pattern=300 + i))
        if captions:
            write(root / f"{i}.txt", f"a red coat number {i}".encode())
    return import_dataset(CURATOR, root, name="caps", workers=1).dataset_id


def _captions(dataset_id):
    with session_scope() as s:
        return [(i.caption, i.caption_source, i.flags) for i in s.scalars(select(Item).where(
            Item.dataset_id == dataset_id).order_by(Item.id))]


def test_single_edit_bulk_replace_and_prefix_persist_with_audit(tmp_path):
    ds = _dataset(tmp_path)
    first = store.query_items(ds).items[0]
    store.set_caption(CURATOR, first.id, "  a   blue coat ")
    assert store.get_item(first.id).caption == "a blue coat"
    assert store.get_item(first.id).caption_source == "edited"
    assert store.bulk_find_replace(CURATOR, ds, "red", "green") == 2
    assert store.apply_prefix(CURATOR, ds, "a photo of TOK coat") == 3
    assert store.apply_prefix(CURATOR, ds, "a photo of TOK coat") == 0
    caps = [c for c, _, _ in _captions(ds)]
    assert caps == ["a photo of TOK coat, a blue coat", "a photo of TOK coat, a green coat number 1",
                    "a photo of TOK coat, a green coat number 2"]
    store.set_caption(CURATOR, first.id, "")
    assert "no_caption" in store.get_item(first.id).flags
    with session_scope() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions.count("item.caption") == 2 and "dataset.caption_replace" in actions


def fake_captioner(images):
    """Deterministic stand-in for BLIP: names the dominant channel of each image."""
    out = []
    for im in images:
        r, g, b = im.resize((1, 1)).getpixel((0, 0))
        out.append(f"a {'red' if r >= max(g, b) else 'green' if g >= b else 'blue'} thing")
    return out


def test_caption_items_uncaptioned_then_all_with_prefix_and_stop(tmp_path):
    root = tmp_path / "plain"
    write(root / "r.png", image_bytes((300, 300), (220, 10, 10)))
    write(root / "g.png", image_bytes((300, 300), (10, 220, 10)))
    write(root / "b.png", image_bytes((300, 300), (10, 10, 220)))
    write(root / "b.txt", b"already captioned")
    ds = import_dataset(CURATOR, root, workers=1).dataset_id
    seen = []
    res = caption_items(CURATOR, ds, fake_captioner, mode="uncaptioned", batch_size=1,
                        progress=lambda d, t, m: seen.append((d, t)))
    assert (res.captioned, res.total) == (2, 2) and seen[-1] == (2, 2)
    caps = {c for c, _, _ in _captions(ds)}
    assert caps == {"already captioned", "a red thing", "a green thing"}
    assert all(f == [] for _, _, f in _captions(ds))
    res = caption_items(CURATOR, ds, fake_captioner, mode="all", prefix="TOK")
    assert res.captioned == 3
    assert sorted(c for c, _, _ in _captions(ds)) == ["TOK, a blue thing", "TOK, a green thing", "TOK, a red thing"]
    assert {src for _, src, _ in _captions(ds)} == {"blip"}
    stopped = caption_items(CURATOR, ds, fake_captioner, mode="all", batch_size=1, should_stop=lambda: True)
    assert stopped.stopped and stopped.captioned == 0
    with pytest.raises(ValueError, match="mode must be"):
        caption_items(CURATOR, ds, fake_captioner, mode="some")


def test_caption_fn_adapter_accepts_callables_and_objects():
    class WithCaption:
        def caption(self, images):
            return ["x"] * len(images)
    assert _as_caption_fn(WithCaption())([1, 2]) == ["x", "x"]
    assert _as_caption_fn(fake_captioner) is fake_captioner
    with pytest.raises(TypeError, match="cannot caption"):
        _as_caption_fn(42)


def test_caption_job_with_the_tiny_blip_captioner_through_a_worker(tmp_path, monkeypatch):
    import os
    import signal
    import subprocess
    import sys

    from workbench import jobs
    from workbench.data.captioning import enqueue_caption
    from workbench.models.tiny import save_tiny_blip_captioner
    from workbench.settings import reload_settings

    folder = save_tiny_blip_captioner(tmp_path / "tiny-blip")
    monkeypatch.setenv("WORKBENCH_MODELS__BLIP_CAPTIONER", str(folder))
    reload_settings()
    ds = _dataset(tmp_path, n=2, captions=False)
    worker = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True)
    try:
        job_id = enqueue_caption(CURATOR, ds, mode="uncaptioned", prefix="a photo of TOK")
        job = jobs.wait_for(job_id, timeout=120)
        assert job.status == "done", job.error
        assert job.result["captioned"] == 2 and job.result["model"] == str(folder)
        caps = _captions(ds)
        assert all(src == "blip" and cap.startswith("a photo of TOK") for cap, src, _ in caps)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def test_caption_job_with_a_missing_model_fails_naming_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from workbench import jobs
    from workbench.data.captioning import enqueue_caption

    ds = _dataset(tmp_path, n=1, captions=False)
    worker = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True)
    try:
        job = jobs.wait_for(enqueue_caption(CURATOR, ds), timeout=120)
        assert job.status == "failed"
        assert "Salesforce/blip-image-captioning-large" in job.message and "models pull" in job.message
        assert _captions(ds)[0][0] in ("", None)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def test_caption_job_kind_is_registered():
    from workbench import jobs
    import workbench.data  # noqa: F401
    assert jobs.KINDS["caption"] == "workbench.data.captioning:caption_job"
