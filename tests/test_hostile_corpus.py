"""The hostile-input corpus (tests/hostile/), run by one parametrised test: each case builds a hostile input, feeds it
to the workbench's real entry point, and checks it is refused, contained or read safely, with a message that names
what was wrong. Categories: archive bombs and traversal, image modes and decompression bombs, CSV/JSONL quoting,
symlinks out of a source, hostile regexes and captions, YAML alias bombs and tags, markdown/HTML text, spreadsheet
formulas, and pickles planted where the trainer resumes from.

The per-issue tests (test_data_hostile.py, test_prompts_yaml_safety.py, test_hostile_text.py, ...) pin each fix in
detail; this sweep keeps the whole corpus passing through the public entry points as the product grows."""
from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select

from hostile import data as hd
from hostile import text as ht
from hostile import train as htr
from workbench.csvsafe import csv_text, safe_cell
from workbench.data import captions, store
from workbench.data.importer import import_dataset
from workbench.data.sources import SourceError
from workbench.data.tables import Item
from helpers.data import CURATOR, image_bytes, write
from workbench.db import session_scope
from workbench.prompts.yamlio import PromptError, read_yaml
from workbench.settings import get_settings
from workbench.train import checkpoints as ckpts
from workbench.train.config import ConfigError
from workbench.ui.common import plain


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path], None]  # builds the input under the given folder, feeds it, asserts the outcome


def _items(dataset_id: int) -> list[Item]:
    with session_scope() as s:
        return list(s.scalars(select(Item).where(Item.dataset_id == dataset_id)))


def _skips(report) -> dict[str, str]:
    return {s.where: s.reason for s in report.skipped}


def _files_outside_datasets(tmp: Path) -> list[Path]:
    """Files written anywhere but the workspace and the case's own input folder (traversal would land here)."""
    return [p for p in tmp.parent.rglob("*") if p.is_file() and "evil" in p.name and tmp not in p.parents]


# -- archives, images, tables --------------------------------------------------------------------------------------

def zip_bomb(tmp: Path) -> None:
    with pytest.raises(SourceError, match="(ratio|compress)"):
        import_dataset(CURATOR, hd.zip_bomb(tmp / "bomb.zip", entries=20, entry_size=5 * 2**20), name="bomb", workers=1)
    assert not [p for p in get_settings().path("datasets").rglob("*") if p.is_file()]


def zip_traversal(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.zip_traversal(tmp / "slip.zip"), workers=1)
    why = _skips(report)
    assert report.added == 1
    assert all(name in why for name in hd.ZIP_TRAVERSAL_ENTRIES), why
    assert _files_outside_datasets(tmp) == []


def zip_non_media(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.zip_with_non_media(tmp / "mixed.zip"), workers=1)
    assert "not an image or caption file" in _skips(report)["set/run.sh"]


def zip_lying_size(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.zip_lying_size(tmp / "liar.zip"), workers=1)
    assert "liar.png" in _skips(report)


def zip_file_and_folder(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.zip_file_and_folder_same_name(tmp / "clash.zip"), workers=1)
    assert report.skipped, "the clashing entry is reported"


def image_mode(mode: str) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        folder = tmp / "photos"
        folder.mkdir()
        if mode == "I;16":
            hd.png_16bit(folder / "gray16.png")
        elif mode == "I;16-tiff":
            hd.png_16bit(folder / "gray16.tif", fmt="TIFF")
        else:
            hd.image_in_mode(folder / f"odd.{'png' if mode in ('P', 'LA') else 'tif'}", mode)
        report = import_dataset(CURATOR, folder, workers=1)
        assert report.added == 1, _skips(report)
    return run


def decompression_bomb(tmp: Path) -> None:
    folder = tmp / "photos"
    folder.mkdir()
    hd.png_decompression_bomb(folder / "huge.png")
    write(folder / "fine.png", image_bytes((300, 300), pattern=541))
    report = import_dataset(CURATOR, folder, workers=1)
    assert report.added == 1
    assert "huge.png" in _skips(report)


def csv_unterminated_quote(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.csv_unterminated_quote(tmp / "shop"), workers=1)
    assert any("never closed" in reason for reason in _skips(report).values()), _skips(report)
    assert all("\n" not in item.caption and "," not in item.caption.split(" ", 1)[0] for item in
               _items(report.dataset_id))


def jsonl_hostile_lines(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.metadata_jsonl_hostile_lines(tmp / "folder").parent, workers=1)
    assert report.added >= 1
    assert any(where.startswith("metadata.jsonl line") for where in _skips(report))


