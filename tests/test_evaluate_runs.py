"""Evaluation runs: image sets x reference set x metrics, stored per image and aggregated; unavailable models never
give a number; OCR results reach the review queue; config errors name the setting; prompt suites queue identical
inputs; the CLI; and one run as a job end to end through a real worker."""
import csv
import io
import os
import signal
import subprocess
import sys

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from workbench import jobs
from workbench.data.demo import draw_garment, import_demo_catalog
from workbench.data.split import split_dataset
from workbench.data.store import get_dataset, image_path
from workbench.data.tables import Item
from helpers.data import CURATOR
from workbench.db import AuditLog, Job, session_scope
from workbench.evaluate.config import EvalConfig, EvaluationError, ImageSet, ReferenceSet, resolve_image_set
from workbench.evaluate.results import export_csv, get_evaluation, image_rows, result_rows
from workbench.evaluate.run import create_evaluation, run_evaluation, start_evaluation
from workbench.evaluate.suites import SuiteVariant, enqueue_prompt_suite
from workbench.generate.tables import Generation
from workbench.models import tiny
from helpers.review import as_role
from workbench.review.tables import ReviewCheckRow
from workbench.settings import get_settings, reload_settings

UNAVAILABLE_LPIPS = "unavailable: torchvision:alexnet — run `workbench models pull`"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    return {"open_clip": tiny.save_tiny_open_clip(root / "clip"), "blip_itm": tiny.save_tiny_blip_itm(root / "blip"),
            "feature_extractor": tiny.save_tiny_feature_extractor(root / "fid")}


def _backbones(kit):
    return {"clip_scorer": str(kit["open_clip"]), "blip_itm": str(kit["blip_itm"]),
            "fid_inception": str(kit["feature_extractor"])}


def _generation(s, batch, path, prompt, seed, loras=()):
    row = Generation(batch=batch, prompt=prompt, brand="aurelo", model="tiny-sdxl", scheduler="euler", dtype="fp32",
                     seed=seed, steps=2, guidance=5.0, width=128, height=128, image_path=str(path), params={},
                     loras=list(loras), demo_model=True)
    s.add(row)
    s.flush()
    return row.id


@pytest.fixture
def catalog(workspace):
    """The demo catalog (128 px) as the reference dataset, an 'aurelo' brand profile, and two generation batches:
    'ft' (checkpoint 500 of a LoRA): the val photos re-saved as PNGs under their captions, one more image for the
    first caption, and an image of that caption without the wordmark; 'base': two shots without a wordmark."""
    import_demo_catalog(CURATOR, seed=0, size=128, colours=1)
    ds = get_dataset("demo-aurelo")
    split_dataset(CURATOR, ds.id, val=0.4, test=0.0, stratify=False)
    brands = get_settings().path("prompt_templates", "brands")
    brands.mkdir(parents=True)
    (brands / "aurelo.yaml").write_text("title: Aurelo\nlogo_text: AURELO\n")
    out = get_settings().path("generations")
    ids = {"ft": [], "base": []}
    lora = [{"path": "/runs/7/checkpoints/checkpoint-500/lora", "scale": 0.8, "name": "aurelo-v1"}]
    with session_scope() as s:
        items = s.scalars(select(Item).where(Item.dataset_id == ds.id, Item.split == "val").order_by(Item.id)).all()
        (out / "ft").mkdir(parents=True)
        (out / "base").mkdir(parents=True)
        for i, item in enumerate(items):
            p = out / "ft" / f"{i}.png"
            Image.open(image_path(item)).save(p)
            ids["ft"].append(_generation(s, "ft", p, item.caption, i, lora))
        assert len(items) >= 3
        first = items[0].caption
        p = out / "ft" / "again.png"
        Image.open(image_path(items[1])).save(p)
        ids["ft"].append(_generation(s, "ft", p, first, 50, lora))
        p = out / "ft" / "plain.png"
        draw_garment("cap", (30, 42, 94), 128, brand="").save(p)
        ids["ft"].append(_generation(s, "ft", p, first, 51, lora))
        for i, garment in enumerate(("t-shirt", "hoodie")):
            p = out / "base" / f"{i}.png"
            draw_garment(garment, (190, 30, 45), 128, brand="").save(p)
            ids["base"].append(_generation(s, "base", p, first, 60 + i))
        captions = [it.caption for it in items]
    return {"ids": ids, "captions": captions, "dataset": ds.name}


@pytest.fixture(scope="module")
def lpips_net():
    import torch
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    torch.manual_seed(0)
    return _NoTrainLpips(net="squeeze", pretrained=True, pnet_rand=True)


def _by(rows, image_set, metric):
    [row] = [r for r in rows if r["image_set"] == image_set and r["metric"] == metric]
    return row


