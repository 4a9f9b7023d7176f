"""Export approved images of a brand and/or batch (campaign) as one zip for a DAM or an e-commerce upload.

The zip holds ``images/<id>_<file>.png`` (for a spin video: its poster, and its MP4, GIF and JSON sidecar under
``videos/``, named in the record's ``video``) and ``metadata.csv`` + ``metadata.json`` with one record per image:
prompt, negative prompt, prompt version, seed, model, VAE, LoRAs and scales, quantization, sampler settings, CLIP score
and gate, OCR result, approver and approval time, comment and tags, and the image's sha256 (CSV cells that a
spreadsheet would run as a formula are escaped: ``workbench.csvsafe``). It is written to a temporary
name and renamed into ``<workspace>/exports/``, and the export is audited (who, which images, the zip's sha256).
The audit row is the commit: the zip and its feed are renamed into place inside its transaction, so a process killed
at any point leaves a whole, audited export or none (the next export removes what a killed one left; issue #23).

Next to the zip, a product feed (``<zip name>_products.csv`` and ``.json``, each written atomically) lists one row per
(approved image, product it shows): the SKU it was generated for and the catalog products retrieval found in it
(``workbench.products``: source ``generated_for`` | ``retrieved``), with the image's file name inside the zip, the
product URL, price and currency as stored, and an alt text from the prompt (at most 125 characters, the length screen
readers and shop platforms advise), so an e-commerce team can attach the approved images to product pages.

    result = export_approved("ana", brand="northwind", batch="ss26")
    result.path, result.count, result.feed_csv, result.feed_json
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.auth import Actor, require
from workbench.csvsafe import csv_text
from workbench.db import AuditLog, audit, session_scope, utcnow
from workbench.files import disk_full, is_disk_full
from workbench.generate.video import video_for
from workbench.jobs import pid_alive
from workbench.products.links import products_of_generation
from workbench.review.queue import QueueItem, ReviewError, _generation_table, _items, _live
from workbench.settings import get_settings

CSV_FIELDS = [
    "generation_id", "file", "sha256", "brand", "batch", "prompt", "negative_prompt", "prompt_id", "seed", "model",
    "vae", "loras", "lora_scales", "quantization", "scheduler", "steps", "guidance", "width", "height", "clip_score",
    "clip_threshold", "gate", "ocr_passed", "ocr_detail", "approver", "approved_at", "comment", "tags", "demo_model",
    "replaces_id",
]
FEED_FIELDS = ["generation_id", "image_file", "sku", "name", "product_url", "price", "currency", "alt_text", "source",
               "score"]
ALT_TEXT_MAX = 125


@dataclass(frozen=True)
class ExportResult:
    path: Path
    count: int
    generation_ids: list[int]
    sha256: str
    records: list[dict[str, Any]]
    feed_csv: Path | None = None  # the product feed beside the zip: one row per (image, product)
    feed_json: Path | None = None
    feed: list[dict[str, Any]] | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_for(item: QueueItem, file: str, sha256: str) -> dict[str, Any]:
    d = item.last_decision
    return {
        "generation_id": item.generation_id, "file": file, "sha256": sha256, "brand": item.brand, "batch": item.batch,
        "prompt": item.prompt, "negative_prompt": item.negative_prompt, "prompt_id": item.prompt_id,
        "seed": item.seed, "model": item.model, "vae": item.vae,
        "loras": [{"name": l.get("name", ""), "path": l.get("path", ""), "scale": l.get("scale")} for l in item.loras],
        "lora_scales": {(l.get("name") or l.get("path", "")): l.get("scale") for l in item.loras},
        "quantization": item.quantization, "scheduler": item.scheduler, "steps": item.steps,
        "guidance": item.guidance, "width": item.width, "height": item.height, "clip_score": item.clip_score,
        "clip_threshold": item.gate.clip_threshold, "gate": item.gate.state, "ocr_passed": item.gate.ocr_passed,
        "ocr_detail": item.gate.ocr_detail, "approver": d.reviewer if d else "",
        "approved_at": d.created_at.isoformat(timespec="seconds") if d else "", "comment": d.comment if d else "",
        "tags": list(d.tags) if d else [], "demo_model": item.demo_model, "replaces_id": item.replaces_id,
    }


def alt_text(prompt: str, limit: int = ALT_TEXT_MAX) -> str:
    """The prompt as alt text: whitespace collapsed, cut at a word boundary to at most ``limit`` characters."""
    text = " ".join((prompt or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"


def feed_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (exported image, product it shows), in the export's image order; generated-for products first."""
    rows = []
    for r in records:
        for link in products_of_generation(r["generation_id"]):
            rows.append({"generation_id": r["generation_id"], "image_file": r["file"], "sku": link.sku,
                         "name": link.name, "product_url": link.url,
                         "price": None if link.price is None else f"{link.price:f}", "currency": link.currency,
                         "alt_text": alt_text(r["prompt"]), "source": link.source,
                         "score": None if link.score is None else round(link.score, 4)})
    return rows


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


TMP_PREFIX = ".export-"  # temporary files of an export in progress: .export-<pid>-<random>.*


