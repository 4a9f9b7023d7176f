"""The offline demo workspace: everything a newcomer needs to walk the whole product, built in a couple of minutes on
a laptop CPU with no downloads.

    workbench demo                 # or "Create demo workspace" on Home (a job with progress)

Steps (each skipped when already done, so running it twice is safe):
 1. models      the tiny SDXL-architecture kit (+ tiny CLIP, BLIP, FID extractor) in ``<workspace>/models/``, and
                ``<workspace>/workbench.toml`` pointing the model settings at it;
 2. catalog     the synthetic AURELO catalog imported as a dataset, split into train/val;
 3. brand       the AURELO brand profile (trigger, palette, logo text, gate);
 4. users       one account per role (password ``DEMO_PASSWORD``), marked as demo accounts: added only to a workspace
                where nobody else has an account (checked in the transaction that adds them), and the password is
                shown (Home, the summary) only while that stays so;
 5. training    a finished short LoRA run on the catalog (through the real launcher);
 6. prompts     a saved prompt batch for the brand;
 7. generation  that batch generated with the demo LoRA and the CLIP gate (every attempt kept with its score);
 8. evaluation  an evaluation run of the generated batch against the catalog's val split;
 9. products    the catalog's SKUs get EUR prices and product URLs on the invented shop (https://shop.aurelo.example),
                their colours are measured from their photos, two of them get images generated for them (fidelity
                scored against their photos), and one recoloured catalog photo is recorded as a generation for its
                SKU to show the fidelity gate holding it (labelled as such; its score is computed like any other),
                one product scene around a SKU's photo and the brand's SVG logo placed on a tee, read back by OCR;
10. shop        the invented mini shop shipped with the workbench, crawled under https://shop.aurelo.example through
                a file-backed transport (no network) and imported as dataset ``aurelo-shop`` with its products;
11. scorer      the tiny CLIP tuned on the catalog (``tuned:aurelo-clip``, its card with held-out recall), named in
                the brand profile so the brand's gate, evaluations and retrieval use it;
12. video       a 16-frame, 2 s spin video of a catalog photo from the tiny Stable Video Diffusion, in the review queue;
and the generated images wait in the review queue. Everything is labelled as demo (tiny-kit models).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.auth import system_actor
from workbench.settings import get_settings, reload_settings, workspace_settings_file

DEMO_PASSWORD = "aurelo-demo"
DEMO_USERS = {"mia": "marketer", "ari": "analyst", "ana": "approver", "adam": "admin"}
# Steps of the demo LoRA (rank 8, lr 2e-3, batch 4; ~20 s on 2 cores): with it 95% of colour-free prompts come out in
# the signature violet, against 0% without; 40 steps moved 29% (docs/PERFORMANCE.md, bench/demo_colour_accuracy.py).
DEMO_TRAIN_STEPS = 120
DEMO_BRAND = "aurelo"
DEMO_BATCH = "demo-aurelo"
DEMO_PRODUCT_BATCH = "demo-aurelo-products"
DEMO_GATE_BATCH = "demo-fidelity-gate"
STEPS = ("models", "catalog", "brand", "users", "training", "prompts", "generation", "evaluation", "products", "shop",
         "scorer", "video")

BRAND_YAML = """# The demo brand (invented). Made by `workbench demo`.
name: aurelo
title: AURELO (demo brand)
trigger: aurelo_style
logo_text: AURELO
palette:
  navy blue: "#1E2A5E"
  red: "#BE1E2D"
  olive: "#6B7030"
  black: "#1C1C1E"
required_phrases: []
forbidden_terms: [knockoff, replica]
negative: "blurry, lowres, watermark"
gate:
  clip_threshold: 0.9      # the tiny demo CLIP scores low: every image gets a second attempt, so the loop shows
  max_attempts: 2
fidelity:
  max_delta_e: 10          # the 64-px demo model draws a product's colour within ~7-17 ΔE; a real brand keeps 5