def test_a_run_stores_per_image_scores_and_aggregates_with_intervals(kit, catalog, lpips_net):
    cfg = EvalConfig(name="ckpt 500 vs base", image_sets=[ImageSet("ft", batch="ft"), ImageSet("base", batch="base")],
                     reference=ReferenceSet(catalog["dataset"], "val"), backbones=_backbones(kit), batch_size=4,
                     paired_px=128)
    eval_id = create_evaluation(as_role("analyst"), cfg)
    seen = []
    result = run_evaluation(eval_id, progress=lambda step, total, msg: seen.append((step, total)),
                            models={"lpips_backbone": lpips_net})
    n_ref, n_ft = len(catalog["captions"]), len(catalog["ids"]["ft"])
    assert result["images"] == n_ft + 2 and result["reference"] == n_ref
    assert seen[-1] == (n_ref + n_ft + 2, n_ref + n_ft + 2)

    e = get_evaluation(eval_id)
    assert e.status == "done" and e.reference["n"] == n_ref and e.reference["split"] == "val"
    assert e.backbones["clip"]["ref"] == str(kit["open_clip"]) and e.backbones["clip"]["demo_model"] is True
    assert e.backbones["ocr"]["backend"].startswith("rapidocr")
    assert e.backbones["preference"]["status"] == "unavailable"

    rows = result_rows([eval_id])
    fid = _by(rows, "ft", "fid")
    assert fid["status"] == "ok" and fid["reliable"] is False and fid["n"] == n_ft
    assert fid["ci_low"] is not None and f"unreliable: n={n_ft}" in fid["display"]
    assert _by(rows, "ft", "kid")["detail"]["subset_size"] == min(n_ref, n_ft)
    clip = _by(rows, "ft", "clip_cosine")
    assert clip["ci_low"] <= clip["value"] <= clip["ci_high"] and clip["n"] == n_ft and clip["top5"] is not None
    assert _by(rows, "ft", "clip_score_100")["value"] >= 0
    assert (clip["step"], clip["fine_tuned"]) == (500, True)
    assert (_by(rows, "base", "clip_cosine")["step"], _by(rows, "base", "clip_cosine")["fine_tuned"]) == (None, False)
    # closeness to the product photo: every 'ft' image's prompt is a val caption; exact copies score perfectly
    psnr, ssim, lpips = (_by(rows, "ft", m) for m in ("psnr_ref", "ssim_ref", "lpips_ref"))
    assert psnr["detail"]["paired"] == n_ft and ssim["median"] == pytest.approx(1.0, abs=1e-4)
    assert psnr["median"] == 100.0 and lpips["median"] == pytest.approx(0.0, abs=1e-6)
    assert ssim["value"] < 0.99 and psnr["value"] < 100  # the two images that are not the photo pull the means down
    assert _by(rows, "ft", "lpips_diversity")["value"] > 0  # the first caption has three different images
    assert _by(rows, "ft", "brand_consistency")["status"] == "ok"
    ocr = _by(rows, "ft", "ocr_pass")
    assert ocr["value"] == pytest.approx((n_ft - 1) / n_ft) and ocr["detail"]["failed"] == 1
    assert _by(rows, "base", "ocr_pass")["value"] == 0.0
    pick = _by(rows, "ft", "pickscore")
    assert pick["status"] == "unavailable" and pick["value"] is None
    assert pick["display"] == "unavailable: yuvalkirstain/PickScore_v1 — run `workbench models pull`"

    images = image_rows(eval_id)
    assert len(images) == n_ft + 2
    plain = next(i for i in images if i["image"].endswith("plain.png"))
    assert plain["ocr_pass"] == 0.0 and plain["provenance"]["step"] == 500 and plain["provenance"]["seed"] == 51
    assert os.path.isfile(plain["ocr_overlay"]) and plain["reference"]  # paired with the first caption's photo
    good = next(i for i in images if i["image"].endswith("/0.png"))
    assert good["ocr_pass"] == 1.0 and good["ocr_read"].upper() == "AURELO"
    with session_scope() as s:
        checks = {c.generation_id: c.passed for c in s.scalars(select(ReviewCheckRow))}
        actors = {a.actor for a in s.scalars(select(AuditLog).where(AuditLog.action == "review.check.ocr"))}
    assert checks[plain["generation_id"]] is False and checks[good["generation_id"]] is True
    assert len(checks) == n_ft + 2 and actors == {"evaluation"}

    table = list(csv.DictReader(io.StringIO(export_csv([eval_id]))))
    assert len(table) == len(rows) and {"ft", "base"} == {r["image_set"] for r in table}
    assert any(r["metric"] == "pickscore" and r["status"] == "unavailable" and r["value"] == "" for r in table)


