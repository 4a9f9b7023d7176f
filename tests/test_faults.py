"""Faults (issue #23 item 4): the process doing an import or an export SIGKILLed at a seeded random point (no
handler, ``finally`` or atexit runs: a power cut, the OOM killer), then the same work run again. After the kill
nothing is half-written or claimed as done; after the re-run everything is there once. The seed is printed
(``FAULTS_SEED=N`` replays a run); tests/helpers/faults.py arms the kill inside the child process."""
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpers.data import CURATOR, image_bytes, write
from helpers.faults import fault_rng, grow_small_disk, mount_small_disk, noise_png, run_killed, unmount
from workbench.data.importer import import_dataset
from workbench.data.tables import Dataset, Item
from workbench.db import AuditLog, session_scope
from workbench.files import DiskFull
from workbench.settings import get_settings

N_PHOTOS = 6
IMPORT = """
from pathlib import Path
from workbench.auth import system_actor
from workbench.data.importer import import_dataset
report = import_dataset(system_actor("curator", role="marketer"), Path({source!r}), name="shoot", workers=1)
print("IMPORTED", report.added)
"""


def _photos(root):
    for i in range(N_PHOTOS):
        write(root / f"{i}.png", image_bytes((48, 48), pattern=300 + i))
    return root


def _import_points():
    """Where an import can die: after each file operation (checking a photo writes it and its thumbnail to the
    staging folder; the commit moves it into the dataset), after each photo is checked, with every file moved but
    the rows not committed, with the audit row written in the open transaction, and just after the commit."""
    points = [("os:replace", n, "after") for n in range(1, 3 * N_PHOTOS + 1)]
    points += [("workbench.data.importer:ingest_one", n, "after") for n in range(1, N_PHOTOS + 1)]
    points += [("workbench.data.dedupe:recompute", 1, "before"), ("workbench.data.importer:audit", 1, "after"),
               ("workbench.data.importer:_commit", 1, "after")]
    return points


def _dataset_state():
    """(items of the dataset "shoot" as (sha256, path), files under datasets/ that no item refers to)."""
    root = get_settings().path("datasets")
    with session_scope() as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "shoot"))
        items = [] if ds is None else [(i.sha256, i.path) for i in s.scalars(select(Item).where(
            Item.dataset_id == ds.id))]
        referenced = {str(root / str(i.dataset_id) / i.path) for i in s.scalars(select(Item))}
    files = {str(p) for p in root.glob("[0-9]*/**/*") if p.is_file()}
    return ds.id if ds else None, items, sorted(files - referenced)


def _check_import_complete(dataset_id, items, context):
    assert len(items) == N_PHOTOS, context
    for sha, rel in items:
        path = get_settings().path("datasets", str(dataset_id), rel)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{context}: {rel} is not the photo's bytes"


def test_an_import_killed_at_a_random_point_leaves_all_or_nothing_and_a_rerun_completes(tmp_path):
    rng, seed = fault_rng("import")
    source = _photos(tmp_path / "shoot")
    other = write(tmp_path / "other" / "x.png", image_bytes((48, 48), pattern=999)).parent
    for point in (rng.choice(_import_points()), ("workbench.data.dedupe:recompute", 1, "before")):
        context = f"seed {seed}, killed {point[2]} call {point[1]} of {point[0]}"
        print(f"[faults] {context}")
        audits = _audit_count("dataset.import")
        child = run_killed(IMPORT.format(source=str(source)), [point])
        committed = "IMPORTED" in child.stdout or _audit_count("dataset.import") > audits
        assert child.returncode == -9 or committed, f"{context}: {child.stderr[-2000:]}"
        dataset_id, items, orphans = _dataset_state()
        # all or nothing: no dataset, or the dataset with every photo (killed after its commit), each file intact
        assert (dataset_id is not None) == committed, context
        if committed:
            _check_import_complete(dataset_id, items, context)
        # the next import (of anything) clears what the killed one left: no file that no row refers to
        import_dataset(CURATOR, other, name="other", workers=1)
        assert _dataset_state()[2] == [], f"{context}: files no row refers to after the next import"
        assert not list(get_settings().path("datasets").glob(".import-*")), f"{context}: a staging folder is left"
        # running the killed import again completes it
        report = import_dataset(CURATOR, source, name="shoot", workers=1)
        assert (report.added, report.already_present) == ((0, N_PHOTOS) if committed else (N_PHOTOS, 0)), context
        dataset_id, items, orphans = _dataset_state()
        _check_import_complete(dataset_id, items, context)
        assert orphans == [], f"{context}: files no row refers to after the re-run: {orphans}"
        assert _audit_count("dataset.import") == audits + (3 if committed else 2), context  # one per commit
        with session_scope() as s:  # the next round starts from an empty workspace again
            s.query(Item).delete()
            s.query(Dataset).delete()
        shutil.rmtree(get_settings().path("datasets"))


