"""Home page: empty workspace, populated workspace, capability panel."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from workbench import db

HOME = str(Path(__file__).resolve().parents[1] / "Home.py")


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.info] + [m.value for m in at.warning]
    return "\n".join(parts)


def _all_text(at: AppTest) -> str:
    """Everything a visitor can read on the page: text elements, tables, expander labels, the sidebar."""
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "subheader", "title", "metric", "expander",
             "code", "text")
    parts = [str(getattr(e, "value", "") or getattr(e, "label", "")) for kind in kinds for e in getattr(at, kind)]
    parts += [e.label for e in at.expander]
    parts += [str(t.value) for t in at.table] + [t.value.to_string() for t in at.dataframe]
    return "\n".join(parts)


def test_empty_workspace_says_what_to_do_first(workspace):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training runs"] == "0"
    assert "This workspace is empty" in at.info[0].value
    assert "Datasets" in at.info[0].value
    assert str(workspace.resolve()) not in _all_text(at)  # paths are for admins (there is none yet)


def test_capability_panel_lists_every_default_model_as_missing_with_remedy(workspace):
    at = AppTest.from_file(HOME, default_timeout=60).run()
    table = at.dataframe[0].value
    assert set(table["model"]) >= {"sdxl_base", "vae", "clip_scorer", "blip_itm", "blip_captioner", "fid_inception",
                                   "lpips_backbone"}
    hub_rows = table[table["model"].isin(["sdxl_base", "vae", "clip_scorer", "blip_itm"])]
    assert set(hub_rows["status"]) == {"missing"}
    assert hub_rows["what to do"].str.contains("workbench models pull").all()
    assert "not available on this machine" in at.warning[0].value
    text = _text(at)
    assert "PyTorch" in text and ("CPU only" in text or "GiB" in text)
    assert "rapidocr" in text


def test_populated_workspace_shows_counts_and_next_step(workspace):
    db.init_db()
    with db.session_scope() as s:
        for i in range(3):
            s.add(db.Job(kind="train_lora", title=f"run {i}", config={}, metrics={}, result={}, status="done"))
        s.add(db.Job(kind="selftest", title="not a run", config={}, metrics={}, result={}, status="done"))
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training runs"] == "3"
    assert all("This workspace is empty" not in i.value for i in at.info)


def test_recent_jobs_are_shown_to_signed_in_users_only(workspace):
    """Home needs no sign-in; job titles name datasets, runs and prompts, so an anonymous visitor sees counts only."""
    from helpers.review import make_users, page_as

    make_users()
    with db.session_scope() as s:
        s.add(db.Job(kind="train_lora", title="aurelo spring capsule", config={}, metrics={}, result={}, status="done"))
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception
    assert all("aurelo spring capsule" not in set(t.value["title"]) for t in at.dataframe if "title" in t.value)
    assert any("Sign in on any page to see" in c.value for c in at.caption)
    at = page_as(HOME, "ari").run()
    assert not at.exception
    [jobs_table] = [t.value for t in at.dataframe if "title" in t.value]
    assert list(jobs_table["title"]) == ["aurelo spring capsule"]
    assert any("Signed in as" in c.value for c in at.sidebar.caption)


def test_create_demo_workspace_queues_the_demo_job_and_then_shows_the_accounts(workspace, monkeypatch):
    from workbench import jobs

    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)  # the row is what the button makes
    at = AppTest.from_file(HOME, default_timeout=60).run()
    at.button(key="home_demo_create").click().run()
    assert not at.exception
    [job] = jobs.list_jobs(kind="demo")
    assert job.status == "queued" and "demo workspace" in _text(at)
    assert not [b for b in at.button if b.key == "home_demo_create"]  # no second demo while one is on its way
    from workbench.demo import _save_state

    _save_state({"models": "x"})  # what a finished (or partly finished) demo leaves behind
    with db.session_scope() as s:
        s.get(db.Job, job.id).status = "done"
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert "Demo workspace" in at.success[0].value and "`ana` (approver)" in at.success[0].value


def test_a_workspace_with_users_is_not_offered_the_demo(workspace):
    """The demo adds accounts with a published password; Home needs no sign-in, so a used workspace never gets it."""
    from helpers.review import make_users

    make_users()
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception and not [b for b in at.button if b.key == "home_demo_create"]
    assert any("WORKBENCH_WORKSPACE=demo-workspace workbench demo" in c.value for c in at.caption)


def test_the_app_picks_up_a_workspace_toml_written_by_another_process(workspace):
    """The demo job writes <workspace>/workbench.toml from the worker; the running app must follow it."""
    from workbench.settings import get_settings, workspace_settings_file
    from workbench.ui.common import startup

    before = startup().models.sdxl_base
    workspace.mkdir(parents=True, exist_ok=True)
    workspace_settings_file().write_text('[models]\nsdxl_base = "/models/demo-base"\n')
    assert before != "/models/demo-base"
    assert startup().models.sdxl_base == "/models/demo-base"
    assert get_settings().models.sdxl_base == "/models/demo-base"


def test_paths_and_package_versions_are_for_admins_only(workspace):
    """Anonymous visitors and non-admins see counts and what the machine can do, not where things live or which
    versions run (a map for an attacker)."""
    import importlib.metadata

    from helpers.review import make_users, page_as

    make_users()
    streamlit_version = importlib.metadata.version("streamlit")
    for at in (AppTest.from_file(HOME, default_timeout=60), page_as(HOME, "mia"), page_as(HOME, "ana")):
        at.run()
        assert not at.exception
        text = _all_text(at)
        assert "PyTorch" in text and "rapidocr" in text and at.metric  # the capability summary and the counts
        assert str(workspace) not in text and "workbench.db" not in text and "SQLite" not in text
        assert streamlit_version not in text and "Installed packages" not in text
    at = page_as(HOME, "adam").run()
    text = _all_text(at)
    assert str(workspace) in text and "workbench.db" in text
    assert streamlit_version in text and "Installed packages" in text


def test_the_demo_password_is_not_shown_once_a_real_admin_exists(workspace):
    """A demo workspace shows its published accounts; once real accounts exist (the owner's admin), Home must not
    hand out an admin password to anonymous visitors."""
    from workbench.demo import DEMO_PASSWORD, _save_state
    from helpers.review import make_users

    _save_state({"models": "x", "users": ["mia", "ari", "ana", "adam"]})
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert DEMO_PASSWORD in _all_text(at)  # a demo workspace nobody else uses: the accounts are the point
    make_users()  # real accounts (not marked as demo), an admin among them
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception
    assert DEMO_PASSWORD not in _all_text(at)
    assert "Demo workspace" in _all_text(at)


def test_the_database_address_never_shows_its_password_and_visitors_get_no_paths(workspace, monkeypatch):
    from workbench import overview
    from workbench.settings import Settings

    monkeypatch.setattr(overview, "ocr_backends", lambda: {"easyocr": "missing: copy the files into /root/.EasyOCR"})
    report = overview.capability_report(Settings(database_url="postgresql://wb:s3cret@db.example/wb"))
    assert report.database == "postgresql://wb:***@db.example/wb"
    visitor = report.for_visitor()
    assert (visitor.workspace, visitor.database, visitor.packages, visitor.ocr_backends) == ("", "", {},
                                                                                              {"easyocr": "missing"})
    assert overview.redact_paths("point it at /models/sdxl or https://hf.co/x/y") == (
        "point it at (a folder on the server) or https://hf.co/x/y")
