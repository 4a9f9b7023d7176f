"""Preprocess a dataset into a training-ready imagefolder, reproducible byte for byte.

    from workbench.data.preprocess import PreprocessConfig, preprocess_dataset
    result = preprocess_dataset(dataset_id, PreprocessConfig(size=1024, mode="pad", pad_color="#ffffff"),
                                actor="mia")       # needs the ``datasets`` permission
    result.out_dir, result.result_hash

Modes: ``crop`` (resize so the shorter side is ``size``, then centre-crop a square), ``pad`` (fit the longer side to
``size`` and pad to a square with ``pad_color``: product shots on white keep their whole silhouette) and ``bucket``
(SDXL aspect-ratio buckets: the bucket nearest the image's aspect ratio, then cover + centre-crop). Every image gets its
EXIF orientation applied and is converted to 8-bit RGB (CMYK converted, alpha composited on ``pad_color``, 16-bit
scaled). Smaller images are scaled up (they carry the ``tiny`` flag already).

Output (``workspace/datasets/<id>/prepared/<mode>-<size>-<settings hash>/`` unless given)::

    train/000012.png ... train/metadata.jsonl     # file_name, text, item_id (HF imagefolder with split folders)
    val/...  test/...
    manifest.json                                 # dataset, settings, item ids per split, sha256 per file, result hash

The result hash is the sha256 of the sorted ``path<TAB>sha256`` lines of every file except the manifest; the manifest
holds no timestamp, so the same input and settings give the same bytes. The folder is built under a temporary name and
renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, ImageColor
from sqlalchemy import select

from workbench.data.images import decode, oriented, save_image_atomic, to_rgb
from workbench.files import write_bytes_atomic
from workbench.data.store import DatasetError, image_path
from workbench.data.tables import Dataset, Item
from workbench.db import session_scope
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

SIZES = (512, 768, 1024)
# SDXL's training buckets at 1024 (width, height); other sizes scale them to multiples of 64.
SDXL_BUCKETS_1024 = [(1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344),
                     (1536, 640), (640, 1536)]


@dataclass
class PreprocessConfig:
    size: int = 1024  # 512, 768 or 1024 (any multiple of 64 from 64 to 2048: the demo model trains at 64)
    mode: Literal["crop", "pad", "bucket"] = "crop"
    pad_color: str = "#ffffff"  # pad and alpha background: white, or a neutral grey like "#f2f2f2"
    format: Literal["png", "jpg"] = "png"  # png is lossless; jpg at jpeg_quality
    jpeg_quality: int = 95
    include_excluded: bool = False  # items the user excluded (duplicates) stay out by default

    def check(self) -> None:
        """Raise ValueError naming the setting and its value."""
        if self.size % 64 or not 64 <= self.size <= 2048:
            raise ValueError(f"size must be a multiple of 64 between 64 and 2048 (512, 768, 1024), got {self.size}")
        if self.mode not in ("crop", "pad", "bucket"):
            raise ValueError(f"mode must be crop, pad or bucket, got {self.mode!r}")
        try:
            ImageColor.getrgb(self.pad_color)
        except ValueError:
            raise ValueError(f"pad_color {self.pad_color!r} is not a colour (use e.g. '#ffffff' or 'white')") from None
        if self.format not in ("png", "jpg"):
            raise ValueError(f"format must be png or jpg, got {self.format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100, got {self.jpeg_quality}")

    @property
    def rgb(self) -> tuple[int, int, int]:
        return ImageColor.getrgb(self.pad_color)[:3]  # type: ignore[return-value]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class PreprocessResult:
    out_dir: Path
    manifest_path: Path
    result_hash: str
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # "WxH" -> images


def buckets(size: int) -> list[tuple[int, int]]:
    if size == 1024:
        return list(SDXL_BUCKETS_1024)
    f = size / 1024
    return sorted({(max(64, round(w * f / 64) * 64), max(64, round(h * f / 64) * 64)) for w, h in SDXL_BUCKETS_1024},
                  key=lambda b: b[0] / b[1])


def nearest_bucket(width: int, height: int, size: int) -> tuple[int, int]:
    ar = math.log(width / height)
    return min(buckets(size), key=lambda b: (abs(math.log(b[0] / b[1]) - ar), b))


def _cover_crop(im: Image.Image, tw: int, th: int) -> Image.Image:
    w, h = im.size
    scale = max(tw / w, th / h)
    nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.LANCZOS)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return im.crop((left, top, left + tw, top + th))


def _pad(im: Image.Image, size: int, rgb: tuple[int, int, int]) -> Image.Image:
    w, h = im.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), rgb)
    canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def transform(im: Image.Image, config: PreprocessConfig) -> Image.Image:
    """One image, decoded: orientation, RGB conversion, then crop / pad / bucket."""
    im = to_rgb(oriented(im), config.rgb)
    if config.mode == "pad":
        return _pad(im, config.size, config.rgb)
    if config.mode == "bucket":
        return _cover_crop(im, *nearest_bucket(*im.size, config.size))
    return _cover_crop(im, config.size, config.size)


def default_out_dir(dataset_id: int, config: PreprocessConfig, settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("datasets", str(dataset_id), "prepared",
                                             f"{config.mode}-{config.size}-{config.digest()}")


def preprocess_dataset(actor: Actor, dataset_id: int, config: PreprocessConfig | None = None,
                       out_dir: str | Path | None = None,
                       progress: Callable[[int, int, str], None] | None = None,
                       settings: Settings | None = None) -> PreprocessResult:
    """Write the training set; see the module docstring. Items without a split go to ``train``."""
    require(actor, "datasets", settings=settings)
    settings = settings or get_settings()
    config = config or PreprocessConfig()
    config.check()
    with session_scope(settings) as s:
        ds = s.get(Dataset, dataset_id)
        if ds is None:
            raise DatasetError(f"no dataset with id {dataset_id}")
        q = select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)
        if not config.include_excluded:
            q = q.where(Item.excluded.is_(False))
        items = list(s.scalars(q))
        ds_name = ds.name
    if not items:
        raise DatasetError(f"dataset {dataset_id} has no items to preprocess")
    out = Path(out_dir) if out_dir else default_out_dir(dataset_id, config, settings)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        files: dict[str, str] = {}
        meta: dict[str, list[str]] = {}
        ids: dict[str, list[int]] = {}
        sizes: Counter[str] = Counter()
        ext = config.format
        for n, item in enumerate(items, 1):
            split = item.split or "train"
            im = transform(decode(image_path(item, settings).read_bytes()), config)
            rel = f"{split}/{item.id:06d}.{ext}"
            params = {"quality": config.jpeg_quality} if ext == "jpg" else {"compress_level": 6}
            data = save_image_atomic(im, tmp / rel, "JPEG" if ext == "jpg" else "PNG", **params)
            files[rel] = hashlib.sha256(data).hexdigest()
            sizes[f"{im.width}x{im.height}"] += 1
            meta.setdefault(split, []).append(json.dumps(
                {"file_name": f"{item.id:06d}.{ext}", "text": item.caption, "item_id": item.id},
                ensure_ascii=False, sort_keys=True))
            ids.setdefault(split, []).append(item.id)
            if progress:
                progress(n, len(items), f"preprocessed {n} of {len(items)}")
        for split, lines in meta.items():
            data = ("\n".join(lines) + "\n").encode("utf-8")
            write_bytes_atomic(tmp / split / "metadata.jsonl", data)
            files[f"{split}/metadata.jsonl"] = hashlib.sha256(data).hexdigest()
        listing = "".join(f"{k}\t{files[k]}\n" for k in sorted(files))
        result_hash = hashlib.sha256(listing.encode()).hexdigest()
        manifest = {"dataset_id": dataset_id, "dataset_name": ds_name, "settings": asdict(config),
                    "items": {k: ids[k] for k in sorted(ids)}, "files": dict(sorted(files.items())),
                    "sizes": dict(sorted(sizes.items())), "result_hash": result_hash}
        write_bytes_atomic(tmp / "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreprocessResult(out, out / "manifest.json", result_hash, {k: len(v) for k, v in ids.items()},
                            dict(sizes))
