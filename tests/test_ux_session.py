"""What a newcomer met on Home, Datasets, Prompts and the users form (issue #26 items 9 and 10), as AppTests: Home's
empty state and the next step for the signed-in role, the pages each role sees, the "tiny" flag judged against the
base model, the histograms, the Preprocess default size, the brand's template, and the users form."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.data import CURATOR
from helpers.review import make_generation, make_users, page_as, page_text
from workbench import auth
from workbench.settings import reload_settings

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "Home.py")
DATASETS = str(ROOT / "pages" / "1_Datasets.py")
PROMPTS = str(ROOT / "pages" / "3_Prompts.py")
REVIEW = str(ROOT / "pages" / "6_Review.py")


@pytest.fixture(autouse=True)
def users(workspace, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()


@pytest.fixture
def demo_sized_model(tmp_path, monkeypatch):
    """A base model folder whose configs say it draws 64 px images, like the demo model (configs only)."""
    folder = tmp_path / "base-64"
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "unet" / "config.json").write_text(json.dumps({"sample_size": 8}))
    (folder / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [32, 32, 32, 32]}))
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(folder))
    reload_settings()
    return folder


# -- Home -------------------------------------------------------------------------------------------------------------

def test_home_empty_state_names_the_demo_button_without_saying_where_it_is():
    from workbench import db

    with db.session_scope() as s:  # a workspace with users: the demo is offered as a command, not a button
        assert s.query(db.User).count() == 4
    at = page_as(HOME, user="").run()
    assert not at.exception
    empty = next(i.value for i in at.info if "This workspace is empty" in i.value)
    assert "below" not in empty and "above" not in empty
    assert "workbench demo" in empty


def test_home_tells_an_approver_how_many_images_wait_for_review():
    for seed in range(3):
        make_generation(seed=seed)
    at = page_as(HOME, user="ana").run()
    assert not at.exception
    assert "**3 images wait for your review.**" in [i.value for i in at.info]
    at = page_as(HOME, user="ari").run()  # an analyst is pointed at Evaluate instead
    assert any("to compare on Evaluate" in i.value for i in at.info)
    assert not any("wait for your review" in i.value for i in at.info)


def test_the_sidebar_lists_only_the_pages_a_role_can_use():
    from workbench.ui.home import PAGES, visible_pages

    mia, ana = auth.get_user("mia"), auth.get_user("ana")
    assert "pages/5_Evaluate.py" not in visible_pages(mia)
    assert set(visible_pages(mia)) >= {"pages/1_Datasets.py", "pages/3_Prompts.py", "pages/4_Generate.py",
                                       "pages/6_Review.py"}
    assert visible_pages(ana) == ["pages/5_Evaluate.py", "pages/6_Review.py"]
    assert len(visible_pages(None)) == len(PAGES) == len(list((ROOT / "pages").glob("*.py")))
    for path, needs in PAGES:  # the table says what each page's own guard says
        guard = re.search(r"require_login\((.*)\)", (ROOT / path).read_text()).group(1)
        assert set(re.findall(r'"(\w+)"', guard)) == set(needs), path


# -- Datasets ---------------------------------------------------------------------------------------------------------

def test_tiny_is_judged_against_the_base_models_training_size(demo_sized_model):
    from workbench.data.demo import import_demo_catalog
    from workbench.data.store import query_items

    report = import_demo_catalog(CURATOR, size=64, colours=1)
    items = query_items(report.dataset_id, per_page=200).items
    assert items and not any("tiny" in i.flags for i in items)  # 64 px photos for a 64 px model


def test_tiny_still_flags_small_photos_for_sdxl(tmp_path):
    from PIL import Image

    from workbench.data.importer import import_dataset
    from workbench.data.store import query_items

    folder = tmp_path / "shoot"
    folder.mkdir()
    Image.new("RGB", (200, 300), (200, 30, 30)).save(folder / "small.png")
    Image.new("RGB", (300, 300), (30, 200, 30)).save(folder / "fine.png")
    report = import_dataset(CURATOR, folder, workers=1)
    flags = {i.source_key: i.flags for i in query_items(report.dataset_id).items}
    assert "tiny" in flags["small.png"] and "tiny" not in flags["fine.png"]  # SDXL: under 256 px


def test_histogram_ranges_are_whole_numbers_in_numeric_order():
    from workbench.ui.datasets import _hist

    one = _hist([126] * 5)
    assert list(one["range"]) == ["126"] and list(one["items"]) == [5]
    words = _hist([3, 4, 9, 10, 12, 25, 100])
    labels = list(words["range"])
    starts = [int(label.split("–")[0]) for label in labels]
    assert starts == sorted(starts) and all(a != b for a, b in (label.split("–") for label in labels if "–" in label))
    assert int(words["items"].sum()) == 7 and len(labels) <= 12
    assert not any(re.fullmatch(r"(\d+)–\1", label) for label in labels)


def test_preprocess_defaults_to_the_base_models_size_and_counts_read_as_words(demo_sized_model):
    from workbench.data.demo import import_demo_catalog

    import_demo_catalog(CURATOR, size=64, colours=1)
    at = page_as(DATASETS).run()
    at.segmented_control(key="datasets_view").set_value("Preprocess & split").run()
    assert not at.exception
    assert at.selectbox(key="datasets_prep_size").value == 64
    at.segmented_control(key="datasets_view").set_value("Browse").run()
    at.text_input(key="datasets_f_text").set_value("no such caption anywhere").run()
    assert any(c.value.startswith("0 items match") for c in at.caption)


# -- Prompts ----------------------------------------------------------------------------------------------------------

BRAND = """name: acme
title: ACME
trigger: acme_style
product_template: hoodie
palette: {navy: "#1F2A44"}
"""


def test_the_template_starts_as_the_selected_brands_own(workspace):
    folder = workspace / "prompt_templates" / "brands"
    folder.mkdir(parents=True)
    (folder / "acme.yaml").write_text(BRAND)
    at = page_as(PROMPTS).run()
    assert not at.exception
    assert at.selectbox(key="prompts_brand").value == "acme"
    assert at.selectbox(key="prompts_template").value == "hoodie"
    at.selectbox(key="prompts_brand").set_value("(no brand)").run()
    at.selectbox(key="prompts_brand").set_value("acme").run()
    assert at.selectbox(key="prompts_template").value == "hoodie"
    assert str(workspace) not in page_text(at)  # no server paths


# -- the users form ---------------------------------------------------------------------------------------------------

def test_the_users_form_clears_the_password_and_never_defaults_to_demoting_the_admin():
    at = page_as(REVIEW, user="adam").run()
    assert not at.exception
    assert at.selectbox(key="review_user_role_0").value == "marketer"
    assert at.selectbox(key="review_user_pick").value != "adam"
    who = at.selectbox(key="review_user_pick").value
    assert at.selectbox(key=f"review_user_new_role_{who}").value == auth.get_user(who).role
    at.text_input(key="review_user_name_0").set_value("nina")
    at.text_input(key="review_user_pw_0").set_value("tangerine velvet orchard")
    at.button(key="FormSubmitter:review_user_add_form_0-Add user").click().run()
    assert not at.exception
    assert auth.get_user("nina").role == "marketer"
    shown = [t for t in at.text_input if t.label.startswith("Password")]
    assert [t.value for t in shown] == [""]  # a fresh form: the password is gone
    assert auth.get_user("adam").role == "admin"


def test_brand_profiles_are_edited_in_a_form_that_writes_the_same_yaml(workspace):
    from workbench.prompts import load_library
    from workbench.prompts.brands import brand_to_yaml, parse_brand

    shipped = load_library().brand("northwind")
    assert parse_brand(brand_to_yaml(shipped), shipped.path) == shipped  # the form's writer round-trips a profile

    at = page_as(PROMPTS, user="adam").run()
    at.selectbox(key="prompts_brandform_pick").set_value("northwind").run()
    assert not at.exception
    assert any("#1F2A44" in h.proto.body and "navy" in h.proto.body for h in at.get("html"))  # the swatches
    k = "prompts_brandform_northwind"
    assert at.text_input(key=f"{k}_trigger").value == "nwo_style"
    at.number_input(key=f"{k}_threshold").set_value(0.3)
    at.text_area(key=f"{k}_forbidden").set_value("nike\nknockoff\nfast fashion")
    at.number_input(key=f"{k}_dino").set_value(0.6)
    at.button(key=f"FormSubmitter:{k}-Save brand profile").click().run()
    assert not at.exception and not at.error
    saved = load_library().brand("northwind")
    assert saved.clip_threshold == 0.3 and saved.min_dino == 0.6 and saved.max_delta_e == 5.0
    assert saved.forbidden_terms == ("nike", "knockoff", "fast fashion")
    assert saved.palette == shipped.palette and saved.loras == shipped.loras and saved.trigger == "nwo_style"
    yaml_text = (workspace / "prompt_templates" / "brands" / "northwind.yaml").read_text()
    assert "clip_threshold: 0.3" in yaml_text and "min_dino: 0.6" in yaml_text
    assert str(workspace) not in page_text(at)

    marketer = page_as(PROMPTS, user="mia").run()
    marketer.selectbox(key="prompts_brandform_pick").set_value("northwind").run()
    assert marketer.button(key="FormSubmitter:prompts_brandform_northwind-Save brand profile").disabled


def test_home_recent_jobs_read_as_plain_words():
    from workbench import db

    with db.session_scope() as s:
        s.add(db.Job(kind="train_lora", title="spring capsule", config={}, metrics={}, result={}, status="queued",
                     message=None))
    at = page_as(HOME, user="ari").run()
    [jobs] = [t.value for t in at.dataframe if "title" in t.value]
    assert list(jobs["kind"]) == ["training run"]
    assert "None" not in jobs.astype(str).to_string()


def test_the_shipped_streamlit_config_serves_locally_without_a_watcher_or_statistics():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none" and config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False
