"""Hostile inputs for the dataset importer, as generator functions (issue #17): each writes one sample under the path
it is given and returns that path. The docstring of each says what an import must do with it.

Used by tests/test_data_hostile.py; meant for the shared hostile-input corpus too. Everything is built in code and
deterministic; each generator takes well under a second except ``zip_bomb`` (about 1 s for its default size).
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.data import image_bytes, write

STYLES_HEADER = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"


def _zeros_entry(zf: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=size > 2**31) as out:
        chunk = bytes(1 << 20)
        left = size
        while left:
            n = min(left, len(chunk))
            out.write(chunk[:n])
            left -= n


def zip_bomb(path: Path, entries: int = 60, entry_size: int = 10 * 2**20) -> Path:
    """A zip of ``entries`` entries of ``entry_size`` zero bytes each, every one small enough to pass a per-entry
    rule (60 x 10 MiB, about 600 KB compressed). The import must refuse the whole zip before extracting anything
    (its total declared size / compressed size ratio is far beyond any photo set) with a SourceError naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(entries):
            _zeros_entry(zf, f"shots/{i:03d}.png", entry_size)
    return path


def zip_with_non_media(path: Path) -> Path:
    """A zip with two photos and a caption beside one, plus files the importer never reads (a binary payload, a
    script, a nested zip). Only the photos and the caption may be extracted; every other entry is skipped with its
    name and the reason "not an image or caption file"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("set/a.png", image_bytes((300, 300), pattern=501))
        zf.writestr("set/a.txt", "a caption from the zip")
        zf.writestr("set/b.png", image_bytes((300, 300), pattern=502))
        zf.writestr("set/payload.bin", os.urandom(1024))
        zf.writestr("set/run.sh", "#!/bin/sh\nid\n")
        zf.writestr("set/inner.zip", b"PK\x05\x06" + bytes(18))
    return path


def zip_lying_size(path: Path) -> Path:
    """A zip whose one photo entry declares (in both headers) fewer uncompressed bytes than it holds. The import
    must not write more than the declared size for it: the entry is skipped with a reason (its CRC or size check
    fails), and the other photo is imported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    real = image_bytes((300, 300), pattern=511)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("liar.png", real)
        zf.writestr("fine.png", image_bytes((300, 300), pattern=512))
    data = bytearray(buf.getvalue())
    small = struct.pack("<I", 100)
    # local header: uncompressed size at offset 22; central directory entry: at offset 24
    assert data[:4] == b"PK\x03\x04"
    data[22:26] = small
    cd = data.index(b"PK\x01\x02")
    data[cd + 24:cd + 28] = small
    path.write_bytes(bytes(data))
    return path