"""


class DemoRefused(RuntimeError):
    """The workspace has accounts of its own: the demo would add accounts with a published password beside them."""


REFUSED = ("this workspace already has users, and the demo would add accounts with a published password (an admin "
           "among them): nothing was built. Build the demo in a workspace of its own: "
           "`WORKBENCH_WORKSPACE=demo-workspace workbench demo`.")


@dataclass
class DemoReport:
    workspace: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ids: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"demo workspace: {self.workspace}"]
        lines += [f"  {step}: {'already there' if step in self.skipped else 'built'}"
                  + (f" ({self.ids[step]})" if step in self.ids else "") for step in STEPS
                  if step in self.done or step in self.skipped]
        accounts = ", ".join(f"{u} ({r})" for u, r in DEMO_USERS.items())
        if demo_password_public():
            lines.append(f"demo accounts (password {DEMO_PASSWORD}): {accounts}")
        else:  # the workspace has real accounts now: an admin password is not for every reader of this text
            lines.append(f"demo accounts: {accounts} (this workspace has other accounts too, so their password is not "
                         "shown here; an admin resets it with `workbench users reset-password`)")
        return "\n".join(lines)


def _state_path() -> Path:
    return get_settings().path("demo", "state.json")


def _state() -> dict[str, Any]:
    path = _state_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(state: dict[str, Any]) -> None:
    from workbench.files import write_json_atomic

    _state_path().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(_state_path(), state)


def is_demo_workspace() -> bool:
    return _state_path().exists()


def demo_password_public() -> bool:
    """Whether the demo accounts' (published) password may be shown: only while every account in the workspace is a
    demo account. Once anyone else has one (the owner's admin), the demo admin is a way in, not a tour."""
    from sqlalchemy import func, select

    from workbench.db import User, session_scope

    with session_scope() as s:
        return not s.scalar(select(func.count()).select_from(User).where(User.is_demo.is_(False)))


def refuse_if_in_use(state: dict[str, Any] | None = None) -> None:
    """DemoRefused when the demo's accounts are still to be added and someone else already has an account (a first
    check, before minutes of building; the users step checks again in the transaction that adds them)."""
    state = _state() if state is None else state
    if "users" not in state and not demo_password_public():
        raise DemoRefused(REFUSED)


def build_demo(progress: Callable[[int, int, str], None] | None = None, size: int = 128,
               train_steps: int = DEMO_TRAIN_STEPS) -> DemoReport:
    """Build (or complete) the demo workspace; ``progress(step, total, message)`` after each step."""
    from workbench.db import init_db

    progress = progress or (lambda step, total, message: None)
    init_db()
    state = _state()
    refuse_if_in_use(state)
    report = DemoReport(workspace=str(get_settings().workspace_dir))
    builders = {"models": _models, "catalog": lambda s: _catalog(s, size), "brand": _brand, "users": _users,
                "training": lambda s: _training(s, train_steps), "prompts": _prompts, "generation": _generation,
                "evaluation": _evaluation, "products": _products, "shop": _shop, "scorer": _scorer, "video": _video}
    for i, step in enumerate(STEPS):
        progress(i, len(STEPS), f"{step}…")
        if step in state:
            report.skipped.append(step)
        else:
            with nested_progress(lambda inner, i=i, step=step: progress(i, len(STEPS), f"{step}… {inner}")):
                state[step] = builders[step](state)
            _save_state(state)
            report.done.append(step)
        report.ids[step] = state[step]
    progress(len(STEPS), len(STEPS), "demo workspace ready")
    return report


@contextmanager
def nested_progress(report: Callable[[str], None], every: float = 1.0):
    """While a step runs jobs in this process (the training run, the generation batch), pass their step counts on:
    ``report("step 7/20")`` each time the newest such job's progress changes (read from its job row every ``every``
    seconds, in a thread). A stage that reports itself (the evaluation) calls ``_STAGE.report`` instead."""
    import threading

    from workbench.jobs import list_jobs

    newest = list_jobs(limit=1)
    since = newest[0].id if newest else 0
    stop = threading.Event()
    last: list[str] = []

    def say(text: str) -> None:
        if not last or last[0] != text:
            last[:] = [text]
            report(text)

    def watch() -> None:
        while not stop.wait(every):
            try:
                jobs = [j for j in list_jobs(limit=5) if j.id > since and j.progress_total]
            except Exception:  # noqa: BLE001 - a busy database: try again at the next tick
                continue
            if jobs:
                unit = {"train_lora": "step ", "generate": "image "}.get(jobs[0].kind, "")
                say(f"{unit}{jobs[0].progress_step}/{jobs[0].progress_total}")

    _STAGE.report = lambda done, total, message=None: say(message or f"{done}/{total}")
    thread = threading.Thread(target=watch, name="demo-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _STAGE.report = None


class _Stage:
    report: Callable[..., None] | None = None


_STAGE = _Stage()


# -- the steps ----------------------------------------------------------------------------------------------------

def _models(state: dict) -> str:
    from workbench.models.demo_base import install_demo_base
    from workbench.models.tiny import kit_model_settings, make_tiny_kit

    kit = make_tiny_kit(get_settings().path("models"))
    models = kit_model_settings(kit)
    # SDXL itself is the shipped demo base model (trained on the synthetic catalog, so it draws garments in the
    # prompt's colour); the random tiny SDXL stays in the kit, which the fast tests use.
    base = install_demo_base(get_settings().path("models", "demo-base"))
    models.update(sdxl_base=str(base), vae=str(base))
    path = workspace_settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `workbench demo`: the demo workspace uses the offline demo models. Delete this file (or set",
             "# WORKBENCH_MODELS__* / your workbench.toml) to use real SDXL weights.", "[models]"]
    lines += [f'{k} = "{v}"' for k, v in sorted(models.items())]
    path.write_text("\n".join(lines) + "\n")
    reload_settings()
    return str(path)


def _catalog(state: dict, size: int) -> int:
    from workbench.data.demo import import_demo_catalog
    from workbench.data.split import split_dataset
    from workbench.products.importing import from_import
    demo = system_actor("demo", role="marketer")  # before the demo users exist
    report = import_demo_catalog(demo, size=size)
    from_import(demo, report.dataset_id, report)  # the catalog's products
    split_dataset(demo, report.dataset_id, 0.25, 0.0, 0)
    return report.dataset_id


def _brand(state: dict) -> str:
    from workbench.prompts.library import save_brand_text

    from workbench import auth
    from workbench.review.queue import set_policy

    path = save_brand_text(auth.system_actor("demo"), BRAND_YAML)  # brand profiles are an admin's (settings)
    # The demo model cannot draw the wordmark, so every OCR check fails: flag those images instead of holding them
    # back (the default), so an approver sees them in the queue.
    set_policy(auth.system_actor("demo"), DEMO_BRAND, on_ocr_fail="flag")
    return str(path)


def _users(state: dict) -> list[str]:
    from workbench import auth

    try:  # the check that nobody else has an account and the insert are one transaction
        return auth.create_demo_users(DEMO_USERS, DEMO_PASSWORD)
    except auth.PermissionDenied:
        raise DemoRefused(REFUSED) from None


def _training(state: dict, steps: int) -> int:
    from workbench.jobs.runner import run_inline
    from workbench.train import runs
    from workbench.train.config import build_config, load_config

    from workbench.data.demo import import_demo_catalog
    from workbench.data.demo import SIGNATURE

    # The LoRA learns a brand variant the base model has never seen: the garments in a new signature colour, so
    # generating "a t-shirt by aurelo" with it visibly moves toward that colour (bench/demo_colour_accuracy.py).
    variant = import_demo_catalog(system_actor("demo", role="marketer"), size=64, colours=1, palette=[SIGNATURE],
                                  name="demo-aurelo-violet",
                                  out_dir=get_settings().path("demo", "catalog-violet")).dataset_id
    config = Path(__file__).resolve().parent.parent / "configs" / "tiny_cpu_demo.yaml"
    values = load_config(config) if config.exists() else {"resolution": 64, "rank": 4, "learning_rate": 1e-3}
    values.update(dataset=str(variant), max_train_steps=steps, checkpointing_steps=max(1, steps // 2),
                  run_name="aurelo violet demo LoRA", instance_prompt=None,
                  validation_prompts=["a photo of a t shirt by aurelo, on a white background",
                                      "a photo of a navy blue hoodie by aurelo, on a white background"])
    run_id = runs.start(system_actor("mia", role="marketer"), build_config(values, "in the demo"),
                        queue=False, num_processes=1)
    run_inline(run_id)
    info = runs.get_run(run_id)
    if info.status == "stopped":  # the demo job was asked to stop while it trained: it ends stopped, not failed
        from workbench.jobs import JobStopped

        raise JobStopped()
    if info.status != "done":
        raise RuntimeError(f"the demo training run {run_id} ended {info.status}: {info.message}")
    return run_id


def _prompts(state: dict) -> int:
    from workbench.prompts.expand import BatchSpec, expand_batch
    from workbench.prompts.library import load_library
    from workbench.prompts.store import save_batch

    library = load_library()
    spec = BatchSpec(template="t-shirt", slots={"color": ["navy", "black", "olive", "heather grey"]}, brand=DEMO_BRAND)
    return save_batch(system_actor("mia", role="marketer"), expand_batch(library, spec), "AURELO demo tees").id


def _generation(state: dict) -> int:
    from workbench.generate.batch import BatchConfig, enqueue_batch
    from workbench.generate.pipeline import LoraSpec, PipelineSpec
    from workbench.jobs.runner import run_inline
    from workbench.train.runs import lora_of

    lora = lora_of(int(state["training"]))
    spec = PipelineSpec(model=get_settings().models.sdxl_base, device="cpu",
                        loras=(LoraSpec(lora.path, 1.0, lora.name),) if lora else ())
    config = BatchConfig(spec=spec, prompt_batch_id=int(state["prompts"]), batch=DEMO_BATCH,
                         params={"width": 64, "height": 64, "steps": 20, "seed": 7, "num_images": 1},
                         gate={"threshold": 0.9, "max_attempts": 2})
    job_id = enqueue_batch(system_actor("mia", role="marketer"), config, title=f"generate {DEMO_BATCH}", queue=False)
    run_inline(job_id)
    from workbench.jobs import get_job

    job = get_job(job_id)
    if job.status == "stopped":  # as for training: a stop of the demo job reached its generation
        from workbench.jobs import JobStopped

        raise JobStopped()
    if job.status != "done":
        raise RuntimeError(f"the demo generation job {job_id} ended {job.status}: {job.message}")
    return job_id


def _evaluation(state: dict) -> int | None:
    try:
        from workbench.evaluate.config import EvalConfig, ImageSet, ReferenceSet
        from workbench.evaluate.run import create_evaluation, run_evaluation
    except ImportError:  # evaluation not installed in this build
        return None
    cfg = EvalConfig(name="demo: AURELO tees vs the catalog", image_sets=[ImageSet("demo LoRA", batch=DEMO_BATCH)],
                     reference=ReferenceSet(dataset=int(state["catalog"]), split="val"), brand=DEMO_BRAND)
    eval_id = create_evaluation(system_actor("ari", role="analyst"), cfg)
    # in this process (the demo may itself be a job: it never waits on the queue); its image count goes to the demo's
    # progress message
    run_evaluation(eval_id, progress=_STAGE.report)
    return eval_id


def _products(state: dict) -> dict[str, Any]:
    from decimal import Decimal

    from workbench.data.demo import PRICES_EUR, SHOP_URL
    from workbench.fidelity import load_fidelity_models
    from workbench.generate.pipeline import PipelineSpec, build_pipeline
    from workbench.generate.product import generate_for_product, product_prompt
    from workbench.generate.sample import GenerationParams
    from workbench.products import list_products, measure_colour, update_product

    mia = system_actor("mia", role="marketer")  # prices, photos and generation are a marketer's
    products = [p for p in list_products(dataset_id=int(state["catalog"]), limit=1000) if p.item_ids]
    for p in products:
        price = PRICES_EUR.get(p.category)
        update_product(mia, p.sku, url=SHOP_URL.format(sku=p.sku),
                       **({"price": Decimal(price), "currency": "EUR"} if price else {}))
        measure_colour(mia, p.sku)
    # A small product batch: one jacket and one t-shirt, generated for their SKUs and scored against their photos.
    picks = [next(p for p in products if p.category == c) for c in ("Jackets", "Tshirts")
             if any(p.category == c for p in products)]
    assembled = build_pipeline(PipelineSpec(model=get_settings().models.sdxl_base, device="cpu"))
    models = load_fidelity_models()
    generated = []
    for i, p in enumerate(picks):
        pp = product_prompt(p.sku)
        params = GenerationParams(prompt=pp.prompt, negative_prompt=pp.negative, width=64, height=64, steps=20,
                                  seed=11 + i, brand=pp.brand, template=pp.template)
        out = generate_for_product(mia, assembled, p.sku, params, DEMO_PRODUCT_BATCH, brand=pp.brand or None,
                                   models=models)
        generated += [img.generation_id for img in out.images]
    held = _gate_example(mia, picks[0] if picks else products[0], models)
    from workbench.evaluate.placement import demo_scene_and_logo  # issue #21: one product scene, one placed logo
    scenes = demo_scene_and_logo(mia, (picks[0] if picks else products[0]).sku, DEMO_BRAND, assembled, models)
    return {"priced": len(products), "generated": generated, "held": held, "scenes": scenes}


def _scorer(state: dict) -> dict[str, Any]:
    from workbench.train.clip_tune import demo_scorer

    return demo_scorer(int(state["catalog"]), DEMO_BRAND)


def _video(state: dict) -> dict[str, Any]:
    from workbench.generate.video import demo_video

    return demo_video(int(state["catalog"]), DEMO_BRAND)


def _gate_example(actor, product, models) -> int:
    """The fidelity gate at work: the product's own catalog photo with its colour channels swapped (red cloth turns
    blue), recorded as a generation for its SKU and labelled as a demo of the gate; the check is the real one."""
    import numpy as np
    from PIL import Image

    from workbench.generate.product import check_fidelity
    from workbench.generate.sample import GeneratedImage, a1111_parameters, record_generation, write_png
    from workbench.products import link_generation

    with Image.open(product.images[0]) as im:
        photo = im.convert("RGB")
    recoloured = Image.fromarray(np.asarray(photo)[..., [2, 0, 1]])
    prompt = f"demo of the fidelity gate: {product.name} with its colours swapped (not a generated image)"
    prov = {"workbench_version": "demo", "model": "demo: recoloured catalog photo", "model_revision": "",
            "demo_model": True, "vae": "", "loras": [], "quantization": "none", "dtype": "fp32", "scheduler": "none",
            "prompt": prompt, "negative_prompt": "", "prompt_id": None, "template": "", "brand": DEMO_BRAND,
            "products": [product.sku], "seed": 0, "base_seed": 0, "steps": 0, "guidance": 0.0,
            "width": recoloured.width, "height": recoloured.height, "attempt": 1}
    path = get_settings().path("generations", DEMO_GATE_BATCH, f"{product.sku}-recoloured.png")
    write_png(path, recoloured, a1111_parameters(prov, "none"), prov)
    img = GeneratedImage(image=recoloured, seed=0, path=path, provenance=prov)
    gid = record_generation("mia", img, DEMO_GATE_BATCH)
    link_generation(actor, gid, [product.sku])
    check_fidelity(actor, gid, product.sku, recoloured, brand=DEMO_BRAND, models=models)
    return gid


def _shop(state: dict) -> dict[str, Any]:
    from workbench.products.shop import build_demo_shop

    return build_demo_shop()


def demo_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``demo``): the Home page's "Create demo workspace" button. Home offers it only while the
    workspace has no users, since the demo adds accounts with a published password (an admin among them); checked
    again when the job starts and, for good, in the transaction that adds the accounts, because someone may create
    the first admin between the click and the job, or while it builds."""
    report = build_demo(progress=lambda step, total, message: ctx.progress(step, total, message, force=True))
    print(report.summary(), flush=True)
    return {"done": report.done, "skipped": report.skipped, "ids": report.ids}
