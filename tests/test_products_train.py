"""Per-product training: the config a product run gets (DreamBooth instance/class prompts, prior preservation, its
photos; several products as one caption set with a token each), unique tokens kept across runs, the registry
(lora_products) read by loras_for / tokens_of_run, and one short real DreamBooth run on the tiny model (~10 s) that
writes a LoRA the registry ties to its product and token."""
import json
import os
from pathlib import Path

import pytest

from workbench import jobs
from workbench.products.importing import import_catalog
from helpers.data import CURATOR, image_bytes, write
from workbench.models import tiny
from workbench.products import get_product, loras_for, tokens_of_run
from workbench.products.fields import ProductError
from workbench.products.training import class_prompt, noun, start_product_run
from workbench.auth import PermissionDenied
from helpers.review import as_role
from workbench.train import runs
from workbench.train.config import ConfigError


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


@pytest.fixture
def catalog(tmp_path, kit, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    from workbench.settings import reload_settings

    reload_settings()
    root = tmp_path / "scrape"
    for n in range(3):
        write(root / "Navy wool coat" / f"{n}.png", image_bytes((64, 64), pattern=70 + n))
    write(root / "Navy wool coat" / "sku.txt", b"AUR-1001")
    for n in range(2):
        write(root / "Red silk scarf" / f"{n}.png", image_bytes((64, 64), pattern=80 + n))
    write(root / "Red silk scarf" / "sku.txt", b"AUR-2002")
    write(root / "metadata-free.txt", b"")
    import_catalog(CURATOR, root, workers=1)
    from workbench.products import update_product

    update_product(CURATOR, "AUR-1001", category="Coats")
    update_product(CURATOR, "AUR-2002", category="Scarves")
    return root


def test_nouns_and_class_prompts():
    assert [noun(c) for c in ("Shirts", "Jeans", "Dresses", "Accessories", "", "Bag")] == \
        ["shirt", "jeans", "dress", "accessory", "product", "bag"]
    assert class_prompt("Umbrellas") == "a photo of an umbrella"


def test_one_product_gets_a_dreambooth_config_with_prior_preservation_and_a_kept_token(catalog):
    marketer = as_role("marketer")
    run_id = start_product_run(marketer, ["AUR-1001"], queue=False)
    token = get_product("AUR-1001").token
    assert len(token) == 3 and token.isalpha()
    cfg = runs.get_run(run_id).config
    assert cfg["instance_prompt"] == f"a photo of {token} coat"
    assert cfg["class_prompt"] == "a photo of a coat"
    assert cfg["with_prior_preservation"] is True and cfg["num_class_images"] == 50
    folder = cfg["instance_data_dir"]
    rows = [json.loads(x) for x in Path(folder, "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {r["sku"] for r in rows} == {"AUR-1001"}
    assert all(os.path.isfile(os.path.join(folder, r["file_name"])) for r in rows)
    assert tokens_of_run(run_id) == {"AUR-1001": token}
    [link] = loras_for("AUR-1001")
    assert (link.run_id, link.token, link.lora_path, link.status) == (run_id, token, None, "queued")

    second = start_product_run(marketer, ["AUR-1001"], queue=False, max_train_steps=20)
    assert tokens_of_run(second) == {"AUR-1001": token}  # the product keeps its token
    assert [x.run_id for x in loras_for("AUR-1001")] == [second, run_id]  # newest first


def test_several_products_train_as_one_caption_set_with_a_token_each(catalog):
    run_id = start_product_run(as_role("analyst"), ["AUR-1001", "AUR-2002"], queue=False)
    tokens = tokens_of_run(run_id)
    assert set(tokens) == {"AUR-1001", "AUR-2002"} and len(set(tokens.values())) == 2
    cfg = runs.get_run(run_id).config
    assert cfg["instance_prompt"] is None and cfg["with_prior_preservation"] is False
    rows = [json.loads(x) for x in Path(cfg["dataset"], "metadata.jsonl").read_text().splitlines()]
    captions = {r["text"] for r in rows}
    assert captions == {f"a photo of {tokens['AUR-1001']} coat", f"a photo of {tokens['AUR-2002']} scarf"}
    assert len(rows) == 5


def test_refusals_name_what_is_wrong(catalog):
    with pytest.raises(PermissionDenied):
        start_product_run(as_role("approver"), ["AUR-1001"], queue=False)
    with pytest.raises(ProductError, match="no product with sku NOPE"):
        start_product_run(as_role("marketer"), ["NOPE"], queue=False)
    with pytest.raises(ConfigError, match="max_train_stepz"):
        start_product_run(as_role("marketer"), ["AUR-1001"], queue=False, max_train_stepz=3)
    from workbench.products import create_product

    create_product(CURATOR, "AUR-9", "no photos yet")
    with pytest.raises(ProductError, match="AUR-9: no reference photos"):
        start_product_run(as_role("marketer"), ["AUR-9"], queue=False)


def test_a_short_real_product_run_writes_a_lora_that_knows_its_product_and_token(catalog):
    from workbench.jobs.runner import run_inline

    run_id = start_product_run(as_role("marketer"), ["AUR-2002"], queue=False, resolution=64, max_train_steps=2,
                               num_class_images=1, class_num_inference_steps=1, sample_batch_size=1,
                               num_validation_images=0, rank=4, learning_rate=1e-3)
    assert run_inline(run_id) == 0, jobs.log_tail(run_id, 60)
    assert jobs.get_job(run_id).status == "done"
    lora = runs.lora_of(run_id)
    token = get_product("AUR-2002").token
    assert lora.method == "dreambooth_lora" and lora.trigger == f"a photo of {token} scarf"
    assert os.path.isfile(os.path.join(lora.path, "pytorch_lora_weights.safetensors"))
    [link] = loras_for("AUR-2002")
    assert (link.run_id, link.token, link.lora_path, link.status) == (run_id, token, lora.path, "done")
    # prior preservation ran, with at least as many class images as photos (the training script needs that)
    assert runs.get_run(run_id).config["num_class_images"] == 2
    assert len(list((runs.run_dir(run_id) / "class_images").glob("*.png"))) == 2
