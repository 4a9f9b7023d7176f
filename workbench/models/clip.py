"""The one CLIP cosine: image <-> text similarity with an open_clip model (``sources.load_open_clip`` or the tiny kit),
used by the generation gate (``generate.guard.ClipScorer``) and the evaluation metric (``evaluate.metrics.ClipScore``),
so an image gets the same "CLIP" number in the review queue and on the Evaluate page.

Images are converted to RGB before the model's preprocessing; embeddings are taken in float32 whatever the model's
dtype (an fp16 model on a GPU included) and normalised to unit length; a cosine is the sum of the products of an
image's and a text's unit embeddings.

    model, preprocess, tokenizer = load_open_clip(ref)
    clip_cosines(model, preprocess, tokenizer, images, prompts)       # one cosine per (image, prompt) pair
    clip_cosines(model, preprocess, tokenizer, [image], attributes)   # one image against several texts
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def image_embeddings(model: Any, preprocess: Callable, images: Sequence[Any], device: str = "cpu"):
    """(n, d) float32 unit embeddings of PIL images."""
    import torch

    with torch.no_grad():
        pixels = torch.stack([preprocess(im.convert("RGB")) for im in images]).to(device)
        emb = model.encode_image(pixels).float()
    return emb / emb.norm(dim=-1, keepdim=True)


def text_embeddings(model: Any, tokenizer: Callable, texts: Sequence[str], device: str = "cpu"):
    """(n, d) float32 unit embeddings of texts (open_clip truncates at 77 tokens)."""
    import torch

    with torch.no_grad():
        emb = model.encode_text(tokenizer(list(texts)).to(device)).float()
    return emb / emb.norm(dim=-1, keepdim=True)


def clip_cosines(model: Any, preprocess: Callable, tokenizer: Callable, images: Sequence[Any], texts: Sequence[str],
                 device: str = "cpu"):
    """Float32 cosines, one per (image, text) pair: image i with text i, or a single image with every text."""
    if len(images) != len(texts) and len(images) != 1:
        raise ValueError(f"CLIP cosines need one text per image (or one image): {len(images)} images, "
                         f"{len(texts)} texts")
    img = image_embeddings(model, preprocess, images, device)
    txt = text_embeddings(model, tokenizer, texts, device)
    return (img * txt).sum(-1)
