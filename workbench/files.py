"""Atomic file writes, the one way the workbench writes a file a reader may open meanwhile: the data goes to a
temporary file beside the target and is renamed into place, so a crash or a concurrent reader never sees half a file.

    write_bytes_atomic(path, data); write_text_atomic(path, text); write_json_atomic(path, {"step": 3})
    write_atomic(path, lambda f: image.save(f, format="PNG"))   # a writer that streams into an open file
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (created with its folders) and rename it into place."""
    return write_atomic(path, lambda f: f.write(data))


def write_atomic(path: str | Path, writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer`` with a binary file open on a temporary file beside ``path`` (created with its folders), then
    rename it into place; if ``writer`` raises, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """JSON, indented one space per level (readable in a diff), values json cannot encode written with ``str``."""
    return write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")
