"""Training inputs for tests, the demo and benches: the synthetic catalog as an imagefolder (metadata.jsonl)."""
from __future__ import annotations

import json
from pathlib import Path


def catalog_caption(row: dict[str, str]) -> str:
    """"a photo of a red t shirt by aurelo, on a white background" from a styles.csv row."""
    name = row["productDisplayName"].split(" (")[0]
    words = name.split(" ", 1)[1] if " " in name else name  # drop the brand word in front
    return f"a photo of a {words.lower()} by {row['brand'].lower()}, on a white background"


def demo_imagefolder(out: str | Path, size: int = 64, colours: int = 4, limit: int | None = None,
                     seed: int = 0) -> Path:
    """Draw the synthetic catalog at ``size`` px into ``out/images`` and write ``out/metadata.jsonl`` (file_name,
    text); returns ``out``. Deterministic; reused when already there."""
    from workbench.data.demo import make_demo_catalog

    out = Path(out)
    meta = out / "metadata.jsonl"
    if meta.is_file():
        return out
    cat = make_demo_catalog(out / "_catalog", seed=seed, size=size, colours=colours, extras=False)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for row in cat.rows[:limit]:
        src = cat.root / "images" / f"{row['id']}.jpg"
        dst = out / "images" / f"{row['id']}.png"
        from PIL import Image

        Image.open(src).convert("RGB").save(dst)
        lines.append(json.dumps({"file_name": f"images/{dst.name}", "text": catalog_caption(row)}))
    meta.write_text("\n".join(lines) + "\n")
    import shutil

    shutil.rmtree(out / "_catalog", ignore_errors=True)
    return out


def save_random_lora(model: str | Path, out: str | Path, seed: int = 3) -> Path:
    """A real LoRA on ``model``'s UNet (peft adapter, r=4, lora_B drawn non-zero so it has an effect), saved the way
    the trainer saves it (with its adapter metadata); returns ``out``."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from workbench.models.sources import load_sdxl_pipeline

    pipe = load_sdxl_pipeline(str(model))
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights="gaussian",
                        target_modules=["to_k", "to_q", "to_v", "to_out.0"])
    pipe.unet.add_adapter(config)
    with torch.no_grad():  # gaussian init leaves lora_B at zero: give it weight so the LoRA has an effect
        for name, p in pipe.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    StableDiffusionXLPipeline.save_lora_weights(
        str(out), unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)),
        unet_lora_adapter_metadata=config.to_dict())
    return Path(out)


def training_page_setup(monkeypatch, tmp_path):
    """What a Training page test needs: fast bcrypt, no worker (queued rows only), the tiny kit as the base model on
    the CPU, one user per role. Returns the kit."""
    from helpers.review import make_users

    from workbench import auth, jobs
    from workbench.models import tiny
    from workbench.settings import reload_settings

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    monkeypatch.setattr(jobs, "ensure_worker", lambda settings=None: False)  # rows only: nothing runs in page tests
    kit = tiny.make_tiny_kit(tmp_path / "kit")
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(kit["sdxl"]))
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    reload_settings()
    make_users()
    return kit