def test_missing_models_are_unavailable_and_never_a_number(catalog):
    cfg = EvalConfig(image_sets=[ImageSet("ft", batch="ft")], reference=ReferenceSet(catalog["dataset"], "val"),
                     metrics=["fid_kid", "clip", "blip", "paired", "diversity"])
    cfg.paired_px = 64
    eval_id = create_evaluation(as_role("analyst"), cfg)
    run_evaluation(eval_id)
    rows = result_rows([eval_id])
    for metric in ("fid", "kid", "clip_cosine", "clip_score_100", "blip_itm", "lpips_ref", "lpips_diversity"):
        r = _by(rows, "ft", metric)
        assert r["status"] == "unavailable" and r["value"] is None and r["ci_low"] is None, metric
        assert r["display"].startswith("unavailable: ") and r["display"].endswith("— run `workbench models pull`")
    assert _by(rows, "ft", "lpips_ref")["display"] == UNAVAILABLE_LPIPS
    assert _by(rows, "ft", "fid")["display"] == \
        "unavailable: torch-fidelity:inception-v3-compat — run `workbench models pull`"
    assert _by(rows, "ft", "ssim_ref")["status"] == "ok"  # SSIM and PSNR need no model


def test_without_a_reference_set_reference_metrics_say_so(kit, catalog):
    cfg = EvalConfig(image_sets=[ImageSet("ft", batch="ft")], metrics=["fid_kid", "brand", "clip"],
                     backbones=_backbones(kit))
    eval_id = create_evaluation(as_role("analyst"), cfg)
    run_evaluation(eval_id)
    rows = result_rows([eval_id])
    assert _by(rows, "ft", "fid")["display"] == "no data: no reference set chosen"
    assert _by(rows, "ft", "brand_consistency")["status"] == "no_data"
    assert _by(rows, "ft", "clip_cosine")["status"] == "ok"


def test_config_errors_name_the_setting(catalog):
    with pytest.raises(EvaluationError, match="image_sets is empty"):
        EvalConfig(image_sets=[]).check()
    with pytest.raises(EvaluationError, match=r"metrics \['fidd'\] unknown"):
        EvalConfig(image_sets=[ImageSet("a", batch="ft")], metrics=["fidd"]).check()
    with pytest.raises(EvaluationError, match="repeated: a"):
        EvalConfig(image_sets=[ImageSet("a", batch="ft"), ImageSet("a", batch="base")]).check()
    with pytest.raises(EvaluationError, match=r"backbones \['clip'\]"):
        EvalConfig(image_sets=[ImageSet("a", batch="ft")], backbones={"clip": "x"}).check()
    with pytest.raises(EvaluationError, match="unknown evaluation setting"):
        EvalConfig.from_dict({"image_sets": [], "metric": ["clip"]})
    with pytest.raises(EvaluationError, match=r"generation ids \[999\] do not exist"):
        resolve_image_set(ImageSet("x", generation_ids=[catalog["ids"]["ft"][0], 999]))
    with pytest.raises(EvaluationError, match="has no images"):
        resolve_image_set(ImageSet("x", batch="no-such-batch"))
    eval_id = create_evaluation(as_role("analyst"), EvalConfig(image_sets=[ImageSet("a", batch="ft")],
                                                               metrics=["paired"],
                                           reference=ReferenceSet(catalog["dataset"], "test")))
    with pytest.raises(EvaluationError, match="no photos in split 'test'"):
        run_evaluation(eval_id)
    assert get_evaluation(eval_id).status == "failed" and "split 'test'" in get_evaluation(eval_id).error


def test_a_prompt_suite_queues_the_same_prompts_and_seeds_for_every_variant(workspace):
    sets = enqueue_prompt_suite(as_role("analyst"), "ss26", ["a red tee", "a navy cap"], [
        SuiteVariant("base"), SuiteVariant("ckpt 1000", loras=[{"path": "/runs/3/checkpoint-1000"}], step=1000,
                                           params={"rank": 8})], seed=7, images_per_prompt=2, width=64, height=64,
        steps=2, device="cpu")
    assert [(s.label, s.batch, s.step, s.params) for s in sets] == [
        ("base", "suite-ss26-base", None, {}), ("ckpt 1000", "suite-ss26-ckpt_1000", 1000, {"rank": 8})]
    with session_scope() as s:
        configs = [j.config for j in s.scalars(select(Job).where(Job.kind == "generate").order_by(Job.id))]
    assert [c["batch"] for c in configs] == ["suite-ss26-base", "suite-ss26-ckpt_1000"]
    assert configs[0]["prompts"] == configs[1]["prompts"] and configs[0]["params"] == configs[1]["params"]
    assert configs[0]["params"]["seed"] == 7 and configs[0]["params"]["num_images"] == 2
    assert configs[1]["spec"]["loras"] == [{"path": "/runs/3/checkpoint-1000", "scale": 1.0}]
    with pytest.raises(EvaluationError, match="unique labels"):
        enqueue_prompt_suite(as_role("analyst"), "x", ["p"], [SuiteVariant("a"), SuiteVariant("a")])


