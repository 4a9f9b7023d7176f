"""Training data: a data source (workspace dataset, folder, Hugging Face dataset) -> examples (image + caption), the
seeded per-epoch transforms, and DreamBooth class images.

    from workbench.train.data import resolve_examples, load_example
    examples, info = resolve_examples(cfg)          # info: {"source": ..., "manifest_hash": ..., "count": ...}
    pixels, original_size, crop_top_left = load_example(examples[0], cfg, epoch=0, index=0)

Augmentations (random crop, flip) are drawn from a generator seeded by (seed, epoch, index), so a resumed run sees
the same pixels as an uninterrupted one without having to restore any random state.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from workbench.train.config import ConfigError, TrainConfig

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class Example:
    caption: str
    path: Path | None = None
    image: Image.Image | None = None  # Hugging Face datasets hold decoded images

    def open(self) -> Image.Image:
        im = self.image if self.image is not None else Image.open(self.path)
        return im.convert("RGB")


def _file_hash(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(f"{p.relative_to(root)}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _from_imagefolder(folder: Path, caption_column: str) -> list[Example]:
    examples = []
    for n, line in enumerate((folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "file_name" not in row:
            raise ConfigError(f"{folder / 'metadata.jsonl'} line {n} has no file_name")
        if caption_column not in row:
            raise ConfigError(f"caption_column {caption_column!r} is not in {folder / 'metadata.jsonl'} line {n} "
                              f"(columns: {', '.join(sorted(row))})")
        examples.append(Example(caption=str(row[caption_column] or ""), path=folder / row["file_name"]))
    return examples


def _from_folder(folder: Path, cfg: TrainConfig) -> tuple[list[Example], str]:
    if (folder / "metadata.jsonl").is_file():
        examples = _from_imagefolder(folder, cfg.caption_column)
    elif (folder / "train" / "metadata.jsonl").is_file():  # a preprocessed dataset (split folders)
        folder = folder / "train"
        examples = _from_imagefolder(folder, cfg.caption_column)
    else:  # images with same-named .txt captions (kohya style), or bare images (DreamBooth)
        examples = []
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                txt = p.with_suffix(".txt")
                examples.append(Example(caption=txt.read_text(encoding="utf-8").strip() if txt.exists() else "",
                                        path=p))
    missing = [e.path for e in examples if not e.path.is_file()]
    if missing:
        raise ConfigError(f"dataset folder {str(folder)!r} lists {len(missing)} missing images, e.g. {missing[0]}")
    manifest = folder.parent / "manifest.json" if folder.name == "train" else folder / "manifest.json"
    if manifest.is_file():
        digest = json.loads(manifest.read_text()).get("result_hash", "")
    else:
        digest = _file_hash([e.path for e in examples], folder)
    return examples, digest


def _from_workspace_dataset(dataset_id: int, cfg: TrainConfig) -> tuple[list[Example], str, str]:
    from workbench.data.preprocess import PreprocessConfig, preprocess_dataset
    from workbench.auth import on_behalf_of

    # Preprocessing accepts 256..2048 in steps of 64; smaller training sizes (tiny test models) resize further below.
    size = min(2048, max(256, -(-cfg.resolution // 64) * 64))
    # Training on a workspace dataset prepares it: part of the run that ``runs.start`` allowed (``train``), done as
    # the user who launched the run (the job passes WORKBENCH_USER; a bare CLI run is "train").
    who = os.environ.get("WORKBENCH_USER") or "train"
    result = preprocess_dataset(on_behalf_of(who, "datasets"), dataset_id, PreprocessConfig(size=size, mode="pad"))
    examples, _ = _from_folder(result.out_dir / "train", cfg)
    return examples, result.result_hash, str(result.out_dir)


def _from_hf(cfg: TrainConfig) -> tuple[list[Example], str]:
    import datasets

    name = cfg.dataset_name
    try:
        if Path(name).is_dir() and (Path(name) / "dataset_dict.json").exists() or (Path(name) / "state.json").exists():
            ds = datasets.load_from_disk(name)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"]
        else:
            ds = datasets.load_dataset(name, cfg.dataset_config_name, split="train")
    except Exception as exc:  # noqa: BLE001 - many loader errors; the message names the option
        raise ConfigError(f"dataset_name {name!r} could not be loaded: {type(exc).__name__}: {exc}") from None
    for col in (cfg.image_column, cfg.caption_column):
        if col not in ds.column_names:
            raise ConfigError(f"column {col!r} is not in dataset_name {name!r} (columns: {', '.join(ds.column_names)})"
                              f"; set image_column / caption_column")
    examples = [Example(caption=str(r[cfg.caption_column] or ""), image=r[cfg.image_column]) for r in ds]
    return examples, getattr(ds, "_fingerprint", "") or ""


def resolve_examples(cfg: TrainConfig) -> tuple[list[Example], dict[str, Any]]:
    """The training examples and where they came from. DreamBooth runs caption every image with instance_prompt."""
    source = cfg.data_source
    folder = ""
    if cfg.dataset_name:
        examples, digest = _from_hf(cfg)
        source = cfg.dataset_name
    elif source is None:
        raise ConfigError("no training data: set dataset (a workspace dataset id or a folder), train_data_dir, "
                          "instance_data_dir or dataset_name")
    elif source.isdigit():
        examples, digest, folder = _from_workspace_dataset(int(source), cfg)
    elif Path(source).is_dir():
        examples, digest = _from_folder(Path(source), cfg)
        folder = str(Path(source).resolve())
    elif cfg.dataset:  # a workspace dataset by the name the Datasets page shows
        from workbench.data.store import DatasetError, get_dataset

        try:
            dataset_id = get_dataset(source).id
        except DatasetError as exc:
            raise ConfigError(f"dataset {source!r} is neither a workspace dataset (id or name) nor an existing "
                              f"folder: {exc}") from None
        examples, digest, folder = _from_workspace_dataset(dataset_id, cfg)
    else:
        raise ConfigError(f"{source!r} is not an existing folder")
    if not examples:
        raise ConfigError(f"dataset {source!r} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    if cfg.instance_prompt:
        examples = [Example(caption=cfg.instance_prompt, path=e.path, image=e.image) for e in examples]
    elif not any(e.caption for e in examples):
        raise ConfigError(f"dataset {source!r} has no captions (caption_column {cfg.caption_column!r}); caption it "
                          "in the Datasets page, or train DreamBooth-style with instance_prompt")
    return examples, {"source": source, "folder": folder, "manifest_hash": digest, "count": len(examples)}


def is_cacheable(examples: list[Example], cfg: TrainConfig) -> bool:
    """Latents can be computed once when every epoch sees the same pixels: no flips, and crops that never move."""
    if not cfg.cache_latents or cfg.random_flip:
        return False
    if cfg.center_crop:
        return True
    for e in examples:
        w, h = (e.image.size if e.image is not None else Image.open(e.path).size)
        if w != h:
            return False  # a random crop of a non-square image differs per epoch
    return True


def load_example(example: Example, cfg: TrainConfig, epoch: int, index: int):
    """Pixels in [-1, 1] (3, R, R), SDXL's original size (h, w) and crop top-left (top, left)."""
    import numpy as np
    import torch

    rng = random.Random(f"{cfg.seed}-{epoch}-{index}")
    im = example.open()
    original_size = (im.height, im.width)
    r = cfg.resolution
    scale = r / min(im.width, im.height)
    w, h = max(r, round(im.width * scale)), max(r, round(im.height * scale))
    im = im.resize((w, h), Image.Resampling.BILINEAR)
    if cfg.center_crop:
        top, left = (h - r) // 2, (w - r) // 2
    else:
        top, left = rng.randint(0, h - r), rng.randint(0, w - r)
    im = im.crop((left, top, left + r, top + r))
    if cfg.random_flip and rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        left = w - left - r  # SDXL conditions on the crop as seen in the flipped image
    arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), original_size, (top, left)


def class_image_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_EXTS) if folder.is_dir() else []