def _undo_dead_exports(out_dir: Path) -> None:
    """Remove what exports whose process died (SIGKILL, power cut) left in ``out_dir``: their temporary files, and
    the files they had renamed into place when no audit row records the export (the commit never happened)."""
    for path in sorted(out_dir.glob(f"{TMP_PREFIX}*")):
        try:
            pid = int(path.name[len(TMP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        if path.name.endswith(".pending.json"):
            try:
                pending = json.loads(path.read_text())
            except (OSError, ValueError):
                pending = {}
            if pending.get("zip"):
                with session_scope() as s:
                    done = s.scalar(select(AuditLog.id).where(AuditLog.action == "review.export",
                                                              AuditLog.entity_id == pending["zip"]).limit(1))
                if done is None:
                    for name in pending.get("files", []):
                        (out_dir / Path(name).name).unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def export_approved(actor: Actor, brand: str | None = None, batch: str | None = None,
                    out_dir: Path | None = None) -> ExportResult:
    """Zip every approved image of the brand / batch. Raises ReviewError when none is approved or a file is gone."""
    if not brand and not batch:
        raise ReviewError("brand / batch: name at least one, so an export is one campaign, not the whole workspace")
    Generation = _generation_table()
    with session_scope() as s:
        who = require(actor, "export", s)
        q = select(Generation).where(Generation.kept.is_(True), Generation.review_status == "approved",
                                     _live(Generation))
        if brand:
            q = q.where(Generation.brand == brand)
        if batch:
            q = q.where(Generation.batch == batch)
        items = _items(s, list(s.scalars(q.order_by(Generation.id))))
    what = " / ".join(f"{k} {v!r}" for k, v in (("brand", brand), ("batch", batch)) if v)
    if not items:
        raise ReviewError(f"no approved images for {what}")
    missing = [f"{i.generation_id}: {i.image_path}" for i in items if not Path(i.image_path).is_file()]
    if missing:
        raise ReviewError(f"image files are missing for {len(missing)} approved image(s): {'; '.join(missing[:5])}")

    out_dir = Path(out_dir) if out_dir else get_settings().path("exports")
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(v for v in (brand, batch) if v)).strip("-") or "export"
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    final = out_dir / f"{slug}_{stamp}.zip"
    n = 1
    while final.exists():
        n += 1
        final = out_dir / f"{slug}_{stamp}_{n}.zip"

    _undo_dead_exports(out_dir)
    records = []
    prefix = f"{TMP_PREFIX}{os.getpid()}-"
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".zip.tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    feed_csv, feed_json = final.with_name(f"{final.stem}_products.csv"), final.with_name(f"{final.stem}_products.json")
    staged = {feed_csv: tmp.with_suffix(".csv.tmp"), feed_json: tmp.with_suffix(".json.tmp"), final: tmp}
    pending = tmp.with_suffix(".pending.json")
    placed: list[Path] = []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for item in items:
                src = Path(item.image_path)
                file = f"images/{item.generation_id}_{src.name}"
                zf.write(src, file, compress_type=zipfile.ZIP_STORED)  # PNGs are compressed already
                records.append(record_for(item, file, _sha256(src)))
                video = video_for(item.generation_id)  # a spin video: its poster above, its files beside it
                if video is not None:
                    records[-1]["video"] = {}
                    for kind, path in (("mp4", video.mp4_path), ("gif", video.gif_path),
                                       ("sidecar", video.sidecar_path)):
                        if path and Path(path).is_file():
                            name = f"videos/{item.generation_id}_{Path(path).name}"
                            zf.write(path, name, compress_type=zipfile.ZIP_STORED)
                            records[-1]["video"][kind] = name
            zf.writestr("metadata.csv", csv_text(CSV_FIELDS, ({k: _csv_value(r[k]) for k in CSV_FIELDS}
                                                             for r in records)))
            zf.writestr("metadata.json", json.dumps(
                {"exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "exported_by": who.username, "brand": brand, "batch": batch, "images": records},
                indent=2, sort_keys=True))
        digest = _sha256(tmp)
        feed = feed_rows(records)
        # Temporary names already: written in place (their own temporary files would escape the clean-up)
        staged[feed_csv].write_text(csv_text(FEED_FIELDS, ({k: _csv_value(r[k]) for k in FEED_FIELDS} for r in feed)),
                                    encoding="utf-8", newline="")
        staged[feed_json].write_text(json.dumps({"zip": final.name, "brand": brand, "batch": batch, "products": feed},
                                                indent=1, default=str) + "\n", encoding="utf-8")
        # The audit row is the commit: the files are renamed into place inside its transaction, after a note of
        # their names that lets the next export remove them should this process die before the commit.
        pending.write_text(json.dumps({"zip": final.name, "files": [p.name for p in staged]}), encoding="utf-8")
        ids = [i.generation_id for i in items]
        with session_scope() as s:
            audit(s, who.username, "review.export", "export", final.name,
                  after={"path": str(final), "brand": brand, "batch": batch, "count": len(ids),
                         "generation_ids": ids, "sha256": digest, "product_feed": [feed_csv.name, feed_json.name],
                         "feed_rows": len(feed)})
            for target, source in staged.items():  # the zip last: a zip that is there has its feed
                os.replace(source, target)
                placed.append(target)
    except BaseException as exc:
        for path in [*staged.values(), *placed]:
            path.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise ReviewError(f"{disk_full(exc, final)}; nothing was exported") from exc
        raise
    finally:
        pending.unlink(missing_ok=True)
    return ExportResult(final, len(ids), ids, digest, records, feed_csv, feed_json, feed)
