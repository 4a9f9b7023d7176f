"""Image checks, hashes, conversions and atomic file writes shared by import, preprocessing and the demo catalog.

Kept light (Pillow, numpy, imagehash only): ``ingest_one`` runs in worker processes during an import.

Thresholds shown to users (the page and ``workbench data show`` print them):

* ``tiny``: the shorter side is below a quarter of the training resolution of the workspace's base model
  (``tiny_side``: 256 px for SDXL's 1024, ``MIN_SIDE``; 16 px for the 64-px demo model): preprocessing would blow it
  up more than 4×. The importer passes the workspace's threshold.
* ``MAX_ASPECT`` = 3.0: width/height (or height/width) above it is flagged ``extreme_aspect``.
* ``MAX_SIDE`` = 20,000 px and Pillow's ``Image.MAX_IMAGE_PIXELS`` (about 89 Mpx): larger images are skipped as
  decompression bombs / huge dimensions, before any pixel is decoded.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps

from workbench.files import DiskFull, disk_full, is_disk_full, write_bytes_atomic

MIN_SIDE = 256
MAX_ASPECT = 3.0
MAX_SIDE = 20_000
MAX_FILE_BYTES = 256 * 1024 * 1024
THUMB_SIDE = 256
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
FORMAT_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "GIF": "gif"}
WHITE = (255, 255, 255)
RESIZABLE_MODES = frozenset({"1", "L", "P", "RGB", "RGBA", "LA", "PA", "RGBa", "La"})  # thumbnail() works on these


class BadImage(ValueError):
    """The bytes are not a usable image; the message is the reason shown to the user."""


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


# -- files -------------------------------------------------------------------------------------------------------

def save_image_atomic(image: Image.Image, path: Path, format: str, **params: Any) -> bytes:
    """Encode ``image`` in memory and write it atomically. Returns the bytes written (to hash them)."""
    buf = io.BytesIO()
    image.save(buf, format=format, **params)
    data = buf.getvalue()
    write_bytes_atomic(path, data)
    return data


def read_file_checked(path: Path) -> bytes:
    """The bytes of a file the user gave us, refusing symlinks, empty and oversized files (BadImage with the reason)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise BadImage(f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise BadImage("symlink (not followed)")
    if not stat.S_ISREG(st.st_mode):
        raise BadImage("not a regular file")
    if st.st_size == 0:
        raise BadImage("empty file (0 bytes)")
    if st.st_size > MAX_FILE_BYTES:
        raise BadImage(f"file too large ({st.st_size / 2**20:.0f} MiB > {MAX_FILE_BYTES // 2**20} MiB)")
    with open(path, "rb") as f:
        return f.read()


# -- decoding ----------------------------------------------------------------------------------------------------

def decode(data: bytes, max_pixels: int | None = None, draft: int | None = None) -> Image.Image:
    """Open and decode ``data``, or raise BadImage naming the problem (empty, not an image, bomb, truncated).

    ``draft``: for JPEG, let libjpeg scale by 1/2, 1/4 or 1/8 while decoding as long as both sides stay >= draft
    (the whole compressed stream is still read, so truncation is still caught); the original size is kept in
    ``im.info["original_size"]``."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    limit = max_pixels or Image.MAX_IMAGE_PIXELS or 89_478_485
    truncated_before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not come back half grey
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(io.BytesIO(data))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise BadImage(f"decompression bomb refused ({exc})") from None
            except Image.UnidentifiedImageError:
                raise BadImage("not an image (Pillow cannot identify the data)") from None
            except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file, reported by name
                raise BadImage(f"corrupt image header ({type(exc).__name__}: {exc})") from None
            w, h = im.size
            if w <= 0 or h <= 0:
                raise BadImage(f"invalid dimensions {w}x{h}")
            if w * h > limit:
                raise BadImage(f"decompression bomb refused: {w}x{h} = {w * h:,} pixels > limit {limit:,}")
            if max(w, h) > MAX_SIDE:
                raise BadImage(f"huge dimensions {w}x{h} (longest side limit {MAX_SIDE})")
            if im.format not in FORMAT_EXT:
                raise BadImage(f"unsupported image format {im.format}")
            im.info["original_size"] = (w, h)
            if draft and im.format in ("JPEG", "MPO") and im.mode in ("RGB", "L"):
                im.draft(im.mode, (draft, draft))
            try:
                im.load()
            except Exception as exc:  # noqa: BLE001
                msg = str(exc)
                kind = "truncated" if "truncated" in msg.lower() else "corrupt"
                raise BadImage(f"{kind} image data ({type(exc).__name__}: {msg})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_before
    return im


def to_rgb(im: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """RGB 8-bit from any mode: CMYK and YCbCr converted, alpha composited on ``background``, 16-bit and float
    scaled to 8-bit (not clipped), palette expanded."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        top = float(arr.max(initial=0))
        hi = 65535.0 if mode.startswith("I;16") or (mode == "I" and 255 < top <= 65535) else \
            top if mode == "I" and top > 65535 else 255.0
        if mode == "F":
            hi = max(float(arr.max(initial=1.0)), 1e-9) if arr.max(initial=0) > 1.0 else 1.0
        arr8 = np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode == "P":
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or im.mode in ("RGBA", "LA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, background)
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")  # CMYK, YCbCr, L, 1, LAB, HSV


def oriented(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (phones store portrait shots sideways plus a tag)."""
    return ImageOps.exif_transpose(im) if im.getexif().get(0x0112, 1) != 1 else im


# -- analysis ----------------------------------------------------------------------------------------------------

@dataclass
class Analysis:
    sha256: str
    phash: str
    color: str
    width: int
    height: int
    format: str
    mode: str
    file_size: int
    flags: list[str]
    thumb: Image.Image

    @property
    def ext(self) -> str:
        return FORMAT_EXT[self.format]


def tiny_side(resolution: int) -> int:
    """The ``tiny`` threshold for a model trained at ``resolution`` px: a quarter of it (SDXL 1024 -> 256)."""
    return max(1, int(resolution) // 4)


def image_flags(width: int, height: int, min_side: int = MIN_SIDE) -> list[str]:
    flags = []
    if min(width, height) < min_side:
        flags.append("tiny")
    if max(width / height, height / width) > MAX_ASPECT:
        flags.append("extreme_aspect")
    return flags


def foreground_color(rgb: Image.Image) -> str:
    """Mean colour of the pixels that are not near-white (the product on a white sweep), or of all pixels."""
    arr = np.asarray(rgb.resize((32, 32), Image.Resampling.BOX), dtype=np.float64).reshape(-1, 3)
    fg = arr[arr.min(axis=1) < 235]
    mean = (fg if len(fg) >= 8 else arr).mean(axis=0)
    return "#" + "".join(f"{int(round(c)):02x}" for c in mean)


def perceptual_hash(rgb: Image.Image) -> str:
    import imagehash

    return str(imagehash.phash(rgb))


def analyse(data: bytes, max_pixels: int | None = None) -> Analysis:
    """Decode and describe one image: hashes, size, format, mean colour, image flags and a thumbnail."""
    im = decode(data, max_pixels, draft=THUMB_SIDE)
    fmt = "JPEG" if im.format == "MPO" else im.format
    mode = im.mode
    width, height = im.info["original_size"]
    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # stored sideways: the displayed size is swapped
        width, height = height, width
    thumb = oriented(im)
    if mode not in RESIZABLE_MODES:  # 16-bit, 32-bit, float, CMYK...: Pillow cannot resize them all; convert first
        thumb = to_rgb(thumb)
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    thumb = to_rgb(thumb)
    return Analysis(
        sha256=hashlib.sha256(data).hexdigest(),
        phash=perceptual_hash(thumb),
        color=foreground_color(thumb),
        width=width,
        height=height,
        format=fmt,
        mode=mode,
        file_size=len(data),
        flags=image_flags(width, height),
        thumb=thumb,
    )


def thumb_path(thumbs_dir: Path, sha256: str) -> Path:
    return thumbs_dir / sha256[:2] / f"{sha256}.jpg"


def write_thumbnail(thumb: Image.Image, thumbs_dir: Path, sha256: str) -> Path:
    path = thumb_path(thumbs_dir, sha256)
    if not path.exists():
        save_image_atomic(thumb, path, "JPEG", quality=85)
    return path


# -- the per-file step of an import (runs in worker processes) --------------------------------------------------

_known: frozenset[str] = frozenset()


def init_worker(known_sha256: frozenset[str]) -> None:
    global _known
    _known = known_sha256


def ingest_one(task: tuple[str, str | None, bytes | None, str, str, int | None]) -> dict[str, Any]:
    """Check, hash and store one image. ``task`` = (key, file path or None, bytes or None, images dir, thumbs dir,
    max_pixels). Returns a record, or ``{"key": ..., "error": reason}``. Files are written atomically; the original
    bytes are stored unchanged as ``<sha256>.<ext>`` (content-addressed, so a duplicate costs no space)."""
    key, path, data, images_dir, thumbs_dir, max_pixels = task
    try:
        if data is None:
            data = read_file_checked(Path(path))
        a = analyse(data, max_pixels)
        rel = f"images/{a.sha256}.{a.ext}"
        if a.sha256 not in _known:
            target = Path(images_dir) / f"{a.sha256}.{a.ext}"
            if not target.exists():
                write_bytes_atomic(target, data)
            write_thumbnail(a.thumb, Path(thumbs_dir), a.sha256)
    except BadImage as exc:
        return {"key": key, "error": str(exc)}
    except MemoryError:
        return {"key": key, "error": "out of memory while decoding (image too large)"}
    except Exception as exc:  # noqa: BLE001 - one odd file must never abort the import (issue #17)
        if isinstance(exc, DiskFull):  # not this file's fault: the whole import stops, saying so (issue #23)
            raise
        if is_disk_full(exc):
            raise disk_full(exc, Path(images_dir)) from exc
        return {"key": key, "error": f"cannot be imported ({type(exc).__name__}: {str(exc)[:200]}); "
                                     "convert it to an 8-bit RGB PNG or JPEG and import it again"}
    return {"key": key, "error": None, "sha256": a.sha256, "phash": a.phash, "color": a.color, "width": a.width,
            "height": a.height, "format": a.format, "mode": a.mode, "file_size": a.file_size, "flags": a.flags,
            "path": rel}
