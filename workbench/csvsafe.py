"""Every CSV the workbench writes goes through here, so a cell cannot run as a spreadsheet formula.

    text = csv_text(["prompt", "score"], [{"prompt": '=HYPERLINK("http://x")', "score": -1.5}])
    # prompt,score
    # "'=HYPERLINK(""http://x"")",-1.5

A prompt, caption, comment or name that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before
one) is a formula to Excel, LibreOffice and Google Sheets: ``=HYPERLINK(...)`` leaks data when clicked, DDE formulas
run programs. The OWASP remedy is to prefix such a string with a single quote, which spreadsheets show as text. Only
strings are escaped: a real number such as -1.5 stays a number.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` with a ``'`` in front when it is a string a spreadsheet would read as a formula; else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]],
             lineterminator: str = "\r\n") -> str:
    """CSV text with a header: rows are mappings (keys outside ``fieldnames`` are ignored, missing ones empty) or
    sequences in ``fieldnames`` order; every cell through ``safe_cell`` (the header too)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=lineterminator)
    writer.writerow([safe_cell(f) for f in fieldnames])
    for row in rows:
        values = [row.get(f, "") for f in fieldnames] if isinstance(row, Mapping) else list(row)
        writer.writerow([safe_cell(v) for v in values])
    return buf.getvalue()


def write_csv(path: str | Path, fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]],
              lineterminator: str = "\r\n") -> str:
    """Write ``csv_text(...)`` to ``path`` atomically (a temporary file renamed over it); returns the text."""
    from workbench.files import write_bytes_atomic

    text = csv_text(fieldnames, rows, lineterminator)
    write_bytes_atomic(Path(path), text.encode("utf-8"))
    return text
