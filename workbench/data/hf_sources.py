"""Hugging Face datasets as sources: a dataset saved with ``save_to_disk``, parquet file(s), or a hub dataset by name
(which needs the hub or its cache, and otherwise fails with one clear error). Used by ``sources.open_source``."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.data.candidates import Candidate, Skip, Source, SourceError, _caption_column, _kream_fields

def _pick_columns(columns: list[str], image_column: str | None, caption_column: str | None,
                  where: str) -> tuple[str, str | None]:
    img = image_column or next((c for c in ("image", "img", "picture") if c in columns), None)
    if img is None or img not in columns:
        raise SourceError(f"{where}: no image column (looked for {image_column or 'image'}; columns: "
                          f"{', '.join(columns)})")
    return img, _caption_column(columns, caption_column, where)


def _row_candidate(i: int, prefix: str, row: dict[str, Any], img_col: str, cap_col: str | None, kream: bool,
                   skips: list[Skip]) -> Candidate | None:
    where = f"{prefix}row {i}"
    value = row.get(img_col)
    data = None
    if isinstance(value, dict):
        data = value.get("bytes")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    if not data:
        skips.append(Skip(where, "the image column holds no embedded image bytes"))
        return None
    caption = row.get(cap_col) if cap_col else ""
    caption = "" if caption is None else " ".join(str(caption).split())
    attrs = {k: v for k, v in row.items() if k not in (img_col, cap_col) and isinstance(v, (str, int, float, bool))}
    if kream:
        caption = _kream_fields(caption, attrs)
    name = value.get("path") if isinstance(value, dict) else None
    key = f"{prefix}{i:06d}" + (f" {name}" if name else "")
    return Candidate(key=key, data=bytes(data), caption=caption, caption_source="source" if caption else "",
                     attributes=attrs)


def _from_hf_dataset(ds: Any, location: str, kind: str, image_column: str | None, caption_column: str | None,
                     kream: bool) -> Source:
    from datasets import DatasetDict, Image as HFImage

    splits = dict(ds) if isinstance(ds, DatasetDict) else {"": ds}
    skips: list[Skip] = []
    prepared = []
    total = 0
    for split, d in splits.items():
        img, cap = _pick_columns(list(d.column_names), image_column, caption_column, location)
        if isinstance(d.features.get(img), HFImage):
            d = d.cast_column(img, HFImage(decode=False))
        prepared.append((f"{split}/" if split else "", d, img, cap))
        total += len(d)

    def gen() -> Iterator[Candidate]:
        for prefix, d, img, cap in prepared:
            for i, row in enumerate(d):
                c = _row_candidate(i, prefix, row, img, cap, kream, skips)
                if c is not None:
                    yield c

    return Source(kind, location, gen(), total=total, skips=skips)


def read_hf_saved(path: Path, image_column: str | None = None, caption_column: str | None = None,
                  kream: bool = False) -> Source:
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{path}: not a readable save_to_disk dataset ({type(exc).__name__}: {exc})") from None
    return _from_hf_dataset(ds, str(path), "hf", image_column, caption_column, kream)


def read_parquet(path: Path, image_column: str | None = None, caption_column: str | None = None,
                 kream: bool = False) -> Source:
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.parquet") if not p.is_symlink())
    if not files:
        raise SourceError(f"{path}: no .parquet files")
    skips: list[Skip] = []
    opened = []
    total = 0
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except Exception as exc:  # noqa: BLE001
            skips.append(Skip(f.name, f"not a readable parquet file ({exc})"))
            continue
        cols = pf.schema_arrow.names
        img, cap = _pick_columns(cols, image_column, caption_column, f.name)
        opened.append((f, pf, img, cap))
        total += pf.metadata.num_rows

    def gen() -> Iterator[Candidate]:
        for f, pf, img, cap in opened:
            prefix = f"{f.relative_to(path) if path.is_dir() else f.name}:"
            i = 0
            for batch in pf.iter_batches(batch_size=256):
                for row in batch.to_pylist():
                    c = _row_candidate(i, prefix, row, img, cap, kream, skips)
                    i += 1
                    if c is not None:
                        yield c

    return Source("hf", str(path), gen(), total=total, skips=skips)


def read_hub(name: str, split: str | None = None, image_column: str | None = None,
             caption_column: str | None = None, kream: bool = False) -> Source:
    """A dataset on the Hugging Face hub by name: from the hub or its local cache, else one clear error."""
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE",
                                                                                 "HF_DATASETS_OFFLINE"))
    try:
        from datasets import load_dataset

        ds = load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - any failure to get it is the same advice
        why = "offline mode is on (HF_HUB_OFFLINE)" if offline else f"{type(exc).__name__}: {str(exc)[:200]}"
        raise SourceError(
            f"Hugging Face dataset {name!r} is not available here ({why}) and is not in the local cache. "
            f"Where the hub is reachable run: python -c \"import datasets; datasets.load_dataset('{name}')"
            f".save_to_disk('{name.split('/')[-1]}')\", copy that folder here and import the folder."
        ) from None
    return _from_hf_dataset(ds, f"hf://{name}", "hub", image_column, caption_column, kream)
