"""Property-based tests (hypothesis) over the readers of user-supplied text: the attribute CSV, an imagefolder's
metadata.jsonl / metadata.csv, and the YAML loader behind templates and brand profiles.

For any input the reader either returns (with what it could not read reported as skips or problems) or raises its own
clear error (SourceError, PromptError), within a bounded time and memory. No other exception, no hang, no blow-up.
Generated inputs mix free text with the shapes that broke these readers before: stray quotes that swallow rows,
overlong fields, invalid UTF-8, YAML anchors and aliases nested into "billion laughs" bombs.
"""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.data import sources
from workbench.data.captions import TemplateError
from workbench.data.sources import SourceError
from workbench.prompts.yamlio import PromptError, read_yaml

# Each example may use this much CPU time and allocate at most this much while it runs (generous: the point is that
# nothing grows with the input's nesting, as an alias bomb's expansion does). CPU time, not wall time: a loaded
# machine slows a test down without the reader doing more work. This thread's CPU time, not the process's: a test
# process may hold other threads whose CPU time is not the reader's.
SECONDS = 3.0
PEAK_BYTES = 64 * 2**20
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _bounded(call):
    """Run ``call`` and return its result; fail when it uses more than SECONDS of CPU time or allocates more than
    PEAK_BYTES."""
    tracemalloc.start()
    started = time.thread_time()
    try:
        return call()
    finally:
        elapsed = time.thread_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < SECONDS, f"took {elapsed:.1f} s of CPU time"
        assert peak < PEAK_BYTES, f"allocated {peak / 2**20:.0f} MiB"


# -- building blocks ------------------------------------------------------------------------------------------------

cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(['"', '""', '"a,b"', 'x"y', "\n", "\r\n", ",", "=HYPERLINK(\"http://evil.example\")", "None",
                     "../../etc/passwd", "/etc/passwd", "a" * 5000, "\x00", "\ufeff"]),
)
csv_text = st.lists(st.lists(cell, min_size=1, max_size=6), min_size=0, max_size=12).map(
    lambda rows: "\n".join(",".join(r) for r in rows))
header = st.sampled_from(["id,productDisplayName,baseColour", "file_name,text", "id,articleType", "image,caption",
                          "id,id", ""])


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """Three small product photos, named like Kaggle's (1.jpg ...) and by file name."""
    folder = tmp_path_factory.mktemp("images")
    for n, colour in enumerate(("red", "navy", "white"), 1):
        Image.new("RGB", (16, 16), colour).save(folder / f"{n}.jpg")
    return folder


def _drain(src: sources.Source) -> list[sources.Candidate]:
    try:
        return list(src.candidates)
    finally:
        src.close()


def _check_candidates(found: list[sources.Candidate]) -> None:
    limit = getattr(sources, "MAX_CAPTION_CHARS", None)
    for c in found:
        assert isinstance(c.caption, str)
        assert "\n" not in c.caption, f"caption {c.caption[:80]!r} holds a line break (rows swallowed?)"
        if limit:
            assert len(c.caption) <= limit, f"caption of {len(c.caption)} characters"


# -- properties -----------------------------------------------------------------------------------------------------

@PROPERTY
@given(head=header, body=csv_text, raw=st.binary(max_size=200))
def test_attribute_csv_reader_never_crashes(tmp_path_factory, image_dir, head, body, raw):
    folder = tmp_path_factory.mktemp("csv")
    images = folder / "images"
    images.mkdir()
    for p in image_dir.iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    path = folder / "styles.csv"
    path.write_bytes((head + "\n" + body).encode("utf-8", "surrogatepass") + raw)

    def read():
        try:
            return _drain(sources.read_csv(path))
        except (SourceError, TemplateError):  # the clear errors: a bad header, a template naming a missing column
            return []

    _check_candidates(_bounded(read))


@PROPERTY
@given(lines=st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda name, text: f'{{"file_name": {name}, "text": {text}}}',
              st.sampled_from(['"1.jpg"', '"2.jpg"', '"../1.jpg"', '"/etc/passwd"', "1", "null", '"nope.jpg"']),
              st.sampled_from(['"a red shirt"', "null", "[1,2]", '"' + "x" * 3000 + '"', '"line\\nbreak"'])),
    st.sampled_from(["[]", "{}", "{", '{"file_name": "1.jpg"', "\ufeff{}", "null"])), max_size=10),
       as_csv=st.booleans())
def test_metadata_reader_never_crashes(tmp_path_factory, image_dir, lines, as_csv):
    folder = tmp_path_factory.mktemp("imagefolder")
    for p in image_dir.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    if as_csv:
        (folder / "metadata.csv").write_text("file_name,text\n" + "\n".join(lines), encoding="utf-8",
                                             errors="surrogatepass")
    else:
        (folder / "metadata.jsonl").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")

    def read():
        try:
            return _drain(sources.read_imagefolder(folder))
        except SourceError:
            return []

    _check_candidates(_bounded(read))


def _alias_bomb(depth: int, width: int) -> str:
    """The "billion laughs" shape: each level is a list of ``width`` aliases of the level below."""
    rows = ['a0: &a0 ["lol"]']
    for level in range(1, depth + 1):
        rows.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(rows) + "\n"


yaml_text = st.one_of(
    st.text(max_size=200),
    st.builds(_alias_bomb, st.integers(1, 12), st.integers(2, 10)),
    st.sampled_from(["name: x\nname: y\n", "a: &x 1\nb: *x\n", "!!python/object/apply:os.system ['id']",
                     "- " * 500 + "x", "[" * 2000, "{a: " * 500, "text: |\n  " + "long line " * 2000]),
)


@PROPERTY
@given(text=yaml_text)
def test_yaml_loader_never_crashes_or_explodes(text):
    def load():
        try:
            return read_yaml(text, "hostile.yaml")
        except PromptError:
            return None

    _bounded(load)
