"""One CLIP cosine: the generation gate and the evaluation metric give an image the same number (float32 embeddings,
RGB conversion), and it is the cosine of open_clip's embeddings computed by hand."""
import numpy as np
import pytest
import torch
from PIL import Image

from workbench.evaluate import metrics as M
from workbench.generate.guard import ClipScorer
from workbench.models import sources, tiny
from workbench.models.clip import clip_cosines


@pytest.fixture(scope="module")
def clip_ref(tmp_path_factory):
    return str(tiny.save_tiny_open_clip(tmp_path_factory.mktemp("clip")))


def _images(n, mode="RGB"):
    rng = np.random.default_rng(11)
    return [Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).convert(mode) for _ in range(n)]


def test_the_gate_and_the_metric_give_the_same_number(clip_ref):
    model, preprocess, tokenizer = sources.load_open_clip(clip_ref)
    gate = ClipScorer(model, preprocess, tokenizer)
    metric = M.ClipScore(model, preprocess, tokenizer)
    prompts = ["a red t-shirt on white", "a navy cap"]
    for image, prompt in zip(_images(2, "RGBA"), prompts):  # an RGBA image is scored as RGB by both
        metric.update([image], [prompt])
        assert float(metric.last_values[0]) == gate.score(image, prompt) == gate.score(image.convert("RGB"), prompt)
    images = _images(2)
    metric.update(images, prompts)  # a batch of images: the same cosines up to float32 batching
    np.testing.assert_allclose(metric.last_values.numpy(), [gate.score(i, p) for i, p in zip(images, prompts)],
                               atol=1e-6)


def test_clip_cosines_pairs_images_with_texts_or_one_image_with_every_text(clip_ref):
    model, preprocess, tokenizer = sources.load_open_clip(clip_ref)
    images = _images(2)
    texts = ["a red t-shirt", "olive trousers, studio photo"]
    with torch.no_grad():
        i = torch.nn.functional.normalize(model.encode_image(torch.stack([preprocess(im) for im in images])), dim=-1)
        t = torch.nn.functional.normalize(model.encode_text(tokenizer(texts)), dim=-1)
    pairs = clip_cosines(model, preprocess, tokenizer, images, texts)
    assert pairs.dtype == torch.float32
    np.testing.assert_allclose(pairs.numpy(), (i * t).sum(-1).numpy(), atol=1e-6)
    one = clip_cosines(model, preprocess, tokenizer, images[:1], texts)
    np.testing.assert_allclose(one.numpy(), (i[:1] * t).sum(-1).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="one text per image"):
        clip_cosines(model, preprocess, tokenizer, images, texts[:1] * 3)
