"""Safe zip extraction for imports (``extract_zip``), used by ``sources.read_zip``.

What is refused, and how (issue #17):

* The whole zip (SourceError, nothing extracted) when it has more than ``ZIP_MAX_ENTRIES`` entries, when the
  entries it would extract declare more than ``ZIP_MAX_TOTAL`` bytes, or when they declare more than
  ``ZIP_BOMB_FLOOR`` bytes at an overall ratio beyond ``ZIP_MAX_RATIO`` to the zip's size: many small entries of
  zeros are a bomb even when each passes the per-entry rule.
* One entry (a ``Skip`` with its name and the reason): a path that leaves the target (zip-slip), a symlink, an
  encrypted entry, a file the importer never reads (only photos, caption files and the metadata/table files of the
  readers are extracted), an entry over 10 MiB compressed more than ``ZIP_MAX_RATIO``:1, one whose data does not
  match its header (bad CRC, more bytes than declared), and one that cannot be written (a file and a folder of the
  same name).

Extraction streams each entry with a running byte budget (the declared total), so a header that lies cannot make
it write more than was checked.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from pathlib import Path

from workbench.data.images import is_image_name

ZIP_MAX_ENTRIES = 200_000
ZIP_MAX_TOTAL = 20 * 2**30  # uncompressed bytes
ZIP_MAX_RATIO = 200  # uncompressed/compressed, per entry (above 10 MiB) and for the whole zip (above the floor)
ZIP_BOMB_FLOOR = 64 * 2**20  # below this much declared data the overall ratio is not checked (a zip of captions)
# What the readers of sources.py read: photos, kohya captions, imagefolder metadata, an attribute table, parquet,
# and a saved Hugging Face dataset's files.
READ_SUFFIXES = (".txt", ".caption", ".jsonl", ".csv", ".parquet", ".arrow")
READ_NAMES = ("dataset_dict.json", "state.json", "dataset_info.json")


class ZipRefused(ValueError):
    """The zip as a whole is refused; the message names it and says why (sources raises it as SourceError)."""


def safe_relpath(name: str) -> str | None:
    """A relative POSIX path that stays inside its folder, or None (absolute, '..', backslashes, drive letters)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [x for x in name.split("/") if x not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def is_read_by_importer(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return is_image_name(base) or base.lower().endswith(READ_SUFFIXES) or base in READ_NAMES


def _plan(zf: zipfile.ZipFile, zip_name: str, target: Path,
          skips: list[tuple[str, str]]) -> list[tuple[zipfile.ZipInfo, Path]]:
    """The entries to extract (with their destinations); every other file entry is added to ``skips``."""
    infos = zf.infolist()
    if len(infos) > ZIP_MAX_ENTRIES:
        raise ZipRefused(f"{zip_name}: {len(infos)} entries, more than the limit {ZIP_MAX_ENTRIES}")
    plan = []
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        base = name.rsplit("/", 1)[-1]
        if name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store":
            continue  # macOS Finder's resource forks and folder settings: never photos
        rel = safe_relpath(name)
        dest = (target / rel).resolve() if rel else None
        if stat.S_ISLNK(info.external_attr >> 16):
            reason = "symlink inside the zip (not extracted)"
        elif rel is None or dest is None or not dest.is_relative_to(target):
            reason = "entry path leaves the target folder (zip-slip); not extracted"
        elif info.flag_bits & 0x1:
            reason = "encrypted entry (not extracted)"
        elif not is_read_by_importer(name):
            reason = "not an image or caption file (not extracted)"
        elif info.file_size > 10 * 2**20 and info.compress_size and \
                info.file_size / info.compress_size > ZIP_MAX_RATIO:
            ratio = info.file_size / info.compress_size
            reason = f"compression ratio {ratio:.0f}:1 looks like a zip bomb; not extracted"
        else:
            plan.append((info, dest))
            continue
        skips.append((name, reason))
    return plan


def _check_totals(plan: list[tuple[zipfile.ZipInfo, Path]], zip_name: str, zip_size: int) -> int:
    total = sum(info.file_size for info, _ in plan)
    if total > ZIP_MAX_TOTAL:
        raise ZipRefused(f"{zip_name}: its photos and captions declare {total / 2**30:.1f} GiB uncompressed, more "
                         f"than the limit {ZIP_MAX_TOTAL / 2**30:.0f} GiB; import the folder by its path instead")
    if total > ZIP_BOMB_FLOOR and total / max(zip_size, 1) > ZIP_MAX_RATIO:
        raise ZipRefused(f"{zip_name}: {total / 2**20:.0f} MiB uncompressed from a {zip_size / 2**20:.1f} MiB zip "
                         f"(compression ratio {total / max(zip_size, 1):.0f}:1) looks like a zip bomb; nothing was "
                         "extracted. Photos barely compress: check what the zip holds")
    return total


def extract_zip(zip_path: Path, target: Path) -> list[tuple[str, str]]:
    """Extract the entries an import reads into ``target``; returns (entry name, reason) for every other entry.
    Raises ZipRefused (nothing written) for an unreadable zip or one refused as a whole (module docstring)."""
    skips: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRefused(f"{zip_path.name}: not a readable zip file ({exc})") from None
    target = target.resolve()
    with zf:
        plan = _plan(zf, zip_path.name, target, skips)
        budget = _check_totals(plan, zip_path.name, os.path.getsize(zip_path))
        for info, dest in plan:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(dest, "xb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > info.file_size or written > budget:
                            raise zipfile.BadZipFile(f"holds more than the {info.file_size:,} bytes it declares")
                        out.write(chunk)
                budget -= written
            except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
                skips.append((info.filename, f"cannot extract ({exc})"))
                dest.unlink(missing_ok=True)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                skips.append((info.filename, "another entry of the zip has this path or its folder's (a file and "
                                             "a folder of the same name); not extracted"))
            except OSError as exc:
                skips.append((info.filename, f"cannot write it ({exc.strerror or exc}); not extracted"))
                dest.unlink(missing_ok=True)
    return skips
