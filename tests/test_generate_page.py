"""Generate page: missing model guard, demo label, generate from a typed prompt, results grouped per request (newest
first, the signed-in user's only, with a clear action), Prompts' "Send to Generate" landing on the batch view (prompts,
gate, image count, time estimate) and what it queues."""
from pathlib import Path

import pytest
from PIL import Image

from workbench.models import tiny
from workbench.models.sources import native_size
from helpers.review import make_users, page_as
from workbench.settings import reload_settings

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "4_Generate.py")
HOME = str(Path(__file__).resolve().parents[1] / "Home.py")


@pytest.fixture(autouse=True)
def users(workspace, monkeypatch):
    from workbench import auth

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


def test_missing_model_says_what_to_do(workspace):
    at = page_as(PAGE, timeout=60).run()
    assert not at.exception
    assert "is not available here" in at.info[0].value and "workbench models pull" in at.info[0].value


def test_generate_from_a_typed_prompt(kit, workspace, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    reload_settings()
    at = page_as(PAGE, timeout=120).run()
    assert not at.exception
    assert "demo model" in at.warning[0].value
    at.text_area(key="generate_prompt").set_value("a red t-shirt on white")
    at.number_input(key="generate_n").set_value(2)
    at.number_input(key="generate_steps").set_value(2)
    # the size defaults to what the model was built for (the tiny kit's, not SDXL's 1024)
    native = native_size(str(kit["sdxl"]))
    assert native < 1024 and at.selectbox(key="generate_size").value == native
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    assert "2 image(s) saved" in at.success[0].value
    pngs = sorted((workspace / "generations" / "page").glob("*.png"))
    assert len(pngs) == 2
    assert Image.open(pngs[0]).size == (native, native)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("seed 0 ·") for c in captions) and any(c.startswith("seed 1 ·") for c in captions)

    # a second request, and an image someone else made on the page: results are grouped per request, newest first,
    # each labelled with its prompt and settings; another user's images are not in mine
    from helpers.review import make_generation

    make_generation(batch="page", prompt="ana's own prompt", created_by="ana")
    at.text_area(key="generate_prompt").set_value("a navy cap")
    at.number_input(key="generate_n").set_value(1)
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    groups = at.expander
    labels = [g.label for g in groups]
    assert len(labels) == 2 and "“a navy cap”" in labels[0] and "1 image ·" in labels[0], labels
    assert "“a red t\\-shirt on white”" in labels[1] and "2 images" in labels[1], labels
    assert [g.proto.expanded for g in groups] == [True, False]  # the newest open, the older one collapsed
    assert not any("ana's own prompt" in label for label in labels)
    assert any(f"{native}×{native} · 2 steps" in c.value and "seeds 0–1" in c.value for c in at.caption)
    at.button(key="generate_clear_older").click().run()
    assert [g.label for g in at.expander] == labels[:1]  # older results hidden; the images stay in review


def test_a_trained_lora_is_picked_by_name_and_use_this_seed_fills_the_form(kit, workspace, monkeypatch, tmp_path):
    from workbench.db import session_scope
    from workbench.train.tables import Lora

    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    reload_settings()
    # a LoRA folder as the Training page registers it (diffusers file with adapter metadata)
    lora_dir = tmp_path / "lora"
    _save_tiny_lora(kit, lora_dir)
    with session_scope() as s:
        s.add(Lora(name="aurelo v1", path=str(lora_dir), method="text_to_image_lora", base_model=str(kit["sdxl"]),
                   rank=4, lora_alpha=4.0, step=40, is_demo=True, card={}))
    at = page_as(PAGE, timeout=120).run()
    [pick] = [m for m in at.multiselect if m.key == "generate_lora_pick"]
    assert pick.options[0].startswith("aurelo v1 · rank 4 · step 40")
    pick.set_value([1]).run()
    at.slider(key=f"generate_lora_scale_{1}").set_value(0.5).run()
    at.text_area(key="generate_prompt").set_value("a red t-shirt on white")
    at.number_input(key="generate_steps").set_value(2)
    at.number_input(key="generate_seed").set_value(5)
    at.selectbox(key="generate_size").set_value(64)
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    from workbench.generate.tables import Generation

    with session_scope() as s:
        [row] = s.query(Generation).all()
        assert [(l["name"], l["scale"]) for l in row.loras] == [("aurelo v1", 0.5)]
        gen_id, seed = row.id, row.seed
    assert seed == 5
    at.number_input(key="generate_seed").set_value(0).run()
    at.button(key=f"generate_seed_{gen_id}").click().run()
    assert not at.exception
    assert at.number_input(key="generate_seed").value == 5 and at.number_input(key="generate_n").value == 1


