"""Deleting a dataset, a training run or a generation batch (workbench.trash): hidden at once, restorable with the
same rows and byte-identical files, refused while a job uses it, purged for good after the undo window, and every
step in the audit log."""
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from workbench import trash
from workbench.db import AuditLog, Job, session_scope, utcnow
from helpers.data import CURATOR, image_bytes, write
from helpers.review import as_role, make_generation

LATER = utcnow() + dt.timedelta(days=2)  # past the default 24 h window


def files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def audits(action: str) -> list[AuditLog]:
    with session_scope() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def test_dataset_delete_hides_restore_brings_back_bytes_purge_removes(tmp_path):
    from workbench.data.importer import ImportError_, import_dataset
    from workbench.data.store import DatasetError, dataset_dir, delete_dataset, get_dataset, list_datasets
    from workbench.data.tables import Dataset, Item

    for i in range(2):
        write(tmp_path / "src" / f"{i}.png", image_bytes((64, 64), pattern=i))
    ds = import_dataset(CURATOR, tmp_path / "src", name="shop", workers=1).dataset_id
    folder = dataset_dir(ds)
    before = files_of(folder)
    assert len(before) >= 2

    # a job using it: refused, nothing moved
    with session_scope() as s:
        s.add(Job(kind="caption", status="running", config={"dataset_id": ds}))
        s.flush()
        job_id = s.get(Job, s.scalar(select(Job.id).order_by(Job.id.desc()))).id
    with pytest.raises(DatasetError, match=f"in use by caption job {job_id}"):
        delete_dataset(CURATOR, ds)
    assert files_of(folder) == before and [d.name for d in list_datasets()] == ["shop"]
    with session_scope() as s:
        s.get(Job, job_id).status = "done"

    entry = delete_dataset(CURATOR, ds)
    assert list_datasets() == [] and not folder.exists()
    with pytest.raises(DatasetError, match=f"in the trash .* `workbench trash restore {entry.id}`"):
        get_dataset("shop")
    with pytest.raises(ImportError_, match="in the trash"):  # a new import may not slip into the hidden one
        import_dataset(CURATOR, tmp_path / "src", name="shop", workers=1)
    with pytest.raises(trash.TrashError, match="already in the trash"):
        trash.put(CURATOR, "dataset", ds, "shop", [])
    assert [e.label for e in trash.list_trash()] == ["shop"]

    trash.restore(CURATOR, entry.id)
    assert [(d.name, d.items) for d in list_datasets()] == [("shop", 2)]
    assert files_of(folder) == before
    with pytest.raises(trash.TrashError, match="already restored"):
        trash.restore(CURATOR, entry.id)

    entry = delete_dataset(CURATOR, ds)
    assert trash.purge(as_role("admin"), now=utcnow()) == []  # inside the window: nothing
    with pytest.raises(trash.TrashError, match="can still be restored"):
        trash.purge(as_role("admin"), entry.id)
    assert [e.id for e in trash.purge(as_role("admin"), now=LATER)] == [entry.id]
    with session_scope() as s:
        assert s.get(Dataset, ds) is None and s.scalar(select(Item.id).where(Item.dataset_id == ds)) is None
    assert not folder.exists() and not (trash.trash_root() / f"dataset-{entry.id}").exists()
    with pytest.raises(trash.TrashError, match="already purged and cannot come back"):
        trash.restore(CURATOR, entry.id)

    deleted, restored, purged = audits("dataset.delete"), audits("dataset.restore"), audits("dataset.purge")
    assert [a.actor for a in deleted] == ["curator", "curator"] and deleted[0].before["items"] == 2
    assert deleted[0].after["status"] == "deleted" and deleted[0].after["files"][0]["path"] == str(folder)
    assert restored[0].before["status"] == "deleted" and restored[0].after["status"] == "active"
    assert purged[0].actor == as_role("admin").username and purged[0].before["items"] == 2
    assert purged[0].after == {"status": "purged"}