def test_cli_evaluate_show_and_export(kit, catalog, monkeypatch, tmp_path):
    from workbench.cli import app

    monkeypatch.setenv("WORKBENCH_MODELS__CLIP_SCORER", str(kit["open_clip"]))
    reload_settings()
    runner = CliRunner()
    bad = runner.invoke(app, ["evaluate", "--reference", catalog["dataset"]])
    assert bad.exit_code == 2 and "image_sets is empty" in bad.output
    done = runner.invoke(app, ["evaluate", "--batch", "ft", "--batch", "base", "--reference", catalog["dataset"],
                               "--metrics", "clip,paired", "--wait", "--name", "cli run"])
    assert done.exit_code == 0, done.output
    assert "100% " in done.output and "evaluation 1 · cli run · done" in done.output
    assert "ft" in done.output and UNAVAILABLE_LPIPS in done.output
    shown = runner.invoke(app, ["eval", "show", "1", "--images", "2", "--sort", "clip_cosine"])
    assert shown.exit_code == 0 and "lowest clip_cosine:" in shown.output
    listed = runner.invoke(app, ["eval", "list"])
    assert "cli run" in listed.output and "[ft, base]" in listed.output
    out = tmp_path / "e.csv"
    exported = runner.invoke(app, ["eval", "export", "1", "--out", str(out)])
    assert exported.exit_code == 0 and out.read_text().startswith("evaluation,name,image_set,step,metric")
    assert runner.invoke(app, ["eval", "show", "9"]).exit_code == 2


@pytest.fixture
def worker(workspace, tmp_path):
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True, stdout=log,
                            stderr=subprocess.STDOUT)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()


def test_evaluation_job_end_to_end_through_the_worker(catalog, worker):
    # The OCR check only: the job process then never imports torch (~10 s on 2 busy cores); the model metrics run
    # through the same run_evaluation in the tests above.
    cfg = EvalConfig(image_sets=[ImageSet("ft", batch="ft")], reference=ReferenceSet(catalog["dataset"], "val"),
                     metrics=["ocr"])
    eval_id = start_evaluation(as_role("analyst"), cfg)
    job = jobs.wait_for(get_evaluation(eval_id).job_id, timeout=180)
    assert job.status == "done", (job.message, job.error)
    total = len(catalog["captions"]) + len(catalog["ids"]["ft"])
    assert (job.progress_step, job.progress_total) == (total, total)
    assert job.kind == "evaluate" and job.result["evaluation_id"] == eval_id and job.result["images"] == total - \
        len(catalog["captions"])
    assert get_evaluation(eval_id).status == "done"
    rows = result_rows([eval_id])
    assert _by(rows, "ft", "ocr_pass")["detail"]["failed"] == 1 and get_evaluation(eval_id).backbones["ocr"]["backend"]
    with session_scope() as s:
        assert len(s.scalars(select(ReviewCheckRow)).all()) == len(catalog["ids"]["ft"])


def test_cli_suite_queues_one_generate_job_per_variant_with_the_same_prompts_and_seeds(workspace, monkeypatch):
    from typer.testing import CliRunner

    from workbench import jobs
    from workbench.cli import app
    from workbench.jobs import supervisor

    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)
    monkeypatch.setattr(supervisor, "_queue", lambda settings=None, gpu=False: (None, lambda job_id: None))  # rows only
    result = CliRunner().invoke(app, ["eval", "suite", "ss26", "--prompt", "a red tee", "--prompt", "a navy cap",
                                      "--variant", "base=base", "--variant", "ckpt10=+/runs/3/ckpt-10:0.8@10",
                                      "--seed", "5", "--size", "64", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "--batch suite-ss26-base --batch suite-ss26-ckpt10" in result.output
    queued = sorted(jobs.list_jobs(kind="generate"), key=lambda j: j.id)
    assert [j.config["batch"] for j in queued] == ["suite-ss26-base", "suite-ss26-ckpt10"]
    assert queued[0].config["prompts"] == queued[1].config["prompts"]
    assert {j.config["params"]["seed"] for j in queued} == {5}
    assert queued[0].config["spec"]["loras"] == []
    assert queued[1].config["spec"]["loras"] == [{"path": "/runs/3/ckpt-10", "scale": 0.8}]
    bad = CliRunner().invoke(app, ["eval", "suite", "x", "--prompt", "p", "--variant", "nolabel"])
    assert bad.exit_code == 2 and "LABEL=base" in bad.output
