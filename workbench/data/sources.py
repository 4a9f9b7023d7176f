"""Readers for every kind of source a brand team brings, behind ``open_source(source)`` (used by ``importer``).

Each reader yields ``Candidate`` records (an image file or its bytes, with caption and attributes) and collects a
``Skip`` (where + reason) for every line, row or file it cannot use. Nothing is decoded here: image checks happen in
``images.ingest_one``.

Kinds (``detect_kind``):

* ``imagefolder``: a folder with ``metadata.jsonl`` (or ``metadata.csv``) holding ``file_name`` and a caption column
  (``text``, ``caption`` or ``prompt``, or the one named); other columns become attributes. Images of the folder that
  no metadata line names are imported without a caption (flagged ``no_caption``), not dropped.
* ``kohya``: images with a ``<stem>.txt`` (or ``.caption``) caption beside each; a plain folder of images is the same
  reader with no captions. An image in a sub-folder gets attribute ``folder`` (and ``sku`` from a ``sku.txt`` there):
  a folder per product, see ``workbench.products.importing``.
* ``csv``: an attribute table such as Kaggle's ``styles.csv``; the image of row ``id`` is ``images/<id>.<ext>`` (or
  ``<id>.<ext>``) beside the CSV, or the file in an ``image``/``file_name`` column. Captions come from a template
  (``captions.render_template``). A row with more fields than the header gets the extras joined into the last
  column (Kaggle's unquoted commas in ``productDisplayName``); a row with fewer is skipped.
* ``hf``: a Hugging Face dataset saved with ``save_to_disk`` or as parquet file(s); ``hub`` the same by name
  (``org/name`` or ``hf://org/name``), which needs the hub or its cache and otherwise fails with one clear error
  (the readers are in ``hf_sources.py``; the record types in ``candidates.py``).
  KREAM-style text ("category, product name, caption") is split when ``kream`` is on (auto: the name says kream).
* ``zip``: extracted safely (``archive.extract_zip``: only the files these readers read, no absolute paths, no
  ``..``, no symlinks, size and ratio limits) into a temporary folder, then read as one of the kinds above.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.data.archive import ZipRefused, extract_zip, safe_relpath
# The record types live in candidates.py (hf_sources.py reads them too); importers keep importing them from here.
from workbench.data.candidates import (  # noqa: F401
    CAPTION_COLUMNS, CATEGORY_KEYS, COLOUR_KEYS, Candidate, Skip, Source, SourceError, _caption_column, _kream_fields,
    _unusable_file, derive_columns)
from workbench.data.captions import DEFAULT_TEMPLATE, check_template, render_template
from workbench.data.hf_sources import read_hf_saved, read_hub, read_parquet
from workbench.data.images import IMAGE_EXTENSIONS, is_image_name
from workbench.data.records import csv_records, jsonl_record

# -- text decoding -------------------------------------------------------------------------------------------------

def decode_text(data: bytes, where: str) -> tuple[list[str | None], list[Skip]]:
    """Lines of a text file. UTF-8 (with or without BOM) or UTF-16 with BOM; a line that is not valid UTF-8 comes
    back as None with a Skip naming its line number, instead of being guessed at."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").splitlines(), []
        except UnicodeDecodeError as exc:
            return [], [Skip(where, f"not valid UTF-16 ({exc.reason} at byte {exc.start})")]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8").splitlines(), []
    except UnicodeDecodeError:
        pass
    lines: list[str | None] = []
    skips = []
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            lines.append(None)
            skips.append(Skip(f"{where} line {n}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                                   f"{exc.start + 1}); save the file as UTF-8"))
    return lines, skips


def _walk_images(root: Path, skips: list[Skip], with_text: bool = False) -> list[Path]:
    """Image files under root, sorted, without following symlinks (each symlink is a Skip)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in list(dirnames):
            if (d / name).is_symlink():
                skips.append(Skip(str((d / name).relative_to(root)), "symlink (not followed)"))
                dirnames.remove(name)
            elif name.startswith(".") or name == "__MACOSX":
                dirnames.remove(name)
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = d / name
            if is_image_name(name):
                if p.is_symlink():
                    skips.append(Skip(str(p.relative_to(root)), "symlink (not followed)"))
                else:
                    found.append(p)
    return found


# -- imagefolder -----------------------------------------------------------------------------------------------------

def read_imagefolder(root: Path, caption_column: str | None = None, kream: bool = False) -> Source:
    skips: list[Skip] = []
    metas = sorted(p for p in root.rglob("metadata.jsonl") if not p.is_symlink()) + \
        sorted(p for p in root.rglob("metadata.csv") if not p.is_symlink())
    rows: dict[Path, tuple[str, dict[str, Any]]] = {}
    for meta in metas:
        rel_meta = str(meta.relative_to(root))
        lines, bad = decode_text(meta.read_bytes(), rel_meta)
        skips.extend(bad)
        records: list[tuple[int, Any]] = []
        if meta.suffix == ".jsonl":
            for n, line in enumerate(lines, 1):
                if line is None or not line.strip():
                    continue
                value, why = jsonl_record(line)
                if why:
                    skips.append(Skip(f"{rel_meta} line {n}", why))
                else:
                    records.append((n, value))
        else:
            header = None
            for n, fields, why in csv_records([x if x is not None else "" for x in lines]):
                if why:
                    skips.append(Skip(f"{rel_meta} line {n}", why))
                elif header is None:
                    header = [h.strip().lstrip("\ufeff") for h in fields]
                elif any(f.strip() for f in fields):
                    if len(fields) != len(header):
                        skips.append(Skip(f"{rel_meta} line {n}", "wrong number of fields"))
                    else:
                        records.append((n, dict(zip(header, fields))))
        columns = sorted({k for _, r in records if isinstance(r, dict) for k in r})
        cap_col = _caption_column(columns, caption_column, rel_meta) if records else None
        for n, rec in records:
            where = f"{rel_meta} line {n}"
            if not isinstance(rec, dict):
                skips.append(Skip(where, f"expected a JSON object, got {type(rec).__name__}"))
                continue
            name = rec.get("file_name")
            if not isinstance(name, str) or not name:
                skips.append(Skip(where, "no file_name"))
                continue
            rel = safe_relpath(name)
            if rel is None:
                skips.append(Skip(where, f"file_name {name!r} is not a relative path inside the folder"))
                continue
            path = meta.parent / rel
            problem = _unusable_file(path, f"file {name!r}", root)
            if problem:
                skips.append(Skip(where, problem))
                continue
            if path in rows:
                skips.append(Skip(where, f"file {name!r} is already described by an earlier line"))
                continue
            attrs = {k: v for k, v in rec.items() if k not in ("file_name", cap_col)}
            caption = rec.get(cap_col, "") if cap_col else ""
            caption = "" if caption is None else str(caption)
            if kream:
                caption = _kream_fields(caption, attrs)
            rows[path] = (caption, attrs)
    images = _walk_images(root, skips)

    def gen() -> Iterator[Candidate]:
        for p in images:
            caption, attrs = rows.get(p, ("", {}))
            yield Candidate(key=str(p.relative_to(root)), path=p, caption=" ".join(caption.split()),
                            caption_source="source" if caption.strip() else "", attributes=attrs)

    src = Source("imagefolder", str(root), gen(), total=len(images), skips=skips)
    unlisted = sum(1 for p in images if p not in rows)
    if unlisted:
        src.notes.append(f"{unlisted} image(s) not named in the metadata were imported without a caption")
    return src


# -- kohya ---------------------------------------------------------------------------------------------------------

def read_kohya(root: Path) -> Source:
    skips: list[Skip] = []
    images = _walk_images(root, skips)
    kind = "kohya" if any(p.with_suffix(".txt").exists() or p.with_suffix(".caption").exists() for p in images) \
        else "folder"

    def gen() -> Iterator[Candidate]:
        for p in images:
            rel = str(p.relative_to(root))
            caption = ""
            for suffix in (".txt", ".caption"):
                cap = p.with_suffix(suffix)
                if cap.exists():
                    if cap.is_symlink():
                        skips.append(Skip(rel, f"caption file {cap.name} is a symlink (not followed)"))
                        caption = None
                        break
                    lines, bad = decode_text(cap.read_bytes(), str(cap.relative_to(root)))
                    if bad:
                        skips.append(Skip(rel, f"caption file {cap.name} is not UTF-8 text ({bad[0].reason})"))
                        caption = None
                    else:
                        caption = " ".join(" ".join(x for x in lines if x).split())
                    break
            if caption is None:
                continue
            attrs = {"folder": str(p.parent.relative_to(root))} if p.parent != root else {}
            sku = _sku_file(p.parent) if p.parent != root else ""
            if sku:  # a folder per product names its SKU (workbench.products.importing)
                attrs["sku"] = sku
            yield Candidate(key=rel, path=p, caption=caption, caption_source="source" if caption else "",
                            attributes=attrs)

    return Source(kind, str(root), gen(), total=len(images), skips=skips)


def _sku_file(folder: Path) -> str:
    """The first line of ``folder/sku.txt`` (a product's SKU in a folder-per-product layout), or ""."""
    path = folder / "sku.txt"
    if path.is_symlink() or not path.is_file():
        return ""
    with path.open("rb") as f:
        head = f.read(200)
    lines = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    return lines[0].strip()[:100] if lines else ""


# -- attribute CSV -----------------------------------------------------------------------------------------------

def read_csv(csv_path: Path, template: str = DEFAULT_TEMPLATE, images_dir: Path | None = None) -> Source:
    skips: list[Skip] = []
    name = csv_path.name
    lines, bad = decode_text(csv_path.read_bytes(), name)
    skips.extend(bad)
    bad_lines = {int(s.where.rsplit(" ", 1)[1]) for s in bad if " line " in s.where}
    reader = csv_records([x if x is not None else "" for x in lines])
    first = next(reader, None)
    if first is None:
        raise SourceError(f"{name} is empty")
    if first[1] is None:
        raise SourceError(f"{name} line {first[0]} (the header): {first[2]}")
    header = [h.strip().lstrip("\ufeff") for h in first[1]]
    if len(set(header)) != len(header):
        raise SourceError(f"{name}: duplicate column names in the header: {header}")
    check_template(template, header)
    file_col = next((c for c in ("file_name", "image", "filename", "path") if c in header), None)
    if file_col is None and "id" not in header:
        raise SourceError(f"{name} needs an 'id' column (images/<id>.jpg) or a file_name/image column; "
                          f"columns: {', '.join(header)}")
    dirs = [images_dir] if images_dir else [csv_path.parent / "images", csv_path.parent]
    index: dict[str, Path] = {}
    for d in dirs:
        if d and d.is_dir():
            for p in sorted(d.iterdir()):
                if is_image_name(p.name):
                    index.setdefault(p.stem, p)
                    index.setdefault(p.name, p)
    rows: list[Candidate] = []
    seen: dict[Path, int] = {}
    for n, fields, why in reader:
        where = f"{name} line {n}"
        if why:
            skips.append(Skip(where, why))
            continue
        if n in bad_lines or not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header):  # unquoted commas in the last column (Kaggle's productDisplayName)
            fields = fields[: len(header) - 1] + [",".join(fields[len(header) - 1:])]
        if len(fields) < len(header):
            skips.append(Skip(where, f"{len(fields)} fields, the header has {len(header)} (missing columns)"))
            continue
        rec = {h: v.strip() for h, v in zip(header, fields)}
        if file_col:
            rel = safe_relpath(rec[file_col])
            if rel is None:
                skips.append(Skip(where, f"{file_col} {rec[file_col]!r} is not a relative path inside the folder"))
                continue
            path = (images_dir or csv_path.parent) / rel
        else:
            key = rec["id"]
            if not key or "/" in key or "\\" in key or key in (".", ".."):
                skips.append(Skip(where, f"id {key!r} cannot name an image file"))
                continue
            path = index.get(key)
            if path is None:
                looked = " or ".join(f"{d.name}/{key}.*" for d in dirs if d)
                skips.append(Skip(where, f"no image for id {key} (looked for {looked})"))
                continue
        problem = _unusable_file(path, f"image {path.name}", images_dir or csv_path.parent)
        if problem:
            skips.append(Skip(where, problem))
            continue
        if path in seen:
            skips.append(Skip(where, f"image {path.name} is already used by line {seen[path]}"))
            continue
        seen[path] = n
        rendered = render_template(template, rec)
        rows.append(Candidate(key=str(path.relative_to(csv_path.parent)) if path.is_relative_to(csv_path.parent)
                              else path.name, path=path, caption=rendered.text, caption_source="template",
                              attributes={k: v for k, v in rec.items() if k != file_col},
                              missing_fields=rendered.missing))
    return Source("csv", str(csv_path), iter(rows), total=len(rows), skips=skips)


# -- zip ----------------------------------------------------------------------------------------------------------

def read_zip(zip_path: Path, staging: Path, **options: Any) -> Source:
    folder = Path(tempfile.mkdtemp(prefix="zip-", dir=staging))
    try:
        skips = [Skip(name, reason) for name, reason in extract_zip(zip_path, folder)]
    except ZipRefused as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise SourceError(str(exc)) from None
    # A zip of one top folder: read that folder.
    entries = [p for p in folder.iterdir() if p.name != "__MACOSX"]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else folder
    src = open_source(root, staging=staging, **options)
    src.location = f"{zip_path} ({src.kind})"
    src.kind = "zip"
    src.skips[:0] = skips
    src.cleanup.append(folder)
    return src


# -- detection and the one entry point -------------------------------------------------------------------------------

HUB_NAME = re.compile(r"^(hf://)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


def detect_kind(source: str | Path) -> str:
    text = str(source)
    path = Path(text).expanduser()
    if not path.exists():
        if text.startswith("hf://") or (HUB_NAME.match(text) and not text.startswith((".", "/"))):
            return "hub"
        raise SourceError(f"{text}: no such file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return "zip"
        if suffix == ".csv":
            return "csv"
        if suffix == ".parquet":
            return "parquet"
        raise SourceError(f"{path.name}: not a folder, .zip, .csv or .parquet file")
    names = {p.name for p in path.iterdir()}
    if "dataset_dict.json" in names or ("state.json" in names and "dataset_info.json" in names):
        return "hf"
    if any(path.rglob("metadata.jsonl")) or any(path.rglob("metadata.csv")):
        return "imagefolder"
    csvs = [p for p in path.iterdir() if p.suffix.lower() == ".csv"]
    if len(csvs) == 1:
        return "csv"
    if any(p.suffix == ".parquet" for p in path.rglob("*.parquet")) and not any(
            p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*")):
        return "parquet"
    return "kohya"


def open_source(source: str | Path, *, template: str = DEFAULT_TEMPLATE, caption_column: str | None = None,
                image_column: str | None = None, kream: bool | None = None, images_dir: str | Path | None = None,
                staging: Path | None = None) -> Source:
    """Open any supported source (see the module docstring). ``kream=None`` turns KREAM parsing on when the source
    name contains "kream"."""
    kind = detect_kind(source)
    if kream is None:
        kream = "kream" in str(source).lower()
    path = Path(str(source)).expanduser()
    if kind == "hub":
        return read_hub(str(source).removeprefix("hf://"), image_column=image_column, caption_column=caption_column,
                        kream=kream)
    if kind == "zip":
        if staging is None:
            raise SourceError("zip import needs a staging folder")
        return read_zip(path, staging, template=template, caption_column=caption_column, image_column=image_column,
                        kream=kream, images_dir=None)
    if kind == "csv":
        csv_path = path if path.is_file() else next(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        return read_csv(csv_path, template, Path(images_dir) if images_dir else None)
    if kind == "hf":
        return read_hf_saved(path, image_column, caption_column, kream)
    if kind == "parquet":
        return read_parquet(path, image_column, caption_column, kream)
    if kind == "imagefolder":
        return read_imagefolder(path, caption_column, kream)
    return read_kohya(path)
