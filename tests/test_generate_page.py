"""Generate page: missing model guard, demo label, generate from a typed prompt, gallery."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.models import tiny
from workbench.settings import reload_settings

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "4_Generate.py")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


def test_missing_model_says_what_to_do(workspace):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "is not available here" in at.info[0].value and "workbench models pull" in at.info[0].value


def test_generate_from_a_typed_prompt(kit, workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    reload_settings()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert "demo model" in at.warning[0].value
    at.text_area(key="generate_prompt").set_value("a red t-shirt on white")
    at.number_input(key="generate_n").set_value(2)
    at.number_input(key="generate_steps").set_value(2)
    at.selectbox(key="generate_size").set_value(64)
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    assert "2 image(s) saved" in at.success[0].value
    pngs = sorted((workspace / "generations" / "page").glob("*.png"))
    assert len(pngs) == 2
    captions = [c.value for c in at.caption]
    assert any("seed 0 · attempt 1" in c and "demo" in c for c in captions), captions
