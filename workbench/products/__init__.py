"""Products (SKUs): the records that tie reference photos, training runs, generated images and exports to what a
shopper buys. See docs/ARCHITECTURE.md ("Products").

    from workbench.products import create_product, get_product, list_products, link_generation, loras_for
    from workbench.products.importing import from_import       # products from an import's items
    from workbench.products.training import start_product_run  # DreamBooth-LoRA on a product's photos
    from workbench.products.retrieval import build_index, nearest_products  # shop-the-look index (torch inside)
    from workbench.products.tagging import tag_generation  # record the catalog products an image shows
    from workbench.products.logo_region import set_logo_region, logo_region  # where the logo goes on a photo

Light to import (SQLAlchemy only): the training, import, retrieval and tagging helpers are in their own modules.
"""
from workbench.products.fields import ProductError
from workbench.products.links import (
    FidelityRow,
    GenerationLink,
    LoraLink,
    ProductFidelity,
    fidelity_rows,
    fidelity_summary,
    generations_of_product,
    link_generation,
    loras_for,
    products_of_generation,
    record_fidelity,
    tokens_of_run,
)
from workbench.products.records import (
    EDITABLE,
    ProductInfo,
    categories,
    count_products,
    create_product,
    get_product,
    link_items,
    list_products,
    merge_products,
    products_of_items,
    unlink_items,
    update_product,
)


def measure_colour(actor, sku: str, settings=None) -> ProductInfo:
    """The garment region's dominant CIE Lab colour in ``sku``'s reference photos (``workbench.fidelity``: a garment
    mask per photo, the interior pixels pooled, the largest k-means cluster's median), stored in its colour_lab with
    ``update_product``. Needs ``datasets``; a product without photos, or whose photos show no garment, is a
    ProductError naming it and the remedy."""
    from workbench.products.colour import measure_colour as _measure

    return _measure(actor, sku, settings=settings)


__all__ = ["EDITABLE", "FidelityRow", "GenerationLink", "LoraLink", "ProductError", "ProductFidelity", "ProductInfo",
           "categories", "count_products", "create_product", "fidelity_rows", "fidelity_summary",
           "generations_of_product", "get_product", "link_generation", "link_items", "list_products", "loras_for",
           "measure_colour", "merge_products", "products_of_generation", "products_of_items", "record_fidelity",
           "tokens_of_run", "unlink_items", "update_product"]
