"""Atomic file writes, the one way the workbench writes a file a reader may open meanwhile: the data goes to a
temporary file beside the target and is renamed into place, so a crash or a concurrent reader never sees half a file.

    write_bytes_atomic(path, data); write_text_atomic(path, text); write_json_atomic(path, {"step": 3})
    write_atomic(path, lambda f: image.save(f, format="PNG"))   # a writer that streams into an open file

A write that finds the disk full (or over its quota or file-size limit) raises ``DiskFull``, an OSError whose message
says so and names the file: the temporary file is removed and the target is untouched, as with any failed write.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(OSError):
    """No space left (or quota / file-size limit reached) while writing ``filename``; ``str()`` says which file and
    how much space is free on its file system."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full(exc: OSError, path: str | Path) -> DiskFull:
    """``exc`` (ENOSPC, EDQUOT or EFBIG) as a DiskFull naming ``path`` and the free space where it was written."""
    path = Path(path)
    try:
        free = f"{shutil.disk_usage(path.parent if not path.is_dir() else path).free:,} bytes free there"
    except OSError:
        free = "free space unknown"
    why = {errno.EDQUOT: "over the disk quota", errno.EFBIG: "over the file-size limit"}.get(exc.errno, "no space left")
    return DiskFull(exc.errno, f"disk full: {why} writing {path} ({free}); free some space and run it again", str(path))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (created with its folders) and rename it into place."""
    return write_atomic(path, lambda f: f.write(data))


def write_atomic(path: str | Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer`` with a binary file open on a temporary file beside ``path`` (created with its folders), then
    rename it into place; if ``writer`` raises, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(exc, path) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise disk_full(exc, path) from exc
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """JSON, indented one space per level (readable in a diff), values json cannot encode written with ``str``."""
    return write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")
