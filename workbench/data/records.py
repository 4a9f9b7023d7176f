"""Record readers for the text files of a source (``metadata.jsonl``, ``metadata.csv``, attribute CSVs), robust to
what careless exports contain: each bad record is a ``(line, reason)`` and the reading goes on.

CSV: one unterminated quote makes a csv parser read every following line into one field (issue #17: the rows after
it became one caption and their photos were dropped silently). ``csv_records`` reads record by record and checks
each one that spans several physical lines: when a continuation line looks like a whole row (at least as many
fields as the header), the quote was never closed; that line is reported and reading restarts on the next line, so
the rows after it are read as themselves. A quoted field with a real line break (and no row-like line in it) is
kept. A field over the csv module's size limit is reported the same way.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any


class _Lines:
    """The lines as an iterator whose position can be moved back (to re-read after a bad record)."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _row_like(line: str, width: int) -> bool:
    try:
        return len(next(csv.reader([line]), [])) >= max(width, 2)
    except csv.Error:
        return False


def csv_records(lines: list[str], width: int | None = None) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields, "") for each record of ``lines`` (text lines without their line ends), or
    (line number, None, reason) for a record that cannot be used. ``width`` is the header's number of fields (None:
    the first record is the header and sets it)."""
    src = _Lines(lines)
    reader = csv.reader(src)
    while True:
        start = src.pos
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start + 1, None, f"cannot be read as CSV ({exc}); the line was skipped"
            src.pos = start + 1
            continue
        if width is None:
            width = len(fields)
        span = src.pos - start
        if span > 1 and any(_row_like(x, width) for x in lines[start + 1:src.pos]):
            yield start + 1, None, (f"a quote opened on this line is never closed, so lines {start + 1}-{src.pos} "
                                    "read as one record; this line was skipped and the lines after it read on "
                                    "their own. Close or remove the quote")
            src.pos = start + 1
            continue
        yield start + 1, fields, ""


def jsonl_record(line: str) -> tuple[Any, str]:
    """(value, "") for one JSON line, or (None, reason): invalid JSON, or nesting deep enough to exhaust the
    parser's recursion."""
    try:
        return json.loads(line), ""
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "not usable JSON (nested too deeply)"
