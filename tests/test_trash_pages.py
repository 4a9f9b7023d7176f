"""The Delete button on the Datasets page: disabled until the name is typed, then the dataset leaves the page and
comes back with Undo; "Recently deleted" restores too. And the Training page's Delete for a finished run."""
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
