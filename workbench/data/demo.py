"""The synthetic demo catalog: an invented brand's garments drawn with Pillow, offline, deterministic by seed.

    from workbench.data.demo import make_demo_catalog, import_demo_catalog
    cat = make_demo_catalog("demo-catalog", seed=0, size=512)   # images/<id>.jpg + styles.csv
    report = import_demo_catalog("mia", seed=0)     # the same, imported as dataset "demo-aurelo"

Seven garments (t-shirt, hoodie, jacket, trousers, dress, sneakers, cap), each in ``colours`` colours on a white
sweep, with the brand wordmark (default "AURELO") printed large and dark-on-light or light-on-dark so OCR can read
it (rapidocr reads it at 512 px). The attribute CSV has Kaggle ``styles.csv`` columns plus ``brand``, so it imports
with the default caption template. With ``extras`` (default) the catalog also holds one re-encoded near-duplicate and
one row with a missing season ("NA"), to show the duplicate and caption flags. Same seed, size and Pillow version:
the same bytes (the test suite checks it), which is what training, evaluation and OCR tests rely on.
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from workbench.files import write_bytes_atomic

BRAND = "AURELO"
# name -> (rgb, baseColour label as in styles.csv)
COLOURS: list[tuple[str, tuple[int, int, int]]] = [
    ("Navy Blue", (30, 42, 94)), ("Red", (190, 30, 45)), ("Olive", (107, 112, 48)), ("Black", (28, 28, 30)),
    ("Mustard", (214, 160, 36)), ("Grey", (128, 130, 134)), ("Teal", (0, 120, 120)), ("Pink", (232, 120, 160)),
]
# garment -> (articleType, subCategory, masterCategory, gender)
GARMENTS: dict[str, tuple[str, str, str, str]] = {
    "t-shirt": ("Tshirts", "Topwear", "Apparel", "Men"),
    "hoodie": ("Hoodies", "Topwear", "Apparel", "Unisex"),
    "jacket": ("Jackets", "Topwear", "Apparel", "Women"),
    "trousers": ("Trousers", "Bottomwear", "Apparel", "Men"),
    "dress": ("Dresses", "Dress", "Apparel", "Women"),
    "sneakers": ("Sneakers", "Shoes", "Footwear", "Unisex"),
    "cap": ("Caps", "Headwear", "Accessories", "Unisex"),
}
SEASONS = ("Spring", "Summer", "Fall", "Winter")
# The demo shop (invented domain): each garment's price in EUR, and the product page of a SKU.
PRICES_EUR = {"Tshirts": "29.00", "Hoodies": "69.00", "Jackets": "149.00", "Trousers": "79.00", "Dresses": "99.00",
              "Sneakers": "119.00", "Caps": "25.00"}
SHOP_URL = "https://shop.aurelo.example/p/{sku}"
COLUMNS = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "year", "usage",
           "productDisplayName", "brand"]
SS = 2  # supersampling factor: drawn at 2x, reduced with LANCZOS (smooth edges, still deterministic)


@dataclass
class DemoCatalog:
    root: Path
    csv_path: Path
    brand: str
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def image_paths(self) -> list[Path]:
        return [self.root / "images" / f"{r['id']}.jpg" for r in self.rows]


def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * f))) for c in rgb)  # type: ignore[return-value]


def _ink(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Wordmark colour: white on dark cloth, near-black on light cloth (luma threshold)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (250, 250, 250) if luma < 140 else (20, 20, 24)


def _poly(points, s, ox, oy):
    return [(ox + x * s, oy + y * s) for x, y in points]


# Shapes in a 100x100 design space (centred), as polygons; (x, y) of where the wordmark sits and its width.
SHAPES = {
    "t-shirt": ([(30, 18), (42, 14), (50, 19), (58, 14), (70, 18), (88, 32), (80, 42), (72, 36), (72, 86), (28, 86),
                 (28, 36), (20, 42), (12, 32)], (50, 46, 36)),
    "hoodie": ([(32, 20), (40, 10), (50, 8), (60, 10), (68, 20), (84, 30), (92, 78), (82, 80), (74, 44), (74, 88),
                (26, 88), (26, 44), (18, 80), (8, 78), (16, 30)], (50, 50, 38)),
    "jacket": ([(32, 14), (44, 12), (50, 20), (56, 12), (68, 14), (84, 26), (92, 82), (80, 84), (74, 42), (74, 90),
                (26, 90), (26, 42), (20, 84), (8, 82), (16, 26)], (50, 36, 40)),
    "trousers": ([(30, 8), (70, 8), (76, 92), (56, 92), (50, 36), (44, 92), (24, 92)], (50, 18, 30)),
    "dress": ([(40, 8), (60, 8), (62, 30), (80, 92), (20, 92), (38, 30)], (50, 54, 40)),
    "sneakers": ([(10, 56), (18, 40), (40, 36), (58, 44), (76, 50), (90, 58), (92, 70), (10, 70)], (52, 56, 40)),
    "cap": ([(16, 62), (20, 40), (34, 26), (50, 22), (66, 26), (80, 40), (84, 62), (96, 66), (96, 72), (16, 70)],
            (50, 48, 40)),
}


def draw_garment(garment: str, rgb: tuple[int, int, int], size: int, brand: str = BRAND,
                 rng: random.Random | None = None) -> Image.Image:
    """One product shot: ``garment`` in ``rgb`` on white, with ``brand`` printed on it."""
    rng = rng or random.Random(0)
    big = size * SS
    im = Image.new("RGB", (big, big), (255, 255, 255))
    d = ImageDraw.Draw(im)
    scale = big / 100 * rng.uniform(0.86, 0.94)
    ox = (big - 100 * scale) / 2 + rng.uniform(-0.02, 0.02) * big
    oy = (big - 100 * scale) / 2 + rng.uniform(-0.02, 0.02) * big
    points, (tx, ty, tw) = SHAPES[garment]
    # A soft floor shadow, then the garment with a darker outline.
    d.ellipse([ox + 14 * scale, oy + 90 * scale, ox + 86 * scale, oy + 97 * scale], fill=(236, 236, 236))
    d.polygon(_poly(points, scale, ox, oy), fill=rgb, outline=_shade(rgb, 0.6), width=max(2, big // 180))
    dark = _shade(rgb, 0.72)
    w = max(2, big // 220)
    if garment in ("t-shirt", "hoodie", "jacket"):
        d.line(_poly([(42, 14), (50, 24), (58, 14)], scale, ox, oy), fill=dark, width=w)
    if garment == "hoodie":
        d.rectangle(_poly([(36, 66), (64, 80)], scale, ox, oy), outline=dark, width=w)
    if garment == "jacket":  # the zip starts below the wordmark, so the lettering stays unbroken
        d.line(_poly([(50, 48), (50, 90)], scale, ox, oy), fill=(200, 200, 204), width=w)
    if garment == "trousers":
        d.line(_poly([(30, 14), (70, 14)], scale, ox, oy), fill=dark, width=w)
    if garment == "sneakers":
        d.rectangle(_poly([(10, 66), (92, 72)], scale, ox, oy), fill=(245, 245, 245), outline=(180, 180, 180))
        for x in range(34, 58, 6):
            d.line(_poly([(x, 40), (x + 4, 48)], scale, ox, oy), fill=(245, 245, 245), width=w)
    if garment == "cap":
        d.line(_poly([(50, 22), (50, 62)], scale, ox, oy), fill=dark, width=w)
    # The wordmark: as wide as the chest/panel allows, in the colour that contrasts with the cloth.
    target_w = tw * scale
    font_size = max(8, int(target_w / max(1, len(brand)) * 1.45))
    font = ImageFont.load_default(size=font_size)
    while font.getlength(brand) > target_w and font_size > 8:
        font_size -= 2
        font = ImageFont.load_default(size=font_size)
    d.text((ox + tx * scale, oy + ty * scale), brand, fill=_ink(rgb), font=font, anchor="mm")
    return im.resize((size, size), Image.Resampling.LANCZOS)


def make_demo_catalog(out_dir: str | Path, seed: int = 0, size: int = 512, colours: int = 4, brand: str = BRAND,
                      extras: bool = True, quality: int = 92,
                      palette: list[tuple[str, tuple[int, int, int]]] | None = None) -> DemoCatalog:
    """Draw the catalog into ``out_dir`` (``images/<id>.jpg`` + ``styles.csv``). Deterministic by (seed, size,
    colours, brand, extras, palette). ``palette`` (label, rgb) pairs replace ``COLOURS``, e.g. a brand variant in a
    new signature colour (the demo LoRA's data set)."""
    palette = palette or COLOURS
    if not 1 <= colours <= len(palette):
        raise ValueError(f"colours must be 1..{len(palette)}, got {colours}")
    if size < 32:
        raise ValueError(f"size must be at least 32 px, got {size}")
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    next_id = 10001
    encoded: dict[str, bytes] = {}
    for g_index, (garment, (article, sub, master, gender)) in enumerate(GARMENTS.items()):
        # Each garment gets its own rotation through the palette so the colour mix varies by garment.
        for c in range(colours):
            label, rgb = palette[(g_index * 3 + c) % len(palette)]
            img = draw_garment(garment, rgb, size, brand, random.Random(rng.random()))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            pid = str(next_id)
            next_id += 1
            encoded[pid] = buf.getvalue()
            season = rng.choice(SEASONS)
            rows.append({"id": pid, "gender": gender, "masterCategory": master, "subCategory": sub,
                         "articleType": article, "baseColour": label, "season": season,
                         "year": str(rng.choice((2025, 2026))), "usage": "Casual",
                         "productDisplayName": f"{brand.title()} {label} {garment.replace('-', ' ').title()}",
                         "brand": brand})
    if extras:
        # A near-duplicate: the first shot re-encoded at lower quality, a few pixels smaller.
        first = Image.open(io.BytesIO(encoded[rows[0]["id"]]))
        small = first.resize((size - max(2, size // 64),) * 2, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=80)
        pid = str(next_id)
        next_id += 1
        encoded[pid] = buf.getvalue()
        rows.append({**rows[0], "id": pid, "productDisplayName": rows[0]["productDisplayName"] + " (reshoot)"})
        # A row with a missing season: the caption drops the field and is flagged.
        rows[1] = {**rows[1], "season": "NA"}
    for pid, data in encoded.items():
        write_bytes_atomic(root / "images" / f"{pid}.jpg", data)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = root / "styles.csv"
    write_bytes_atomic(csv_path, buf.getvalue().encode("utf-8"))
    return DemoCatalog(root=root, csv_path=csv_path, brand=brand, rows=rows)


def import_demo_catalog(actor, seed: int = 0, size: int = 512, colours: int = 4, name: str | None = None,
                        out_dir: str | Path | None = None, *, settings=None,
                        palette: list[tuple[str, tuple[int, int, int]]] | None = None):
    """Draw the catalog into ``workspace/demo/catalog-<seed>`` (or ``out_dir``) and import it as ``created_by`` (an
    actor with the ``datasets`` permission). Returns the ImportReport; running it twice adds nothing the second time.
    ``palette``: see ``make_demo_catalog``."""
    from workbench.data.importer import import_dataset
    from workbench.auth import require
    from workbench.settings import get_settings

    actor = require(actor, "datasets", settings=settings)  # before drawing anything
    settings = settings or get_settings()
    out = Path(out_dir) if out_dir else settings.path("demo", f"catalog-{seed}")
    cat = make_demo_catalog(out, seed=seed, size=size, colours=colours, palette=palette)
    return import_dataset(actor, cat.csv_path, name=name or f"demo-{cat.brand.lower()}",
                          settings=settings)


# -- the colour measure (bench/demo_colour_accuracy.py, scripts/train_demo_base.py, the tests) ----------------------
# Foreground = pixels whose CIELAB distance from pure white is over FOREGROUND_DELTA_E (this drops the white sweep
# and the light floor shadow, 236/255 grey, Delta E ~6); dominant colour = the per-channel median RGB of the
# foreground (the wordmark and outlines are a minority of the garment's pixels, so the median is the cloth); nearest
# colour = smallest Delta E 1976.

FOREGROUND_DELTA_E = 15.0
MIN_FOREGROUND = 0.02  # below 2% of the pixels there is no garment to measure

# The brand variant the demo LoRA learns: a signature colour far from every catalog colour (nearest is Navy Blue).
SIGNATURE = ("Aurelo Violet", (124, 58, 196))


def demo_palette() -> list[tuple[str, tuple[int, int, int]]]:
    return list(COLOURS)


def rgb_to_lab(rgb) -> np.ndarray:
    """sRGB (0-255, shape (..., 3)) to CIELAB under D65 (the standard formulas, as in scikit-image's rgb2lab)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def delta_e(a, b) -> np.ndarray:
    """CIELAB Delta E 1976 between sRGB colours (broadcasts)."""
    return np.linalg.norm(rgb_to_lab(a) - rgb_to_lab(b), axis=-1)


def dominant_colour(image) -> tuple[int, int, int] | None:
    """The garment's colour in a product shot on white: median RGB of the non-background pixels, or None when
    under ``MIN_FOREGROUND`` of the image is foreground (nothing drawn)."""
    px = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float64).reshape(-1, 3)
    fg = px[delta_e(px, (255, 255, 255)) > FOREGROUND_DELTA_E]
    if len(fg) < MIN_FOREGROUND * len(px):
        return None
    return tuple(int(round(v)) for v in np.median(fg, axis=0))  # type: ignore[return-value]


def nearest_colour(rgb, palette: list[tuple[str, tuple[int, int, int]]]) -> str | None:
    """The label of the palette colour nearest to ``rgb`` (Delta E 1976); None for None."""
    if rgb is None:
        return None
    dists = delta_e(np.asarray([c for _, c in palette], dtype=np.float64), np.asarray(rgb, dtype=np.float64))
    return palette[int(np.argmin(dists))][0]