def zip_file_and_folder_same_name(path: Path) -> Path:
    """A zip holding both ``x.png`` (a photo) and ``x.png/y.png`` (a photo inside a folder of the same name). The
    second cannot be extracted: it is skipped with its name and a reason; the import goes on with the rest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.png", image_bytes((300, 300), pattern=521))
        zf.writestr("x.png/y.png", image_bytes((300, 300), pattern=522))
        zf.writestr("z.png", image_bytes((300, 300), pattern=523))
    return path


def png_16bit(path: Path, size: tuple[int, int] = (1100, 1024), fmt: str = "PNG") -> Path:
    """A 16-bit grayscale (mode I;16) horizontal ramp, 0 -> 65535, of about 1 Mpx (PNG, or TIFF with
    ``fmt="TIFF"``). The import must accept it (scaled to 8-bit, not clipped: the thumbnail's middle is mid-grey)."""
    w, h = size
    ramp = np.linspace(0, 65535, w).astype("<u2")
    arr = np.broadcast_to(ramp, (h, w)).copy()
    im = Image.frombytes("I;16", (w, h), arr.tobytes())
    buf = io.BytesIO()
    im.save(buf, fmt)
    return write(path, buf.getvalue())


def image_in_mode(path: Path, mode: str, size: tuple[int, int] = (600, 400)) -> Path:
    """A TIFF (or PNG for P/LA) in an unusual mode: ``F`` (float), ``I`` (32-bit), ``CMYK``, ``LA``, ``P`` with a
    transparent index, ``I;16B``. The import must accept each as a photo (converted to RGB for its thumbnail)."""
    w, h = size
    if mode == "F":
        im = Image.fromarray(np.linspace(0.0, 1.0, w * h, dtype="float32").reshape(h, w))
    elif mode == "I":
        im = Image.fromarray(np.linspace(0, 65535, w * h).astype("int32").reshape(h, w))
    elif mode == "I;16B":
        im = Image.frombytes("I;16B", (w, h), np.linspace(0, 65535, w * h).astype(">u2").tobytes())
    elif mode == "P":
        im = Image.new("P", (w, h), 1)
        im.putpalette([255, 255, 255, 200, 30, 30] + [0] * 762)
        im.info["transparency"] = 0
    else:
        im = Image.new(mode, (w, h), {"CMYK": (0, 120, 200, 10), "LA": (90, 200)}[mode])
    fmt = "PNG" if mode in ("P", "LA") else "TIFF"
    buf = io.BytesIO()
    im.save(buf, fmt, **({"transparency": 0} if mode == "P" else {}))
    return write(path, buf.getvalue())


def csv_unterminated_quote(root: Path) -> Path:
    """A Kaggle-style ``styles.csv`` (ids 1-5, images under ``images/``) whose row for id 2 opens a quote that is
    never closed, so a csv parser reads rows 3-5 into that one field. The import must report line 3 (id 2) as
    unreadable ("quote ... never closed") and still import ids 1, 3, 4 and 5 with their own captions; no caption
    may contain another row's text."""
    for i in range(1, 6):
        write(root / "images" / f"{i}.jpg", image_bytes((300, 300), pattern=530 + i, fmt="JPEG"))
    rows = [STYLES_HEADER,
            "1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Navy shirt",
            '2,Women,Apparel,Topwear,Tops,"Red,Summer,2012,Casual,Red top',
            "3,Men,Footwear,Shoes,Sneakers,White,Summer,2013,Sports,White sneakers",
            "4,Women,Accessories,Bags,Handbags,Black,Winter,2014,Formal,Black bag",
            "5,Men,Apparel,Bottomwear,Jeans,Blue,Fall,2015,Casual,Blue jeans"]
    return write(root / "styles.csv", ("\n".join(rows) + "\n").encode())


def metadata_csv_unterminated_quote(root: Path) -> Path:
    """An imagefolder with ``metadata.csv`` (a.png, b.png, c.png) whose line for a.png opens a quote in its caption
    and never closes it. The import must report that line, import a.png without a caption (and b.png, c.png with
    their own captions); no caption may contain another line's text."""
    for i, name in enumerate(("a", "b", "c")):
        write(root / f"{name}.png", image_bytes((300, 300), pattern=540 + i))
    text = 'file_name,text\na.png,"a red dress\nb.png,blue jeans\nc.png,green coat\n'
    return write(root / "metadata.csv", text.encode())


def metadata_jsonl_hostile_lines(root: Path) -> Path:
    """An imagefolder whose ``metadata.jsonl`` holds a line nested 100,000 arrays deep (a RecursionError for a
    recursive parser) and a line that is not JSON, between good lines. Each bad line is reported with its line
    number and skipped; the good lines' captions are imported."""
    write(root / "a.png", image_bytes((300, 300), pattern=551))
    write(root / "b.png", image_bytes((300, 300), pattern=552))
    lines = [json.dumps({"file_name": "a.png", "text": "a caption"}), "[" * 100_000 + "]" * 100_000,
             "{oops", json.dumps({"file_name": "b.png", "text": "b caption"})]
    return write(root / "metadata.jsonl", ("\n".join(lines) + "\n").encode())


def csv_symlinked_dir(root: Path, outside: Path) -> Path:
    """A CSV source (``file_name`` column) whose ``pics`` folder is a symlink to a folder outside the source
    (``outside``, holding a photo). Rows naming ``pics/secret.png`` must be skipped ("outside the source folder");
    the row with a real photo is imported."""
    write(outside / "secret.png", image_bytes((300, 300), pattern=561))
    write(root / "own" / "ok.png", image_bytes((300, 300), pattern=562))
    root.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, root / "pics", target_is_directory=True)
    text = "file_name,text\nown/ok.png,mine\npics/secret.png,stolen\n"
    return write(root / "list.csv", text.encode())


def long_caption_folder(root: Path, chars: int = 50_000) -> Path:
    """A kohya folder whose one caption file holds ``chars`` characters. The photo is imported with its caption cut
    to the limit (``captions.MAX_CAPTION_CHARS``) and the report says so."""
    write(root / "long.png", image_bytes((300, 300), pattern=571))
    return write(root / "long.txt", ("word " * (chars // 5)).encode())


EVIL_REGEX = "(a|aa)+$"
"""A catastrophically backtracking pattern: against "aaaa...ab" it takes exponential time even in the ``regex``
module. Caption find/replace must give up after its time budget with "took too long" and change nothing."""
EVIL_REGEX_SUBJECT = "a" * 40 + "b"
ISSUE_REGEX = "(a+)+$"
"""The issue's pattern: it hangs Python's ``re`` on EVIL_REGEX_SUBJECT; the ``regex`` module answers it at once."""


ZIP_TRAVERSAL_ENTRIES = ("../../evil.png", "/abs/evil2.png", "link-evil.png")


def zip_traversal(path: Path) -> Path:
    """A zip with one good photo and three entries that try to leave the extraction folder: a ``../`` path, an
    absolute path and a symlink entry pointing at /etc. Each must be skipped with its name (nothing is written
    outside the staging folder) and the good photo imported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.png", image_bytes((300, 300), pattern=531))
        zf.writestr(ZIP_TRAVERSAL_ENTRIES[0], image_bytes((300, 300), pattern=532))
        zf.writestr(ZIP_TRAVERSAL_ENTRIES[1], image_bytes((300, 300), pattern=533))
        link = zipfile.ZipInfo(ZIP_TRAVERSAL_ENTRIES[2])
        link.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` stores one
        zf.writestr(link, "/etc/passwd")
    return path


def png_decompression_bomb(path: Path, side: int = 60_000) -> Path:
    """A valid PNG of ``side`` x ``side`` pixels (3.6 Gpx) that compresses to a few KB: one black row repeated.
    Decoding it would take gigabytes; the import must skip it by its declared size, naming the file."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    rows = zlib.compressobj(9)
    raw = b"".join(rows.compress(b"\x00" + bytes(side)) for _ in range(64)) + rows.flush()  # first rows only
    return write(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