def _fake_run(status: str = "done") -> int:
    """A finished run as the training job leaves it: the job row, its folder, a checkpoint and a registered LoRA."""
    from workbench.train.folders import default_folder
    from workbench.train.tables import Checkpoint, Lora

    with session_scope() as s:
        job = Job(kind="train_lora", title="navy tees", status=status, config={"config": {"rank": 4}},
                  progress_step=20)
        s.add(job)
        s.flush()
        folder = default_folder(job.id)
        write(folder / "lora" / "pytorch_lora_weights.safetensors", b"weights" * 10)
        write(folder / "metrics.jsonl", b'{"step": 1, "epoch": 0, "loss": 0.5, "lr": 0.0001, "s_per_step": 0.2, '
                                        b'"eta_s": 4.0, "gpu_mem_gb": 0.0}\n')
        s.add(Lora(name="navy", run_id=job.id, job_id=job.id, path=str(folder / "lora"), method="text_to_image_lora",
                   base_model="tiny", rank=4, lora_alpha=4.0))
        s.add(Checkpoint(run_id=job.id, job_id=job.id, step=10, path=str(folder / "checkpoints" / "checkpoint-10")))
        return job.id


def test_run_delete_hides_from_runs_and_lora_picker_restore_and_purge():
    from workbench.generate.reads import registered_loras
    from workbench.train.runs import RunError, delete_run, get_run, list_runs, run_dir
    from workbench.train.tables import Lora

    busy = _fake_run("running")
    with pytest.raises(RunError, match=f"run {busy} is running .* stop it first"):
        delete_run(as_role("marketer"), busy)
    run_id = _fake_run()
    folder = run_dir(run_id)
    before = files_of(folder)
    assert {r.run_id for r in list_runs()} == {busy, run_id} and len(registered_loras()) == 2

    entry = delete_run(as_role("marketer"), run_id)
    assert [r.run_id for r in list_runs()] == [busy] and [lr.name for lr in registered_loras()] == ["navy"]
    assert all(Path(lr.path).is_relative_to(run_dir(busy)) for lr in registered_loras())
    assert not folder.exists()
    with pytest.raises(RunError, match="in the trash"):
        get_run(run_id)

    trash.restore(as_role("marketer"), entry.id)
    assert {r.run_id for r in list_runs()} == {busy, run_id} and files_of(folder) == before

    entry = delete_run(as_role("marketer"), run_id)
    trash.purge(as_role("admin"), now=LATER)
    with session_scope() as s:
        assert s.get(Job, run_id) is None and s.scalar(select(Lora.id).where(Lora.run_id == run_id)) is None
    assert [a.before["checkpoints"] for a in audits("run.delete")] == [1, 1]
    assert audits("run.purge")[0].before["loras"] == 1 and len(audits("run.restore")) == 1


