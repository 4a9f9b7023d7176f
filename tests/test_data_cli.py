"""`workbench data ...` through typer's runner (the data sub-app; the top-level app mounts it)."""
import json

from typer.testing import CliRunner

from workbench.data.cli import app
from helpers.data import image_bytes, write

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + str(result.exception)
    return result.output


def test_cli_demo_list_show_split_preprocess_caption_export(tmp_path):
    out = run("demo", "--size", "64", "--colours", "2")
    assert "15 added" in out
    assert "demo-aurelo" in run("list")
    shown = run("show", "demo-aurelo", "--flag", "near_duplicate")
    assert "2 matching items" in shown and "duplicate groups: [1, 15]" in shown and "tiny < 256 px" in shown
    assert "stratified by category" in run("split", "demo-aurelo", "--val", "0.5", "--test", "0", "--seed", "1")
    prep = run("preprocess", "1", "--size", "256", "--mode", "pad", "--out", tmp_path / "prep")
    assert "15 images" in prep and "result hash:" in prep
    assert (tmp_path / "prep" / "manifest.json").exists()
    assert "6 captions changed" in run("caption", "1", "--find", "Unisex's", "--replace-with", "unisex")
    assert "item 3: a custom caption" in run("caption", "1", "--item", "3", "--text", "a custom caption")
    run("export", "1", tmp_path / "exp")
    lines = [json.loads(x) for x in (tmp_path / "exp" / "metadata.jsonl").read_text().splitlines()]
    assert len(lines) == 15 and any(x["text"] == "a custom caption" for x in lines)


def test_cli_import_reports_skips_and_errors(tmp_path):
    write(tmp_path / "src" / "a.png", image_bytes((300, 300), pattern=1))
    write(tmp_path / "src" / "b.png", b"")
    out = run("import", tmp_path / "src", "--name", "s", "--workers", "1")
    assert "1 added" in out and "skipped b.png: empty file (0 bytes)" in out
    assert "0 added, 1 already present" in run("import", tmp_path / "src", "--name", "s", "--workers", "1")
    bad = runner.invoke(app, ["import", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "no such file or folder" in bad.output
    missing = runner.invoke(app, ["show", "nope"])
    assert missing.exit_code != 0 and "no dataset 'nope'" in missing.output
