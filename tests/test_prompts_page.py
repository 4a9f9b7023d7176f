"""Prompts page (AppTest): renders on an empty workspace, builds a batch, saves it, sends it to Generate, refines a
prompt, and the editors validate before saving."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.prompts import batch_prompts, get_batch, list_batches, load_library, prompt_history
from workbench import auth
from helpers.review import make_users, page_text
from workbench.ui.prompts import GENERATE_PAGE
from workbench.ui.state import StateKeys

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "3_Prompts.py")


@pytest.fixture(autouse=True)
def users(workspace, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()


def _page(user: str = "mia") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[StateKeys.USER] = user
    return at.run()


def test_renders_on_an_empty_workspace_with_a_live_preview(workspace):
    at = _page()
    assert not at.exception and not at.error
    assert at.title[0].value == "Prompts"
    at.selectbox(key="prompts_template").set_value("t-shirt").run()
    assert at.selectbox(key="prompts_brand").value == "northwind"
    assert at.code[0].value.startswith("nwo_style regular fit white crew neck t-shirt")
    tokens = at.metric[0].value
    assert tokens.endswith("/ 77") and 20 < int(tokens.split()[0]) < 77
    assert "**1 prompt** from 1 combinations" in page_text(at)
    assert "No saved batches yet" in page_text(at)


def test_build_save_and_send_a_batch_to_generate(workspace):
    at = _page(user="mia")
    at.selectbox(key="prompts_template").set_value("t-shirt").run()
    at.multiselect(key="prompts_slot_t-shirt_color").set_value(["navy", "olive"]).run()
    at.multiselect(key="prompts_scenes_t-shirt").set_value(["studio-white", "urban-street"]).run()
    assert "**6 prompts** from 6 combinations" in page_text(at)  # 2 colours x (1 + 2 street variants)
    table = at.dataframe[0].value
    assert len(table) == 6 and table["prompt"].str.startswith("nwo_style").all()

    at.text_input(key="prompts_batch_name").input("SS26 tees").run()
    at.button(key="prompts_save").click().run()
    assert not at.exception
    (saved,) = list_batches()
    assert (saved.name, saved.size, saved.created_by) == ("SS26 tees", 6, "mia")
    assert [p.text for p in batch_prompts(saved.id)] == list(table["prompt"])
    assert f"Saved as batch {saved.id}." in page_text(at)

    at.button(key="prompts_send_built").click().run()
    assert at.session_state[StateKeys.PROMPT_BATCH] == saved.id
    if not GENERATE_PAGE.exists():
        assert f"Batch {saved.id} is saved and ready for Generate" in page_text(at)


def test_rule_violations_are_flagged_in_the_preview_table(workspace):
    brands = workspace / "prompt_templates" / "brands"
    brands.mkdir(parents=True)
    (brands / "strict.yaml").write_text("title: Strict\ntrigger: st_x\nforbidden_terms: [olive]\n")
    at = _page()
    assert at.selectbox(key="prompts_brand").value == "strict"  # the workspace's own profile before the examples
    at.selectbox(key="prompts_template").set_value("t-shirt").run()
    at.selectbox(key="prompts_brand").set_value("northwind").run()
    at.selectbox(key="prompts_brand").set_value("strict").run()
    at.multiselect(key="prompts_slot_t-shirt_color").set_value(["navy", "olive"]).run()
    table = at.dataframe[0].value
    assert list(table[""]) == ["✓", "⚠️"]
    assert table["issues"].iloc[1] == "forbidden term 'olive'"
    at.toggle(key="prompts_only_issues").set_value(True).run()
    assert list(at.dataframe[0].value["slot:color"]) == ["olive"]
    assert "1 break brand rules" in page_text(at)


def test_refine_a_saved_prompt_from_the_library(workspace):
    at = _page(user="adam")
    at.text_input(key="prompts_batch_name").input("one").run()
    at.button(key="prompts_save").click().run()
    (saved,) = list_batches()
    pid = get_batch(saved.id).prompt_ids[0]
    at.text_area(key=f"prompts_refine_text_{pid}").input("nwo_style canvas tote bag, studio photograph").run()
    at.text_input(key="prompts_refine_reason").input("simpler").run()
    at.button(key="prompts_refine_save").click().run()
    assert not at.exception and not at.error
    history = prompt_history(pid)
    assert [(p.version, p.parent_id, p.created_by, p.reason) for p in history] == [
        (1, None, "adam", "batch one"), (2, pid, "adam", "simpler")]


def test_template_editor_validates_before_saving(workspace):
    at = _page()
    bad = "kind: product\nname: polo\ntext: \"{colour} polo, {scene}\"\ndefault_scene: studio-white\n"
    at.text_area(key="prompts_yaml_template_(new)").input(bad).run()
    at.button(key="prompts_save_template").click().run()
    assert "editor:3: text: unknown slot 'colour'" in at.error[0].value
    assert "polo" not in load_library().templates
    at.text_area(key="prompts_yaml_template_(new)").input(bad.replace("{colour} ", "")).run()
    at.button(key="prompts_save_template").click().run()
    assert "Saved polo to this workspace" in at.success[0].value
    assert "polo" in load_library().templates
    at.run()
    assert "polo" in at.selectbox(key="prompts_template").options


def test_brand_profiles_are_saved_by_admins_and_the_page_is_for_marketers_and_admins(workspace):
    marketer = _page("mia")
    assert marketer.button(key="prompts_save_brand profile").disabled  # the library refuses them too (test_review_auth)
    admin = _page("adam")
    admin.button(key="prompts_save_brand profile").click().run()  # the skeleton profile, as written
    assert "to this workspace" in admin.success[0].value and "my-brand" in load_library().brands
    # a shipped profile (its file has no name: line) opened in the editor, changed and saved
    admin.selectbox(key="prompts_edit_brand profile").set_value("northwind").run()
    text = admin.text_area(key="prompts_yaml_brand profile_northwind").value
    assert not re.search(r"^name:", text, re.M)
    admin.text_area(key="prompts_yaml_brand profile_northwind").input(
        text.replace("clip_threshold: 0.25 ", "clip_threshold: 0.3 ")).run()
    admin.button(key="prompts_save_brand profile").click().run()
    assert not admin.error and "to this workspace" in admin.success[0].value
    assert load_library().brand("northwind").clip_threshold == 0.3
    for user in ("ari", "ana"):
        assert "This page is for: admin, marketer" in _page(user).warning[0].value


def test_without_any_template_the_page_says_where_to_add_one(workspace, tmp_path, monkeypatch):
    import workbench.prompts.library as library

    monkeypatch.setattr(library, "SHIPPED_DIR", tmp_path / "none")
    at = _page()
    assert not at.exception
    assert "No prompt templates found" in at.info[0].value
    assert "saved in this workspace" in at.info[0].value and "**Templates** tab" in at.info[0].value
    assert str(workspace) not in at.info[0].value  # no server paths for marketers (issue #26 item 9)