def _save_tiny_lora(kit, folder):
    """A rank-4 LoRA on the tiny UNet, saved the way the training script saves one."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from diffusers.utils import convert_state_dict_to_diffusers

    pipe = StableDiffusionXLPipeline.from_pretrained(str(kit["sdxl"]))
    torch.manual_seed(0)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                     target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    for name, p in pipe.unet.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    StableDiffusionXLPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)))


def test_a_lora_line_with_a_bad_scale_is_an_error_message(workspace):
    at = page_as(PAGE, timeout=60).run()
    at.text_area(key="generate_loras").set_value("runs/3/lora:big").run()
    assert not at.exception
    assert "scale \\'big\\' is not a number" in at.error[0].value  # escaped by plain(): shown literally


BRAND = "name: acme\ntitle: Acme\ntrigger: acm_style\ngate: {clip_threshold: 1.0, max_attempts: 2}\n"


def test_a_saved_prompt_version_goes_through_the_brands_gate_and_every_attempt_is_shown(kit, workspace, monkeypatch):
    from workbench.generate.sample import read_png_metadata
    from workbench.prompts.library import save_brand_text
    from workbench.prompts.store import refine, save_prompt
    from helpers.review import as_role

    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    monkeypatch.setenv("WORKBENCH_MODELS__CLIP_SCORER", str(kit["open_clip"]))
    reload_settings()
    save_brand_text(as_role("admin"), BRAND)
    v1 = save_prompt(as_role("marketer"), "acm_style, red t-shirt, white background", template="tee", brand="acme")
    v2 = refine(as_role("marketer"), v1.id, "acm_style, red t-shirt, grey background", reason="grey")
    at = page_as(PAGE, timeout=120).run()
    assert not at.exception, at.exception
    at.checkbox(key="generate_cpu_offload").check().run()
    assert any("CPU offload does nothing here" in c.value for c in at.caption)
    at.selectbox(key="generate_saved_prompt").set_value(v2.id).run()  # the current version is listed
    at.selectbox(key=f"generate_saved_version_{v2.id}").set_value(v1.id).run()  # pick the older version
    at.button(key="generate_use_version").click().run()
    assert at.text_area(key="generate_prompt").value == v1.text and at.selectbox(key="generate_brand").value == "acme"
    assert at.checkbox(key="generate_one_gate_acme").value  # on by default: the brand profile defines a gate
    at.number_input(key="generate_steps").set_value(2)
    at.selectbox(key="generate_size").set_value(64)
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["attempt"]) == [1, 2] and list(table["kept"]).count(True) == 1  # every attempt, one kept
    kept = at.session_state["generate_last_paths"][0]
    p = read_png_metadata(Path(kept)).provenance
    assert (p["prompt_id"], p["prompt_version"], p["template"], p["brand"]) == (v1.id, 1, "tee", "acme")
    assert p["gate_threshold"] == 1.0 and p["kept"] is True


def test_a_product_picked_fills_the_prompt_and_its_image_is_linked_to_the_sku(kit, workspace, monkeypatch):
    from helpers.data import CURATOR
    from workbench.products import create_product, fidelity_rows, generations_of_product

    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    reload_settings()
    create_product(CURATOR, "AUR-7", "Aurelo Olive Cap", category="Caps", colour="Olive")
    at = page_as(PAGE, timeout=120).run()
    at.selectbox(key="generate_product").set_value("AUR-7").run()
    assert not at.exception, at.exception
    assert at.text_area(key="generate_prompt").value.startswith("a photo of olive cap, Aurelo Olive Cap, olive cap")
    at.number_input(key="generate_steps").set_value(1)
    [submit] = [b for b in at.button if b.label == "Generate"]
    submit.click().run()
    assert not at.exception, at.exception
    [gid] = generations_of_product("AUR-7")
    [row] = fidelity_rows("AUR-7")  # no photos to compare with: recorded as not checked, with the reason
    assert row.generation_id == gid and row.passed is None and "no reference photos" in row.reason


def test_send_to_generate_opens_the_batch_view_and_queues_what_it_shows(kit, workspace, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from helpers.review import as_role, page_text
    from workbench.generate.batch import generate_job
    from workbench.prompts import BatchSpec, expand_batch, load_library, save_batch
    from workbench.jobs import get_job
    from workbench.ui.state import StateKeys

    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    reload_settings()
    at = AppTest.from_file(HOME, default_timeout=120)  # the app as served: Home is the main script
    at.session_state[StateKeys.USER] = "mia"
    lib = load_library()
    saved = save_batch(as_role("marketer"), expand_batch(lib, BatchSpec("t-shirt", slots={"color": ["navy", "olive"]},
                                                                        brand="northwind")), "SS26 tees")
    at.switch_page("pages/3_Prompts.py").run()
    at.selectbox(key="prompts_lib_batch").set_value(saved.id)
    at.button(key="prompts_send_library").click().run()  # one click: on Generate, in the batch tab
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Generate"] and at.session_state["generate_tab"] == "Prompt batch"
    [prompts] = [d.value for d in at.dataframe if "negative" in d.value.columns]  # the batch's prompts
    assert len(prompts) == 2 and prompts["prompt"].str.startswith("nwo_style").all()
    gate = at.checkbox(key="generate_batch_gate_northwind")
    assert gate.value  # the brand profile defines a gate: on by default
    text = page_text(at)
    assert "2 prompts × 1 = 2 images" in text and "Time: unknown until this machine has made two images" in text
    at.switch_page("pages/4_Generate.py")  # AppTest reruns the page last switched to, here Prompts: stay on Generate
    gate.uncheck().run()
    at.number_input(key="generate_batch_n").set_value(2)
    at.number_input(key="generate_batch_seed").set_value(5)
    at.number_input(key="generate_batch_steps").set_value(1).run()
    assert "2 prompts × 2 = 4 images" in page_text(at)
    at.button(key="generate_queue_batch").click().run()
    assert not at.exception, at.exception
    job = get_job(at.session_state["generate_job"])
    assert job.config["params"]["num_images"] == 2 and job.config["params"]["seed"] == 5
    assert "gate" not in job.config

    generate_job(_Ctx(job))  # the job's own function, in this process
    at.run()
    [group] = [e for e in at.expander if e.label != "Log"]  # the job panel has its log in an expander
    assert "4 images · 2 prompts · batch “SS26 tees” (job" in group.label, group.label
    captions = page_text(at).splitlines()
    seeds = sorted(c.split(" · ")[1] for c in captions if c.startswith("“nwo_style"))
    assert seeds == ["seed 5", "seed 5", "seed 6", "seed 6"], captions  # each prompt's images, labelled
    assert any("seeds 5–6" in c for c in captions)
    assert "4 already made with these seeds (skipped)" in page_text(at)
    assert "Queue 0 images" in [b.label for b in at.button]
    at.number_input(key="generate_batch_seed").set_value(7).run()  # new seeds: new images, timed from the ones made
    assert "s per image here, the median of 3 measurements at" in page_text(at)


class _Ctx:
    """The parts of JobContext the batch handler uses (as in test_generate_batch)."""

    def __init__(self, job):
        self.config, self.job_id, self.created_by = job.config, job.id, job.created_by

    def log(self, message):
        pass

    def progress(self, *args, **kwargs):
        pass

    def should_stop(self):
        return False

    def check_stop(self):
        pass
