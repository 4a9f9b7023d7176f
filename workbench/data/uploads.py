"""Files uploaded through the Datasets page (zips to import), kept only while their import runs.

    path = save_upload(upload, upload.name)   # workspace/uploads/<random>.zip; the client's name is never a path
    try:
        import_dataset(path, ...)
    finally:
        discard_upload(path)

Each upload gets a server-chosen unique name, so two users uploading ``photos.zip`` at once do not overwrite each
other; an upload left behind by a killed server is removed at the next upload once it is a day old.
"""
from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from workbench.files import write_atomic
from workbench.settings import Settings, get_settings

ALLOWED_SUFFIXES = (".zip",)
STALE_SECONDS = 24 * 3600


def uploads_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).path("uploads")


def clean_stale_uploads(settings: Settings | None = None, max_age: float = STALE_SECONDS) -> int:
    """Remove uploads older than ``max_age`` seconds (an import cannot take that long). Returns how many."""
    folder = uploads_dir(settings)
    if not folder.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - max_age
    for p in folder.iterdir():
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink() and p.stat().st_mtime < cutoff:
                p.unlink()
                removed += 1
    return removed


def save_upload(stream: BinaryIO, client_name: str, settings: Settings | None = None) -> Path:
    """Store an uploaded file under a unique server-chosen name and return its path. ``client_name`` only gives the
    suffix (``.zip``); anything else in it (folders, ``..``) is ignored. Stale uploads are cleaned up first."""
    suffix = Path(client_name or "").suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise ValueError(f"uploads must be one of {', '.join(ALLOWED_SUFFIXES)}, not {client_name!r}")
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_uploads(settings)
    dest = folder / f"{uuid.uuid4().hex}{suffix}"
    return write_atomic(dest, lambda out: shutil.copyfileobj(stream, out, 1 << 20))  # streamed, never whole in memory


def discard_upload(path: Path, settings: Settings | None = None) -> None:
    """Delete an upload once its import has finished (success or failure); only files under the uploads folder."""
    path = Path(path)
    if path.resolve().parent == uploads_dir(settings).resolve():
        path.unlink(missing_ok=True)
