"""`workbench prompts list|render|expand|check`."""
import csv

from typer.testing import CliRunner

from workbench.prompts import batch_prompts, list_batches
from workbench.prompts.cli import app

runner = CliRunner()


def test_list_shows_templates_scenes_and_brands():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("t-shirt", "accessories", "golden-hour", "northwind", "nwo_style"):
        assert name in result.output


def test_render_prints_prompt_tokens_and_negative():
    result = runner.invoke(app, ["render", "t-shirt", "--slot", "color=olive", "--scene", "flat-lay",
                                 "--brand", "northwind"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len([line for line in lines if "nwo_style regular fit olive" in line]) == 3  # flat lay's 3 surfaces
    assert "tok]" in lines[0] and "negative: wrinkled fabric" in result.output


def test_render_with_a_bad_value_exits_2_naming_file_and_line():
    result = runner.invoke(app, ["render", "t-shirt", "--slot", "color=hot pink"])
    assert result.exit_code == 2
    assert "prompt_templates/products/t-shirt.yaml:" in result.output and "value not allowed" in result.output


def test_expand_sample_to_csv_and_save(tmp_path):
    out = tmp_path / "batch.csv"
    args = ["expand", "hoodie", "--slot", "color=*", "--scene", "*", "--brand", "northwind", "--sample", "12",
            "--seed", "3", "--csv", str(out), "--save", "AW hoodies", "--user", "ana", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # 11 colours (6 entries, one with 2 alternatives, + 4 palette colours not already there) x 12 scene variants
    assert "12 prompts from 132 combinations" in result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 and all(r["prompt"].startswith("nwo_style") for r in rows)
    (saved,) = list_batches()
    assert saved.name == "AW hoodies" and saved.created_by == "ana"
    assert [p.text for p in batch_prompts(saved.id)] == [r["prompt"] for r in rows]
    again = runner.invoke(app, args[:-5] + ["--csv", str(tmp_path / "again.csv")])
    assert again.exit_code == 0, again.output
    assert list(csv.DictReader((tmp_path / "again.csv").open())) == rows  # same seed, same batch


def test_check_files_and_text(tmp_path):
    assert runner.invoke(app, ["check"]).exit_code == 0
    bad = tmp_path / "polo.yaml"
    bad.write_text("text: \"{color} polo\"\nslots:\n  color: {values: [navy], default: pink}\n")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3: slots.color.default: value not allowed" in result.output
    result = runner.invoke(app, ["check", "--text", "cheap navy tee", "--brand", "northwind"])
    assert result.exit_code == 1 and "forbidden term 'cheap'" in result.output
