"""The Delete button on the Datasets page: disabled until the name is typed, then the dataset leaves the page and
comes back with Undo; "Recently deleted" restores too. The Training page's Delete for a finished run (not a running
one), and the Generate page's for a batch job's batch (in its result group, not for the shared one-click batch)."""
from pathlib import Path

import pytest

from workbench import auth, trash
from workbench.data import store
from helpers.data import CURATOR, image_bytes, write
from helpers.review import make_users, page_as, page_text

PAGES = Path(__file__).resolve().parent.parent / "pages"


@pytest.fixture(autouse=True)
def users(workspace, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_datasets_page_delete_needs_the_name_then_undo_and_restore(tmp_path):
    from workbench.data.importer import import_dataset

    write(tmp_path / "src" / "a.png", image_bytes((64, 64), pattern=1))
    ds = import_dataset(CURATOR, tmp_path / "src", name="spring", workers=1).dataset_id
    at = page_as(str(PAGES / "1_Datasets.py")).run()
    assert not at.exception
    key = f"datasets_delete_dataset_{ds}"
    assert _button(at, key).disabled  # nothing typed yet
    at.text_input(key=f"datasets_delete_confirm_dataset_{ds}").input("sprin").run()
    assert _button(at, key).disabled  # not the name
    at.text_input(key=f"datasets_delete_confirm_dataset_{ds}").input("spring").run()
    _button(at, key).click().run()
    assert not at.exception
    assert store.list_datasets() == [] and "Deleted dataset **spring**. It can be restored for 24.0 h more." in \
        page_text(at)
    assert any("No datasets yet" in i.value for i in at.info)

    _button(at, "datasets_trash_undo_btn").click().run()
    assert not at.exception and [d.name for d in store.list_datasets()] == ["spring"]
    assert "Restored dataset spring." in page_text(at) and "Deleted dataset" not in page_text(at)

    entry = store.delete_dataset("mia", ds)  # deleted elsewhere (the CLI): the page's list restores it
    at.run()
    assert "dataset **spring** · deleted by mia" in page_text(at)
    _button(at, f"datasets_trash_restore_{entry.id}").click().run()
    assert not at.exception and [d.name for d in store.list_datasets()] == ["spring"]
    assert [e.status for e in trash.list_trash(include_done=True)] == ["restored", "restored"]


def test_training_page_deletes_a_finished_run_not_a_running_one():
    from test_trash import _fake_run
    from workbench.train.runs import list_runs

    running, done = _fake_run("running"), _fake_run("done")
    at = page_as(str(PAGES / "2_Training.py"), user="mia")
    at.session_state["training_open"] = done
    at.session_state["training_selected_run"] = done
    at.run()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert f"training_delete_run_{done}" in keys and f"training_delete_run_{running}" not in keys
    at.text_input(key=f"training_delete_confirm_run_{done}").input(str(done)).run()
    _button(at, f"training_delete_run_{done}").click().run()
    assert not at.exception and [r.run_id for r in list_runs()] == [running]
    assert "Deleted training run **navy tees**" in page_text(at)
    _button(at, "training_trash_undo_btn").click().run()
    assert not at.exception and {r.run_id for r in list_runs()} == {running, done}


def test_generate_page_deletes_a_batch_jobs_batch_not_the_shared_one_click_batch(tmp_path, monkeypatch):
    from helpers.review import make_generation
    from workbench.generate.batch import batch_names
    from workbench.models import tiny
    from workbench.settings import reload_settings

    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(tiny.save_tiny_sdxl(tmp_path / "tiny-sdxl")))
    reload_settings()
    for seed in (1, 2):
        make_generation(batch="ss26", seed=seed, params={"seed": seed, "request": "job-7"})
    make_generation(batch="page", seed=3, params={"seed": 3, "request": "page-ab12"})  # a one-click image: no Delete
    at = page_as(str(PAGES / "4_Generate.py"), user="mia", timeout=120).run()
    assert not at.exception
    assert [b.key for b in at.button if b.key.startswith("generate_delete_")] == ["generate_delete_batch_ss26"]
    at.text_input(key="generate_delete_confirm_batch_ss26").input("ss26").run()
    _button(at, "generate_delete_batch_ss26").click().run()
    assert not at.exception and batch_names() == ["page"]
    assert "Deleted generation batch **ss26**" in page_text(at)
    assert not any("ss26" in e.label for e in at.expander)  # its group left the results (Undo: the other pages)
    assert "generate_trash_undo_btn" in {b.key for b in at.button}
