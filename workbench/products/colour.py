"""A product's measured colour: the garment's dominant CIE Lab colour in its reference photos.

    measure_colour(actor, "AUR-1001")      # -> ProductInfo with colour_lab=(L, a, b)
    workbench products measure AUR-1001    # or --all

Each photo gets a garment mask (``workbench.fidelity.masks``: background-distance matting), its interior pixels are
pooled over the photos, and the colour is the median of the largest k-means cluster (``fidelity.measure_lab``): the
same measure the fidelity score's ΔE compares generated images with. Not run during imports (they stay fast); the
demo and the CLI call it.
"""
from __future__ import annotations

from PIL import Image

from workbench.auth import Actor, require
from workbench.products.fields import ProductError
from workbench.products.records import ProductInfo, get_product, update_product
from workbench.settings import Settings


def measure_colour(actor: Actor, sku: str, settings: Settings | None = None) -> ProductInfo:
    """Measure and store ``sku``'s colour_lab (see the module docstring); returns the updated product."""
    from workbench.fidelity import measure_lab

    require(actor, "datasets", settings=settings)
    product = get_product(sku, settings=settings)
    paths = [p for p in product.images if p.is_file()]
    if not paths:
        raise ProductError(f"product {sku}: no reference photos to measure its colour from: link 1-5 photos of it "
                           "(`workbench products edit` or the Datasets page's Products tab)")
    photos = []
    for path in paths:
        with Image.open(path) as im:
            photos.append(im.convert("RGB"))
    try:
        lab = measure_lab(photos)
    except ValueError as exc:
        raise ProductError(f"product {sku}: {exc}; its photos need a plain background (or a segmentation "
                           "model)") from None
    return update_product(actor, sku, colour_lab=tuple(round(v, 2) for v in lab), settings=settings)
