"""Datasets: import, browse, caption, clean, dedupe, preprocess and split brand photo sets.

Modules (each documents itself): ``sources`` (readers per kind of source), ``importer`` (``import_dataset``, the one
entry point), ``images`` (checks, hashes, conversions, thumbnails), ``captions`` (template rule, KREAM parsing,
prefix, find/replace), ``dedupe`` (exact and near duplicates), ``store`` (queries and edits used by the page and CLI),
``preprocess`` (training-ready imagefolder + manifest), ``split`` (stratified train/val/test), ``captioning`` (the
BLIP ``caption`` job), ``demo`` (the synthetic demo catalog), ``tables`` (ORM), ``cli`` (``workbench data ...``).

The ``caption`` job kind is registered in ``workbench.jobs.KINDS``. This package stays light (no torch at import).
"""
