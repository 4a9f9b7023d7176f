"""Training page (AppTest), issue #26: a chosen preset sets every option it names (edits kept only on request), the
runs table and the run view read the same step, several runs' loss curves overlay in one chart, plain labels."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench import auth, jobs
from workbench.models import tiny
from helpers.review import make_users, page_text
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "2_Training.py")


@pytest.fixture(autouse=True)
def setup(workspace, monkeypatch, tmp_path):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)  # rows only: nothing runs in page tests
    kit = tiny.make_tiny_kit(tmp_path / "kit")
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    from workbench.settings import reload_settings

    reload_settings()
    make_users()
    return kit


def _page(user: str = "mia") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def _form(at: AppTest) -> dict:
    return {"steps": at.number_input(key="training_steps").value, "lr": at.number_input(key="training_lr").value,
            "rank": at.number_input(key="training_rank").value, "batch": at.number_input(key="training_batch").value,
            "res": at.number_input(key="training_res").value, "mp": at.selectbox(key="training_mp").value,
            "gc": at.checkbox(key="training_gc").value, "8bit": at.checkbox(key="training_8bit").value}


def test_choosing_a_preset_sets_every_option_it_names_and_the_24gb_preset_fits_24gb():
    at = _page()
    assert at.selectbox(key="training_preset").value == "tiny_cpu_demo"
    assert _form(at) == {"steps": 120, "lr": 2e-3, "rank": 8, "batch": 4, "res": 64, "mp": "no", "gc": False,
                         "8bit": False}
    at.selectbox(key="training_preset").set_value("sdxl_lora_24gb").run()
    assert not at.exception
    assert _form(at) == {"steps": 2000, "lr": 1e-4, "rank": 16, "batch": 1, "res": 1024, "mp": "bf16", "gc": False,
                         "8bit": False}
    assert at.number_input(key="training_ckpt").value == 250
    assert any("24 GiB" in s.value and "fits" in s.value for s in at.success), page_text(at)
    assert not any("does not fit" in w.value for w in at.warning)
    at.selectbox(key="training_preset").set_value("sdxl_lora_12gb").run()
    assert _form(at) | {} == {"steps": 2000, "lr": 1e-4, "rank": 8, "batch": 1, "res": 1024, "mp": "bf16", "gc": True,
                              "8bit": True}


def test_edited_fields_are_kept_only_when_the_user_asks():
    at = _page()
    at.number_input(key="training_rank").set_value(32).run()
    at.selectbox(key="training_preset").set_value("sdxl_lora_24gb").run()
    assert at.number_input(key="training_rank").value == 16  # the preset wins by default
    at.number_input(key="training_rank").set_value(32)
    at.checkbox(key="training_keep_edits").check().run()
    at.selectbox(key="training_preset").set_value("sdxl_lora_12gb").run()
    assert not at.exception
    assert at.number_input(key="training_rank").value == 32  # kept: the user asked
    assert at.checkbox(key="training_gc").value is True and at.checkbox(key="training_8bit").value is True
    assert at.number_input(key="training_res").value == 1024