def csv_symlinked_dir(tmp: Path) -> None:
    outside = tmp / "outside"
    report = import_dataset(CURATOR, hd.csv_symlinked_dir(tmp / "shop", outside), template="{text}", workers=1)
    assert any("outside the source folder" in reason for reason in _skips(report).values()), _skips(report)
    assert [item.source_key for item in _items(report.dataset_id)] == ["own/ok.png"]


def long_caption(tmp: Path) -> None:
    report = import_dataset(CURATOR, hd.long_caption_folder(tmp / "long").parent, workers=1)
    assert max(len(i.caption) for i in _items(report.dataset_id)) <= captions.MAX_CAPTION_CHARS


def catastrophic_regex(tmp: Path) -> None:
    started = time.thread_time()
    with pytest.raises(ValueError, match="took too long"):
        captions.find_replace(hd.EVIL_REGEX_SUBJECT, hd.EVIL_REGEX, "x", regex=True, timeout=0.3)
    assert time.thread_time() - started < 5


def caption_edit_too_long(tmp: Path) -> None:
    folder = tmp / "photos"
    folder.mkdir()
    write(folder / "a.png", image_bytes((300, 300), pattern=542))
    report = import_dataset(CURATOR, folder, workers=1)
    item = _items(report.dataset_id)[0]
    with pytest.raises(store.DatasetError, match="too long"):
        store.set_caption(CURATOR, item.id, "x" * (captions.MAX_CAPTION_CHARS + 1))


# -- YAML -----------------------------------------------------------------------------------------------------------

def yaml_refused(text: str, match: str) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        started = time.thread_time()
        with pytest.raises(PromptError, match=match):
            read_yaml(text, "hostile.yaml")
        # Bounded, not instant: refusing 5,000 open brackets costs ~0.3 s of PyYAML's scanning here (it looks up to
        # 1,024 characters ahead for a key), whatever the size; an alias bomb's expansion would not stop at all.
        assert time.thread_time() - started < 3.0
    return run


def yaml_python_tag(tmp: Path) -> None:
    marker = tmp / "yaml-ran"
    text = f"!!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(PromptError):
        read_yaml(text, "hostile.yaml")
    assert not marker.exists()


# -- text shown to other users, and cells of the CSVs we write -----------------------------------------------------

_COMMONMARK = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_ESCAPE = re.compile(r"\\(.)", re.S)


def markdown_text(text: str) -> Callable[[Path], None]:
    """plain(text), rendered by an independent CommonMark renderer with raw HTML on, yields no link, image or HTML
    element and shows the text as written."""
    def run(tmp: Path) -> None:
        shown = plain(text)
        html = _COMMONMARK.render(shown)
        for tag in ("<a ", "<img", "<script", "<http", "<b>"):
            assert tag not in html, html
        assert "://" not in shown and "www." not in shown  # no bare-URL autolink either (GFM, remark-gfm)
        assert _ESCAPE.sub(r"\1", shown) == text
    return run


def formula_cell(value: str) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        assert safe_cell(value).startswith("'")
        row = next(csv.reader(io.StringIO(csv_text(["prompt", "score"], [{"prompt": value, "score": -1.5}]))
                              .readlines()[1:]))
        assert row == ["'" + value, "-1.5"]
    return run


# -- pickles where the trainer resumes from ------------------------------------------------------------------------
# Each case plants pickles whose unpickling creates a marker file, asks the trainer's checkpoint code to resume, and
# asserts the marker never appears.

def _run_folder(tmp: Path) -> Path:
    run = tmp / "runs" / "7"
    ckpts.checkpoint_root(run).mkdir(parents=True)
    return run


def pickle_outside_the_run(tmp: Path) -> None:
    run, marker = _run_folder(tmp), tmp / "PWNED"
    planted = htr.hostile_checkpoint(tmp / "elsewhere" / "checkpoint-5", marker, step=5)
    with pytest.raises(ConfigError, match="only a checkpoint of this run"):
        ckpts.resolve_checkpoint(str(planted), [run])
    assert not marker.exists()


def pickle_symlinked_into_the_run(tmp: Path) -> None:
    run, marker = _run_folder(tmp), tmp / "PWNED"
    planted = htr.hostile_checkpoint(tmp / "elsewhere" / "checkpoint-5", marker, step=5)
    (ckpts.checkpoint_root(run) / "checkpoint-5").symlink_to(planted, target_is_directory=True)
    assert ckpts.resolve_checkpoint("latest", [run]) is None
    with pytest.raises(ConfigError):
        ckpts.resolve_checkpoint("checkpoint-5", [run])
    assert not marker.exists()


def pickle_old_format_in_the_run(tmp: Path) -> None:
    run, marker = _run_folder(tmp), tmp / "PWNED"
    htr.hostile_checkpoint(ckpts.checkpoint_root(run) / "checkpoint-3", marker, step=3)
    found = ckpts.resolve_checkpoint("latest", [run])
    with pytest.raises(ConfigError, match="earlier workbench version"):
        ckpts.read_trainer_state(found)
    assert not marker.exists()