def _audit_count(action):
    with session_scope() as s:
        return s.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == action))


# -- an export of approved images (the review page's "Export", `workbench review export`) ---------------------------

N_APPROVED = 4
EXPORT = """
from workbench.auth import system_actor
from workbench.review.export import export_approved
result = export_approved(system_actor("ana", role="approver"), brand="northwind")
print("EXPORTED", result.path.name)
"""


def _export_points():
    """Where an export can die: after each image is added to the zip, after its metadata files, around each rename
    (the zip and its two product-feed files), before and after its audit row is written."""
    points = [("zipfile:ZipFile.write", n, "after") for n in range(1, N_APPROVED + 1)]
    points += [("zipfile:ZipFile.writestr", n, "after") for n in (1, 2)]
    points += [("os:replace", n, when) for n in (1, 2, 3) for when in ("before", "after")]
    points += [("workbench.review.export:audit", 1, when) for when in ("before", "after")]
    return points


def _exports():
    """(visible files in exports/, leftover temporary files, export audit rows as {zip name: sha256})."""
    folder = get_settings().path("exports")
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    hidden = sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []
    with session_scope() as s:
        audited = {a.entity_id: a.after["sha256"] for a in s.scalars(select(AuditLog).where(
            AuditLog.action == "review.export"))}
    return files, hidden, audited


def _check_export(name, audited, context):
    """A zip that is there is whole: every approved image (its bytes), its metadata, its product feed beside it,
    and the audit row that records it (with its checksum)."""
    folder = get_settings().path("exports")
    path = folder / name
    assert name in audited and hashlib.sha256(path.read_bytes()).hexdigest() == audited[name], context
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None, context
        meta = json.loads(zf.read("metadata.json"))
        assert len(meta["images"]) == N_APPROVED, context
        for record in meta["images"]:
            assert hashlib.sha256(zf.read(record["file"])).hexdigest() == record["sha256"], context
    stem = name[:-len(".zip")]
    assert (folder / f"{stem}_products.csv").is_file() and (folder / f"{stem}_products.json").is_file(), context


def test_an_export_killed_at_a_random_point_leaves_a_whole_export_or_none_and_a_rerun_completes():
    from helpers.review import as_role, make_generation
    from workbench.review.export import export_approved

    for i in range(N_APPROVED):
        make_generation(brand="northwind", seed=i, color=(10 * i, 40, 90), review_status="approved")
    rng, seed = fault_rng("export")
    for point in (rng.choice(_export_points()), ("os:replace", 1, "after")):
        context = f"seed {seed}, killed {point[2]} call {point[1]} of {point[0]}"
        print(f"[faults] {context}")
        before = _exports()[0]
        child = run_killed(EXPORT, [point])
        assert child.returncode == -9 or "EXPORTED" in child.stdout, f"{context}: {child.stderr[-2000:]}"
        files, hidden, audited = _exports()
        new = sorted(set(files) - set(before))
        # an export is done when its audit row is written: that one is whole (zip, feed, checksum); files of one
        # that died before are noted for removal (the process's .pending.json), and no audit row claims them
        done = [f for f in new if f.endswith(".zip") and f in audited]
        assert len(done) <= 1, context
        for name in done:
            _check_export(name, audited, context)
        undone = [f for f in new if not any(f.startswith(z[:-len(".zip")]) for z in done)]
        assert not undone or any(h.endswith(".pending.json") for h in hidden), f"{context}: left {undone}"
        zips = done
        # the next export clears what the killed one left, and is whole
        result = export_approved(as_role("approver"), brand="northwind")
        files, hidden, audited = _exports()
        assert hidden == [], f"{context}: temporary files left: {hidden}"
        assert sorted(set(files) - set(before)) == sorted(
            [n for z in zips + [result.path.name] for n in (z, z[:-4] + "_products.csv", z[:-4] + "_products.json")])
        for name in zips + [result.path.name]:
            _check_export(name, audited, context)


