"""Small fixture builders for tests and benchmarks: images in any mode, and the bad files an import must survive.

Everything is generated in code (no binary files in the repository) and deterministic. ``CURATOR`` is who tests and
benchmarks import and edit datasets as: an operator with the ``datasets`` permission that needs no user row.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.auth import system_actor

CURATOR = system_actor("curator", role="marketer")


def image_bytes(size: tuple[int, int] = (64, 64), color: tuple[int, ...] | int = (200, 30, 30), fmt: str = "PNG",
                mode: str = "RGB", pattern: int | None = None, **save: object) -> bytes:
    """An image of one colour, or (``pattern`` = seed) a random blocky picture that hashes unlike any other."""
    if pattern is not None:
        rng = np.random.default_rng(pattern)
        blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(blocks, "RGB").resize(size, Image.Resampling.NEAREST)
        if mode != "RGB":
            im = im.convert(mode)
    else:
        im = Image.new(mode, size, color)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_png(size: tuple[int, int] = (64, 64)) -> bytes:
    data = image_bytes(size, pattern=1, fmt="PNG")
    return data[: len(data) // 2]


def truncated_jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    data = image_bytes(size, pattern=2, fmt="JPEG", quality=90)
    return data[: len(data) // 2]


def corrupt_jpeg() -> bytes:
    """A JPEG whose first Huffman table is nonsense: Pillow identifies it but decoding fails (broken data stream)."""
    good = image_bytes((64, 64), pattern=3, fmt="JPEG")
    i = good.index(b"\xff\xc4")  # DHT marker
    length = int.from_bytes(good[i + 2:i + 4], "big")
    body = bytearray(good[i + 4:i + 2 + length])
    body[1:17] = b"\xff" * 16  # code counts per length: far more codes than the table holds
    return good[:i + 4] + bytes(body) + good[i + 2 + length:]


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + \
        chunk(b"IEND", b"")


def exif_rotated_jpeg(size: tuple[int, int] = (80, 40), orientation: int = 6) -> bytes:
    """A landscape JPEG (left half red, right half blue) tagged with an EXIF orientation (6 = rotate 90° CW)."""
    im = Image.new("RGB", size, (220, 20, 20))
    im.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()