def test_batch_delete_leaves_queue_refuses_running_job_restores_decisions_and_purges(db_backend):
    """On SQLite and PostgreSQL: the filters, casts and purge statements are plain SQL both must run."""
    from helpers.review import make_users
    from workbench.generate.batch import batch_names, enqueue_batch
    from workbench.generate.deletion import batch_summary, delete_batch
    from workbench.generate.pipeline import GenerationError
    from workbench.generate.tables import Generation
    from workbench.overview import workspace_counts
    from workbench.review import decide, list_queue
    from workbench.review.queue import QueueFilter, ReviewError

    users = make_users()
    ids = [make_generation(batch="ss26", seed=i) for i in range(2)] + [make_generation(batch="other")]
    decide(users["approver"], ids[0], "approve")
    folder = Path(trash.trash_root()).parent / "generations" / "ss26"
    before = files_of(folder)
    assert batch_summary("ss26").approved == 1

    with session_scope() as s:
        job = Job(kind="generate", status="queued", config={"batch": "ss26"})
        s.add(job)
        s.flush()
        job_id = job.id
    make_generation(batch="page")
    with pytest.raises(GenerationError, match="everyone's, and the page keeps adding to it"):
        delete_batch(users["marketer"], "page")
    with pytest.raises(GenerationError, match=f"being generated \\(job {job_id}\\)"):
        delete_batch(users["marketer"], "ss26")
    with session_scope() as s:
        s.get(Job, job_id).status = "stopped"

    entry = delete_batch(users["marketer"], "ss26")
    assert entry.detail == {"images": 2, "attempts": 2, "approved": 1, "exported": 0}
    queue = list_queue(users["approver"], QueueFilter(gate="all", status=None))
    assert [i.generation_id for i in queue if i.batch != "page"] == [ids[2]] and "ss26" not in batch_names()
    with pytest.raises(ReviewError, match="does not exist"):
        decide(users["approver"], ids[1], "approve")
    with pytest.raises(GenerationError, match="'ss26' is in the trash"):  # no new images into the hidden batch
        enqueue_batch(users["marketer"], {"spec": {"model": "tiny"}, "prompts": [{"text": "a tee"}], "batch": "ss26"})
    assert not folder.exists()
    assert workspace_counts()["generated images"] == 2  # "other" and "page"

    trash.restore(users["marketer"], entry.id)
    queue = {i.generation_id: i.review_status
             for i in list_queue(users["approver"], QueueFilter(gate="all", status=None))}
    assert {i: queue[i] for i in ids} == {ids[0]: "approved", ids[1]: "pending", ids[2]: "pending"}
    assert files_of(folder) == before

    entry = delete_batch(users["marketer"], "ss26")
    trash.purge(users["admin"], entry.id, due_only=False)  # an admin's purge before the window ends
    with session_scope() as s:
        assert s.scalars(select(Generation.id).where(Generation.batch != "page")).all() == [ids[2]]
    assert audits("batch.purge")[0].actor == "adam" and audits("batch.delete")[0].actor == "mia"


def test_periodic_purge_after_the_window_and_cli_confirmation(monkeypatch):
    from workbench.cli import app
    from workbench.jobs.supervisor import run_periodic
    from workbench.settings import reload_settings

    make_generation(batch="old")
    runner = CliRunner()
    out = runner.invoke(app, ["generate", "delete-batch", "old"], input="n\n")
    assert out.exit_code == 1 and "delete batch 'old' (1 image(s))? It can be restored for 24 hours" in out.output
    assert trash.list_trash() == []
    out = runner.invoke(app, ["generate", "delete-batch", "old", "--yes"])
    assert out.exit_code == 0 and "is in the trash (entry 1)" in out.output, out.output
    listed = runner.invoke(app, ["trash", "list"]).output
    assert "generation batch 'old'" in listed and "restorable for 24.0 h more" in listed
    assert runner.invoke(app, ["trash", "restore", "1"]).exit_code == 0
    assert runner.invoke(app, ["generate", "delete-batch", "old", "-y"]).exit_code == 0

    run_id = _fake_run()
    out = runner.invoke(app, ["train", "delete", str(run_id), "--yes"])
    assert out.exit_code == 0 and f"run {run_id} is in the trash (entry 3)" in out.output, out.output
    assert runner.invoke(app, ["trash", "restore", "3"]).exit_code == 0

    run_periodic()  # every consumer's scheduled work: inside the window nothing goes
    assert [e.status for e in trash.list_trash(include_done=True)] == ["restored", "deleted", "restored"]
    monkeypatch.setenv("WORKBENCH_TRASH_UNDO_HOURS", "0")
    reload_settings()
    make_generation(batch="new")
    assert runner.invoke(app, ["generate", "delete-batch", "new", "-y"]).exit_code == 0
    run_periodic()  # the new entry's window (0 h) is over; the old one's 24 h are not
    assert [(e.label, e.status) for e in trash.list_trash(include_done=True)] == [
        ("new", "purged"), ("navy tees", "restored"), ("old", "deleted"), ("old", "restored")]
    assert [a.actor for a in audits("batch.purge")] == ["system"]
