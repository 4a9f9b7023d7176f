"""Product-exact scenes (issue #21): cut-outs stored with the product photo, scenes generated around the product's
own pixels (SDXL inpainting, optional IP-Adapter on its photo), and logos placed from SVG.

Modules: ``cutout`` (masks, storage, hand correction), ``compose`` (placement, composite, contact shadow),
``scene`` (the inpainting pipeline and ``generate_scene``), ``logo`` (safe SVG rendering, perspective warp, shading
blend), ``tables`` (``item_masks``, migration 0017). The OCR check of a placed logo is on the evaluation floor
(``workbench.evaluate.placement``).
"""