# -- the disk filling up: a small tmpfs mounted over one folder of the workspace (the database on another disk) -----

@pytest.fixture
def small_disk():
    mounted = []

    def mount(path, size):
        why = mount_small_disk(path, size)
        if why:
            pytest.skip(why)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        unmount(path)


def test_an_import_onto_a_full_disk_fails_saying_so_and_imports_nothing(tmp_path, small_disk):
    source = tmp_path / "shoot"
    for i in range(N_PHOTOS):
        noise_png(source / f"{i}.png", seed=i)  # ~49 KB each
    datasets = small_disk(get_settings().path("datasets"), "128k")
    with pytest.raises(DiskFull, match=r"disk full: no space left writing .*datasets/\.import-.*bytes free there"):
        import_dataset(CURATOR, source, name="shoot", workers=1)
    with session_scope() as s:
        assert s.scalar(select(func.count(Dataset.id))) == 0 and s.scalar(select(func.count(Item.id))) == 0
    assert list(datasets.iterdir()) == []  # its staging folder is gone: the disk has its space back
    grow_small_disk(datasets, "4m")  # space freed: the same import now completes
    report = import_dataset(CURATOR, source, name="shoot", workers=1)
    assert report.added == N_PHOTOS and not report.skipped
    dataset_id, items, orphans = _dataset_state()
    _check_import_complete(dataset_id, items, "after the disk was grown")


def test_an_export_onto_a_full_disk_fails_saying_so_and_leaves_nothing(small_disk):
    from helpers.review import as_role, make_generation
    from workbench.review import ReviewError
    from workbench.review.export import export_approved

    for i in range(N_APPROVED):
        gen = make_generation(brand="northwind", seed=i, review_status="approved")
        with session_scope() as s:
            path = _generation_path(s, gen)
        noise_png(path, seed=i)  # ~49 KB each: the zip cannot fit in 64 KB
    exports = small_disk(get_settings().path("exports"), "64k")
    with pytest.raises(ReviewError, match=r"disk full: no space left writing .*exports/northwind_.*\.zip .*nothing "
                                          "was exported"):
        export_approved(as_role("approver"), brand="northwind")
    assert list(exports.iterdir()) == [] and _exports()[2] == {}  # no file, no temporary, no audit row
    grow_small_disk(exports, "4m")
    result = export_approved(as_role("approver"), brand="northwind")
    _check_export(result.path.name, _exports()[2], "after the disk was grown")


def _generation_path(s, generation_id):
    from workbench.generate.tables import Generation

    return Path(s.get(Generation, generation_id).image_path)


# -- the worker (consumer) alone SIGKILLed while its job runs ---------------------------------------------------------

@pytest.mark.slow
def test_a_consumer_killed_while_its_job_runs_the_job_finishes_and_the_next_consumer_keeps_its_outcome(tmp_path):
    """The job runs in its own process and session, writing its own progress and outcome: the consumer's death
    does not reach it. The next consumer's start-up reconcile leaves the finished job as it is."""
    import os
    import signal
    import time

    from conftest import _worker
    from workbench import jobs

    rng, seed = fault_rng("consumer")
    steps, at = 30, rng.randint(1, 20)
    print(f"[faults] killing the consumer at step {at} of {steps}")
    first = _worker(tmp_path)
    consumer = next(first)
    job_id = jobs.enqueue("selftest", {"steps": steps, "delay": 0.1})
    deadline = time.monotonic() + 90
    while jobs.get_job(job_id).progress_step < at and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(consumer.pid, signal.SIGKILL)  # the consumer only: the job's process lives in its own session
    consumer.wait()
    job = jobs.wait_for(job_id, timeout=90)
    assert job.status == "done" and (job.progress_step, job.progress_total) == (steps, steps), (seed, job.message)
    next(first, None)
    assert jobs.reconcile() == [] and jobs.get_job(job_id).status == "done"  # what the next consumer runs first
