"""Preprocessing (sizes, padding colour, buckets, EXIF, CMYK/alpha/16-bit), the reproducible manifest hash,
and the stratified split."""
import json

import numpy as np
import pytest
from PIL import Image

from workbench.data.importer import import_dataset
from workbench.data.preprocess import PreprocessConfig, nearest_bucket, preprocess_dataset, transform
from workbench.data.split import assign, split_dataset
from workbench.data.store import query_items
from helpers.data import CURATOR, exif_rotated_jpeg, image_bytes, write


def _import(tmp_path, files):
    root = tmp_path / "src"
    for name, data in files.items():
        write(root / name, data)
    return import_dataset(CURATOR, root, workers=1).dataset_id


def _out_images(result):
    return {p.name: Image.open(p) for p in sorted(result.out_dir.rglob("*.png"))}


def test_crop_pad_and_bucket_sizes_and_pad_colour(tmp_path):
    ds = _import(tmp_path, {"wide.png": image_bytes((600, 300), (10, 10, 200)),
                            "tall.png": image_bytes((300, 900), (200, 10, 10))})
    crop = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=512, mode="crop"))
    assert {im.size for im in _out_images(crop).values()} == {(512, 512)}
    pad = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="pad", pad_color="#808080"))
    ims = list(_out_images(pad).values())
    wide = next(im for im in ims if im.getpixel((128, 128))[2] > 150)
    assert wide.size == (256, 256)
    assert wide.getpixel((128, 5)) == (128, 128, 128) and wide.getpixel((128, 250)) == (128, 128, 128)
    assert wide.getpixel((5, 128))[2] > 150  # the image spans the full width
    bucket = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=1024, mode="bucket"))
    assert sorted(im.size for im in _out_images(bucket).values()) == [(640, 1536), (1344, 768)]
    assert nearest_bucket(1000, 1000, 1024) == (1024, 1024) and nearest_bucket(4000, 1000, 1024) == (1536, 640)


def test_exif_orientation_is_applied(tmp_path):
    ds = _import(tmp_path, {"rot.jpg": exif_rotated_jpeg((400, 200), orientation=6)})
    assert query_items(ds).items[0].width == 200  # stored size is the displayed (rotated) size
    res = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="pad"))
    im = next(iter(_out_images(res).values()))
    arr = np.asarray(im).astype(int)
    # 90° clockwise: the left (red) half ends up on top, the right (blue) half at the bottom.
    assert arr[80, 128, 0] > 150 and arr[80, 128, 2] < 100
    assert arr[176, 128, 2] > 150 and arr[176, 128, 0] < 100
    assert arr[128, 10].tolist() == [255, 255, 255]  # padded left and right on white


@pytest.mark.parametrize("mode, make, expected", [
    ("CMYK", lambda: Image.new("CMYK", (300, 300), (0, 255, 255, 0)), (255, 0, 0)),
    ("RGBA", lambda: Image.new("RGBA", (300, 300), (0, 0, 255, 0)), (255, 255, 255)),
    ("LA", lambda: Image.new("LA", (300, 300), (0, 128)), (128, 128, 128)),
    ("I;16", lambda: Image.fromarray(np.full((300, 300), 65535, dtype=np.uint16)), (255, 255, 255)),
    ("P", lambda: Image.new("RGB", (300, 300), (0, 200, 0)).convert("P", palette=Image.Palette.ADAPTIVE), (0, 200, 0)),
])
def test_modes_are_converted_to_rgb(mode, make, expected):
    im = make()
    assert im.mode == mode
    out = transform(im, PreprocessConfig(size=256, mode="crop"))
    assert out.mode == "RGB" and out.size == (256, 256)
    assert np.abs(np.array(out.getpixel((128, 128))) - expected).max() <= 2


def test_sixteen_bit_png_imports_and_preprocesses(tmp_path):
    import io
    arr = np.tile(np.linspace(0, 65535, 300, dtype=np.uint16), (300, 1))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    ds = _import(tmp_path, {"deep.png": buf.getvalue()})
    res = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="crop"))
    im = np.asarray(next(iter(_out_images(res).values())))
    assert im[128, 0, 0] < 10 and im[128, -1, 0] > 245  # scaled to 8 bit, not clipped to white


def test_manifest_is_reproducible_byte_for_byte(tmp_path):
    ds = _import(tmp_path, {f"{i}.png": image_bytes((320, 300), pattern=500 + i) for i in range(4)})
    split_dataset(CURATOR, ds, val=0.25, test=0.25, seed=3)
    a = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="pad"), out_dir=tmp_path / "a")
    b = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="pad"), out_dir=tmp_path / "b")
    assert a.result_hash == b.result_hash
    files_a = {p.relative_to(a.out_dir): p.read_bytes() for p in a.out_dir.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b.out_dir): p.read_bytes() for p in b.out_dir.rglob("*") if p.is_file()}
    assert files_a == files_b
    manifest = json.loads(a.manifest_path.read_text())
    assert manifest["settings"]["mode"] == "pad" and manifest["result_hash"] == a.result_hash
    assert sorted(sum(manifest["items"].values(), [])) == sorted(i.id for i in query_items(ds).items)
    meta = [json.loads(line) for line in (a.out_dir / "train" / "metadata.jsonl").read_text().splitlines()]
    assert all((a.out_dir / "train" / m["file_name"]).exists() for m in meta)
    other = preprocess_dataset(CURATOR, ds, PreprocessConfig(size=256, mode="crop"), out_dir=tmp_path / "c")
    assert other.result_hash != a.result_hash
    with pytest.raises(ValueError, match="size must be a multiple of 64"):
        preprocess_dataset(CURATOR, ds, PreprocessConfig(size=500))
    with pytest.raises(ValueError, match="pad_color 'beige-ish'"):
        preprocess_dataset(CURATOR, ds, PreprocessConfig(pad_color="beige-ish"))


def test_stratified_split_is_fixed_by_seed_and_keeps_categories_balanced():
    groups = {"Tshirts": list(range(40)), "Jeans": list(range(100, 120)), "Caps": [500, 501]}
    a = assign(groups, val=0.1, test=0.2, seed=7)
    assert a == assign(groups, val=0.1, test=0.2, seed=7)
    assert a != assign(groups, val=0.1, test=0.2, seed=8)
    def count(cat, split):
        return sum(1 for i in groups[cat] if a[i] == split)
    assert (count("Tshirts", "train"), count("Tshirts", "val"), count("Tshirts", "test")) == (28, 4, 8)
    assert (count("Jeans", "train"), count("Jeans", "val"), count("Jeans", "test")) == (14, 2, 4)
    assert count("Caps", "train") >= 1  # small categories keep a training item


def test_split_dataset_on_the_demo_catalog(tmp_path):
    from workbench.data.demo import make_demo_catalog
    cat = make_demo_catalog(tmp_path / "demo", size=64, colours=4, extras=False)
    ds = import_dataset(CURATOR, cat.csv_path, workers=1).dataset_id
    res = split_dataset(CURATOR, ds, val=0.25, test=0.25, seed=1)
    assert res.stratified and res.counts == {"train": 14, "val": 7, "test": 7}
    assert all(v == {"train": 2, "val": 1, "test": 1} for v in res.by_category.values())
    from workbench.data.store import ItemFilter

    assert query_items(ds, ItemFilter(split="val")).total == 7
