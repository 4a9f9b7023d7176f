"""Products (SKUs): the records that tie reference photos, training runs, generated images and exports to what a
shopper buys. See docs/ARCHITECTURE.md ("Products").

    from workbench.products import create_product, get_product, list_products, link_generation, loras_for
    from workbench.products.importing import from_import       # products from an import's items
    from workbench.products.training import start_product_run  # DreamBooth-LoRA on a product's photos
    from workbench.products.retrieval import build_index, nearest_products  # shop-the-look index (torch inside)
    from workbench.products.tagging import tag_generation  # record the catalog products an image shows

Light to import (SQLAlchemy only): the training, import, retrieval and tagging helpers are in their own modules.
"""
from workbench.products.fields import ProductError
from workbench.products.links import (
    GenerationLink,
    LoraLink,
    generations_of_product,
    link_generation,
    loras_for,
    products_of_generation,
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


def measure_colour(actor, sku: str):
    """The garment region's dominant CIE Lab colour in ``sku``'s reference photos, stored in its colour_lab.
    A slot for the fidelity metrics (``workbench.evaluate.fidelity``: garment masks + dominant Lab), which write it
    with ``update_product(actor, sku, colour_lab=(L, a, b))``."""
    raise NotImplementedError("measure_colour comes with the product-fidelity metrics (issue #20 item 4); until "
                              "then a product's colour_lab stays empty unless set with update_product")


__all__ = ["EDITABLE", "GenerationLink", "LoraLink", "ProductError", "ProductInfo", "categories", "count_products",
           "create_product", "generations_of_product", "get_product", "link_generation", "link_items",
           "list_products", "loras_for", "measure_colour", "merge_products", "products_of_generation",
           "products_of_items", "tokens_of_run", "unlink_items", "update_product"]
