"""AppTest for pages/1_Datasets.py: empty workspace, a populated dataset, caption edit persisted, the other views."""
from pathlib import Path

import pytest

from workbench.data import store
from workbench.data.demo import import_demo_catalog
from helpers.data import CURATOR
from workbench import auth
from helpers.review import lose_role_in_fragment, make_users, page_as, page_text

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Datasets.py")


@pytest.fixture(autouse=True)
def users(workspace, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()


def test_an_approver_is_turned_away():
    at = page_as(PAGE, user="ana").run()
    assert not at.exception and "This page is for: admin, analyst, marketer" in at.warning[0].value
    assert not any(b.key == "datasets_demo_btn" for b in at.button)


def test_signed_out_visitors_get_the_sign_in_form():
    at = page_as(PAGE, user="").run()
    assert not at.exception and "Sign in" in [s.value for s in at.subheader]
    assert not any(b.key == "datasets_demo_btn" for b in at.button)


def test_empty_workspace_offers_demo_and_import():
    at = page_as(PAGE, timeout=60).run()
    assert not at.exception
    assert any("No datasets yet" in i.value for i in at.info)
    assert any(b.key == "datasets_demo_btn" for b in at.button)
    at.button(key="datasets_demo_btn").click().run()
    assert not at.exception
    assert [d.name for d in store.list_datasets()] == ["demo-aurelo"]


def test_populated_dataset_grid_filters_and_caption_edit_persisted():
    report = import_demo_catalog(CURATOR, size=64, colours=2)
    at = page_as(PAGE, timeout=60).run()
    assert not at.exception
    assert any("15 items match" in c.value for c in at.caption)
    assert len([b for b in at.button if b.key.startswith("datasets_open_")]) == 15
    at.selectbox(key="datasets_f_flag").select("near_duplicate").run()
    assert any("2 items match" in c.value for c in at.caption)
    item = store.query_items(report.dataset_id).items[2]
    at.session_state["datasets_selected_item"] = item.id
    at.run()
    at.text_area(key=f"datasets_caption_edit_{item.id}").input("a hand-written caption").run()
    at.button(key="datasets_caption_save").click().run()
    assert not at.exception
    assert store.get_item(item.id).caption == "a hand-written caption"
    assert store.get_item(item.id).caption_source == "edited"


def test_other_views_render():
    import_demo_catalog(CURATOR, size=64, colours=2)
    at = page_as(PAGE, timeout=60).run()
    for view in ("Stats", "Duplicates", "Captions", "Import", "Preprocess & split"):
        at.session_state["datasets_view"] = view
        at.run()
        assert not at.exception, (view, at.exception)
    at.session_state["datasets_view"] = "Duplicates"
    at.run()
    at.button(key="datasets_resolve_1").click().run()
    assert not at.exception
    assert store.list_datasets()[0].excluded == 1


def test_stopping_a_caption_job_after_losing_the_role_says_why(monkeypatch):
    from workbench.data.captioning import enqueue_caption
    from workbench.jobs import get_job

    report = import_demo_catalog(CURATOR, size=64, colours=2)
    job_id = enqueue_caption("mia", report.dataset_id)
    at = page_as(PAGE, timeout=60)
    at.session_state["datasets_view"] = "Captions"
    at.session_state["datasets_caption_job"] = job_id
    at.run()
    assert not at.exception
    lose_role_in_fragment(monkeypatch, "mia", "approver")  # the job panel is an st.fragment
    at.button(key=f"datasets_caption_job_stop_{job_id}").click().run()
    assert not at.exception, at.exception
    assert "'datasets' needs the role" in page_text(at), [e.value for e in at.error]
    assert get_job(job_id).status == "queued"
