"""The tiny kit: built in code, saved, loaded back through the same loaders as a real model."""
import numpy as np
import pytest
import torch

from workbench.models import sources, tiny


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tiny.make_tiny_kit(tmp_path_factory.mktemp("kit"))


def _image(pipe, seed, prompt="a red t-shirt on white"):
    g = torch.Generator().manual_seed(seed)
    return pipe(prompt, num_inference_steps=2, height=64, width=64, generator=g).images[0]


def test_sdxl_roundtrip_generates_deterministic_64px_images(kit):
    pipe = sources.load_sdxl_pipeline(str(kit["sdxl"]))
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    assert pipe.unet.config.addition_embed_type == "text_time"
    assert pipe.tokenizer.model_max_length == 77 and pipe.tokenizer_2.pad_token == "!"
    a, b, c = _image(pipe, 1), _image(pipe, 1), _image(pipe, 2)
    assert a.size == (64, 64)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_saved_weights_equal_the_built_ones(kit):
    built = tiny.build_tiny_sdxl(seed=0)
    loaded = sources.load_sdxl_pipeline(str(kit["sdxl"]))
    for name, tensor in built.unet.state_dict().items():
        assert torch.equal(tensor, loaded.unet.state_dict()[name]), name


def test_long_prompts_truncate_at_77_tokens_like_sdxl(kit):
    pipe = sources.load_sdxl_pipeline(str(kit["sdxl"]))
    ids = pipe.tokenizer("x " * 200, truncation=True, max_length=77).input_ids
    assert len(ids) == 77
    _image(pipe, 0, prompt="a very long prompt " * 20)  # must not overflow the position embeddings


def test_open_clip_scores_text_and_images(kit):
    model, preprocess, tokenizer = sources.load_open_clip(str(kit["open_clip"]))
    image = preprocess(_image(sources.load_sdxl_pipeline(str(kit["sdxl"])), 0)).unsqueeze(0)
    with torch.no_grad():
        img = model.encode_image(image)
        txt = model.encode_text(tokenizer(["a red t-shirt", "a blue cap"]))
    assert img.shape == (1, 32) and txt.shape == (2, 32)


def test_blip_itm_gives_a_probability(kit):
    model, processor = sources.load_blip_itm(str(kit["blip_itm"]))
    from PIL import Image

    inputs = processor(images=Image.new("RGB", (48, 48), "white"), text="a photo of a shirt", return_tensors="pt")
    with torch.no_grad():
        prob = model(**inputs, use_itm_head=True).itm_score.softmax(-1)[:, 1]
    assert prob.shape == (1,) and 0.0 < float(prob) < 1.0


def test_blip_captioner_generates_text(kit):
    model, processor = sources.load_blip_captioner(str(kit["blip_captioner"]))
    from PIL import Image

    out = model.generate(**processor(images=Image.new("RGB", (48, 48), "red"), return_tensors="pt"), max_new_tokens=4)
    assert isinstance(processor.decode(out[0], skip_special_tokens=True), str)


def test_feature_extractor_fits_torchmetrics_fid(kit):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fe = sources.load_feature_extractor(str(kit["feature_extractor"]))
    fid = FrechetInceptionDistance(feature=fe)
    g = torch.Generator().manual_seed(0)
    fid.update(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=g), real=True)
    fid.update(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=g), real=False)
    assert float(fid.compute()) >= 0.0


def test_every_kit_folder_is_labelled_as_a_demo_model(kit):
    assert all(sources.is_demo_model(str(p)) for p in kit.values())
    assert not sources.is_demo_model("stabilityai/stable-diffusion-xl-base-1.0")


def test_kit_settings_point_capabilities_at_the_kit(kit, monkeypatch):
    from workbench.settings import reload_settings

    for field, path in tiny.kit_model_settings(kit).items():
        monkeypatch.setenv(f"WORKBENCH_MODELS__{field.upper()}", path)
    s = reload_settings()
    assert sources.availability(s.models.sdxl_base).ok and sources.availability(s.models.clip_scorer).ok
    assert sources.load_vae(s.models.vae).config.latent_channels == 4