def _real_checkpoint(run: Path):
    """A checkpoint as the trainer writes it (one step of AdamW on a small parameter, a warm-up schedule)."""
    from types import SimpleNamespace

    import torch
    from diffusers.optimization import get_scheduler

    param = torch.nn.Parameter(torch.ones(4, 4))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = get_scheduler("constant_with_warmup", optimizer=optimizer, num_warmup_steps=2)
    (param ** 2).sum().backward()
    optimizer.step()
    scheduler.step()
    accelerator = SimpleNamespace(is_main_process=True, scaler=None, wait_for_everyone=lambda: None)
    path = ckpts.save_checkpoint(accelerator, run, 1, 0.5, SimpleNamespace(checkpoints_total_limit=None),
                                 optimizer=optimizer, lr_scheduler=scheduler, lora_tensors=dict,
                                 save_lora=lambda folder: None)
    return path, optimizer, scheduler


def pickle_planted_beside_a_real_checkpoint(tmp: Path) -> None:
    run, marker = _run_folder(tmp), tmp / "PWNED"
    path, optimizer, scheduler = _real_checkpoint(run)
    htr.plant_pickles(path, marker)
    state = ckpts.load_checkpoint(ckpts.resolve_checkpoint("latest", [run]), optimizer=optimizer,
                                  lr_scheduler=scheduler, scaler=None, adapted={}, unwrap=lambda m: m)
    assert state["step"] == 1
    assert not marker.exists()


def pickle_swapped_for_a_state_file(tmp: Path) -> None:
    run, marker = _run_folder(tmp), tmp / "PWNED"
    path, optimizer, scheduler = _real_checkpoint(run)
    htr.crafted_pickle(path / "optimizer.safetensors", marker)
    with pytest.raises(ConfigError, match="changed since it was saved"):
        ckpts.load_checkpoint(path, optimizer=optimizer, lr_scheduler=scheduler, scaler=None, adapted={},
                              unwrap=lambda m: m)
    assert not marker.exists()


CASES = [
    Case("zip-bomb-many-small-entries", zip_bomb),
    Case("zip-traversal-and-symlink-entries", zip_traversal),
    Case("zip-non-media-entries", zip_non_media),
    Case("zip-entry-lying-about-its-size", zip_lying_size),
    Case("zip-file-and-folder-same-name", zip_file_and_folder),
    *[Case(f"image-mode-{m}", image_mode(m)) for m in ("I;16", "I;16-tiff", "I;16B", "I", "F", "CMYK", "LA", "P")],
    Case("png-decompression-bomb", decompression_bomb),
    Case("csv-unterminated-quote", csv_unterminated_quote),
    Case("jsonl-hostile-lines", jsonl_hostile_lines),
    Case("csv-symlinked-folder", csv_symlinked_dir),
    Case("caption-50k-characters", long_caption),
    Case("caption-edit-too-long", caption_edit_too_long),
    Case("regex-catastrophic-backtracking", catastrophic_regex),
    Case("yaml-alias-bomb-depth-7", yaml_refused(ht.YAML_BOMBS["aliases-depth-7"], "anchors and aliases")),
    Case("yaml-alias-bomb-depth-9", yaml_refused(ht.YAML_BOMBS["aliases-depth-9"], "anchors and aliases")),
    Case("yaml-merge-key", yaml_refused(ht.YAML_BOMBS["merge-key"], "anchors and aliases")),
    Case("yaml-deep-nesting", yaml_refused(ht.YAML_BOMBS["deep-nesting"], "nest")),
    Case("yaml-over-size-cap", yaml_refused(ht.YAML_BOMBS["huge"], "KiB")),
    Case("yaml-python-tag", yaml_python_tag),
    *[Case(f"markdown-{i}", markdown_text(t)) for i, t in enumerate(ht.HOSTILE_MARKDOWN)],
    *[Case(f"formula-{i}", formula_cell(v)) for i, v in enumerate(ht.FORMULA_CELLS)],
    Case("pickle-checkpoint-outside-the-run", pickle_outside_the_run),
    Case("pickle-checkpoint-symlinked-into-the-run", pickle_symlinked_into_the_run),
    Case("pickle-old-format-checkpoint-in-the-run", pickle_old_format_in_the_run),
    Case("pickle-planted-beside-a-real-checkpoint", pickle_planted_beside_a_real_checkpoint),
    Case("pickle-swapped-for-a-state-file", pickle_swapped_for_a_state_file),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_or_contained(case: Case, tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    inputs.mkdir()
    case.run(inputs)
