"""Tune a CLIP scorer on a brand's captioned catalog (issue #22 item 2): a job of kind ``clip_tune``.

    cfg = ClipTuneConfig(dataset="demo-aurelo", name="aurelo-clip", steps=150)
    job_id = start_clip_tune("ari", cfg)             # queued (needs ``train``); or in this process:
    result = tune_clip("ari", cfg)                   # -> ClipTuneResult(scorer, recall_before, recall_after, card)

    workbench train clip --dataset demo-aurelo --name aurelo-clip --steps 150

What it does, step by step (``tune_clip``):
 1. the pairs: every non-excluded, captioned item of the dataset; its ``train`` split trains, its ``val`` split is
    held out (split the dataset first: ``workbench data split``);
 2. the model: the open_clip base (``base``, default the configured scorer) with everything frozen except a small
    part: ``head`` = the two projections, the final layer norms and the logit scale; ``last_blocks`` = that and the
    last ``blocks`` transformer blocks of each tower;
 3. held-out retrieval before tuning: recall@1 and recall@5, image -> text (each val image ranks every val caption)
    and text -> image, with the same embeddings the gate and the metrics use (``workbench.models.clip``);
 4. training: the symmetric contrastive (InfoNCE) loss of CLIP over batches of (image, caption) pairs, AdamW, seeded
    batch order; the job's stop flag is read each step;
 5. held-out retrieval after tuning, the folder ``workspace/scorers/<name>/`` (open_clip config + safetensors, so it
    loads like any open_clip model, + ``scorer_card.json``) and a ``scorers`` row: brand profiles name it as
    ``scorer: tuned:<name>``.

The images go through the model's own evaluation transform (no augmentation); captions are truncated at the
tokenizer's context length. Recall over a few dozen held-out pairs moves in steps of 1/n: the card says n.
"""
from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

TRAINABLE = ("head", "last_blocks")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")


class ClipTuneError(ValueError):
    """A tuning request that cannot run as given; the message names the setting and its value."""


@dataclass
class ClipTuneConfig:
    dataset: int | str  # workspace dataset (id or name) with captions and a train/val split
    name: str  # the scorer's name (lowercase letters, digits, '-', '_'): ``scorer: tuned:<name>`` in a profile
    base: str = ""  # open_clip model reference; "" = settings.models.clip_scorer
    trainable: str = "last_blocks"  # head | last_blocks
    blocks: int = 1  # with last_blocks: how many final blocks of each tower train
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    max_train: int | None = None  # use at most this many training pairs (a quick look at a big catalog)
    device: str | None = None  # default: settings

    def check(self) -> None:
        if not NAME.match(self.name or ""):
            raise ClipTuneError(f"name {self.name!r}: use 1-63 lowercase letters, digits, '-' or '_'")
        if self.trainable not in TRAINABLE:
            raise ClipTuneError(f"trainable {self.trainable!r} must be one of {', '.join(TRAINABLE)}")
        for key, lo in (("blocks", 1), ("steps", 1), ("batch_size", 2)):
            if int(getattr(self, key)) < lo:
                raise ClipTuneError(f"{key} {getattr(self, key)} must be at least {lo}")
        if not 0 < self.learning_rate < 1:
            raise ClipTuneError(f"learning_rate {self.learning_rate} must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipTuneConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ClipTuneError(f"unknown CLIP tuning setting(s): {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass
class Recall:
    n: int  # held-out pairs
    i2t_r1: float
    i2t_r5: float
    t2i_r1: float
    t2i_r5: float


@dataclass
class ClipTuneResult:
    scorer: str  # ``tuned:<name>``
    path: str
    recall_before: Recall
    recall_after: Recall
    card: dict[str, Any] = field(default_factory=dict)
    scorer_id: int | None = None


# -- 1. the pairs ----------------------------------------------------------------------------------------------------

def dataset_pairs(dataset: int | str, settings: Settings) -> tuple[int, str, dict[str, list[tuple[Path, str]]]]:
    """(dataset id, name, {"train": [(image path, caption)], "val": [...]}) of a workspace dataset."""
    from sqlalchemy import select

    from workbench.data.tables import Dataset, Item
    from workbench.db import session_scope

    with session_scope(settings) as s:
        ds = s.get(Dataset, int(dataset)) if str(dataset).isdigit() else None
        ds = ds or s.scalar(select(Dataset).where(Dataset.name == str(dataset)))
        if ds is None:
            raise ClipTuneError(f"dataset {dataset!r}: no such dataset (see `workbench data list`)")
        rows = s.execute(select(Item.path, Item.caption, Item.split).where(
            Item.dataset_id == ds.id, Item.excluded.is_(False)).order_by(Item.id)).all()
        ds_id, ds_name = ds.id, ds.name
    pairs: dict[str, list[tuple[Path, str]]] = {"train": [], "val": []}
    for path, caption, split in rows:
        if caption.strip() and split in pairs:
            pairs[split].append((settings.path("datasets", str(ds_id), path), caption.strip()))
    for split in pairs:
        if len(pairs[split]) < 2:
            raise ClipTuneError(f"dataset {ds_name!r} has {len(pairs[split])} captioned {split} item(s): tuning needs "
                                "at least 2 in train and in val (caption the photos, then `workbench data split`)")
    return ds_id, ds_name, pairs


# -- 2. the model ----------------------------------------------------------------------------------------------------

def trainable_parameters(model: Any, trainable: str = "last_blocks", blocks: int = 1) -> list[str]:
    """Freeze ``model`` (an open_clip CLIP) except the head (projections, final norms, logit scale) and, with
    ``last_blocks``, the last ``blocks`` blocks of each tower. Returns the names of the parameters left trainable."""
    names = {"text_projection", "logit_scale", "visual.proj", "visual.ln_post.weight", "visual.ln_post.bias",
             "ln_final.weight", "ln_final.bias"}
    prefixes: list[str] = []
    if trainable == "last_blocks":
        for tower, prefix in ((getattr(model, "visual", None), "visual.transformer.resblocks"),
                              (model, "transformer.resblocks")):
            resblocks = getattr(getattr(tower, "transformer", None), "resblocks", None)
            if resblocks is None:
                raise ClipTuneError(f"{type(model).__name__} has no {prefix}: last_blocks tunes open_clip's "
                                    "transformer CLIP models; use trainable=head")
            n = len(resblocks)
            prefixes += [f"{prefix}.{i}." for i in range(max(0, n - blocks), n)]
    kept = []
    for name, p in model.named_parameters():
        p.requires_grad_(name in names or any(name.startswith(x) for x in prefixes))
        if p.requires_grad:
            kept.append(name)
    if not any(n in kept for n in ("text_projection", "visual.proj")):
        raise ClipTuneError(f"{type(model).__name__} has no text_projection/visual.proj to tune")
    return kept


# -- 3. held-out retrieval -------------------------------------------------------------------------------------------

def _open(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def embed_pairs(model: Any, preprocess: Any, tokenizer: Any, pairs: list[tuple[Path, str]], device: str,
                batch: int = 64):
    """(images, texts): (n, d) float32 unit embeddings through ``workbench.models.clip`` (what the gate scores with)."""
    import torch

    from workbench.models.clip import image_embeddings, text_embeddings

    model.eval()
    ims, txs = [], []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        ims.append(image_embeddings(model, preprocess, [_open(p) for p, _ in chunk], device).cpu())
        txs.append(text_embeddings(model, tokenizer, [c for _, c in chunk], device).cpu())
    return torch.cat(ims), torch.cat(txs)


def recall_at(similarity, k: int) -> float:
    """Share of rows whose own column (the diagonal) is among its ``k`` highest; ties count against the pair."""

    own = similarity.diagonal().unsqueeze(1)
    better = (similarity > own).sum(1)  # how many others beat the right match
    return float((better < k).float().mean()) if similarity.shape[0] else 0.0


def retrieval_recall(model: Any, preprocess: Any, tokenizer: Any, pairs: list[tuple[Path, str]],
                     device: str = "cpu") -> Recall:
    img, txt = embed_pairs(model, preprocess, tokenizer, pairs, device)
    sim = img @ txt.T
    return Recall(len(pairs), recall_at(sim, 1), recall_at(sim, 5), recall_at(sim.T, 1), recall_at(sim.T, 5))


# -- 4. training -----------------------------------------------------------------------------------------------------

def contrastive_loss(image_emb, text_emb, logit_scale):
    """CLIP's symmetric cross-entropy over the batch's image-text cosine matrix (unit embeddings)."""
    import torch
    import torch.nn.functional as F

    logits = logit_scale.exp().clamp(max=100) * image_emb @ text_emb.T
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _train(model, preprocess, tokenizer, pairs, cfg: ClipTuneConfig, device: str,
           progress: Callable[..., None], should_stop: Callable[[], bool]) -> list[float]:
    import torch
    import torch.nn.functional as F

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    # the pixels of every training image, once: small catalogs fit; a big one is read per batch
    cache: dict[int, Any] = {}
    order: list[int] = []
    losses: list[float] = []
    bs = min(cfg.batch_size, len(pairs))
    model.train()
    for step in range(1, cfg.steps + 1):
        if should_stop():
            break
        if len(order) < bs:  # a new epoch: a fresh seeded permutation
            perm = list(range(len(pairs)))
            rng.shuffle(perm)
            order += perm
        idx, order = order[:bs], order[bs:]
        pixels = []
        for i in idx:
            if i not in cache:
                x = preprocess(_open(pairs[i][0]))
                if len(pairs) <= 4096:
                    cache[i] = x
                pixels.append(x)
            else:
                pixels.append(cache[i])
        x = torch.stack(pixels).to(device)
        tokens = tokenizer([pairs[i][1] for i in idx]).to(device)
        img = F.normalize(model.encode_image(x).float(), dim=-1)
        txt = F.normalize(model.encode_text(tokens).float(), dim=-1)
        loss = contrastive_loss(img, txt, model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        progress(step, cfg.steps, f"step {step}/{cfg.steps}: loss {losses[-1]:.4f}", loss=losses[-1])
    model.eval()
    return losses


# -- 5. the scorer ---------------------------------------------------------------------------------------------------

def _save(model, base_path: Path, out: Path, card: dict[str, Any]) -> None:
    """An open_clip folder: the base's files (config, tokenizer, demo marker) with the tuned weights, and the card."""
    from safetensors.torch import save_file

    from workbench.files import write_json_atomic

    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if base_path.is_dir():
        for f in base_path.iterdir():
            if f.is_file() and f.suffix not in (".safetensors", ".bin", ".pt", ".pth", ".ckpt"):
                shutil.copy2(f, tmp / f.name)
    if not (tmp / "open_clip_config.json").is_file():
        raise ClipTuneError(f"the base model {base_path} has no open_clip_config.json to save with the weights")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "open_clip_model.safetensors"))
    write_json_atomic(tmp / "scorer_card.json", card)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def tune_clip(actor: Actor, cfg: ClipTuneConfig, *, progress: Callable[..., None] | None = None,
              should_stop: Callable[[], bool] | None = None, settings: Settings | None = None,
              job_id: int | None = None) -> ClipTuneResult:
    """Tune, measure, save and register a scorer (see the module docstring), in this process, as ``actor``
    (``train``). Stopped early (``should_stop``), the scorer is saved with the steps it made, and the card says so."""
    import torch

    from workbench.models.scorers import ScorerError, get_scorer, register_scorer, resolve
    from workbench.models.sources import is_demo_model, load_open_clip

    who = require(actor, "train", settings=settings)
    settings = settings or get_settings()
    cfg.check()
    progress = progress or (lambda *a, **k: None)
    should_stop = should_stop or (lambda: False)
    try:
        get_scorer(cfg.name, settings)
        raise ClipTuneError(f"a tuned scorer called {cfg.name!r} exists already: choose another name")
    except ScorerError:
        pass
    start = time.perf_counter()
    # 1. the pairs
    ds_id, ds_name, pairs = dataset_pairs(cfg.dataset, settings)
    train_pairs = pairs["train"][:cfg.max_train] if cfg.max_train else pairs["train"]
    # 2. the model (seeded: the same config gives the same scorer)
    device = cfg.device or settings.resolved_device()
    base_label, base_path, _ = resolve(cfg.base, settings)
    torch.manual_seed(cfg.seed)
    model, preprocess, tokenizer = load_open_clip(base_path, device=device)
    model.float()
    kept = trainable_parameters(model, cfg.trainable, cfg.blocks)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    progress(0, cfg.steps, f"{len(train_pairs)} training pairs, {len(pairs['val'])} held out; "
                           f"{n_train:,} of {n_all:,} parameters trainable")
    # 3. before
    before = retrieval_recall(model, preprocess, tokenizer, pairs["val"], device)
    # 4. training
    losses = _train(model, preprocess, tokenizer, train_pairs, cfg, device, progress, should_stop)
    # 5. after, the folder, the row
    after = retrieval_recall(model, preprocess, tokenizer, pairs["val"], device)
    out = settings.path("scorers", cfg.name)
    card = {
        "scorer": f"tuned:{cfg.name}", "name": cfg.name, "base": base_label, "base_path": str(base_path),
        "demo_model": is_demo_model(str(base_path)),
        "dataset": {"id": ds_id, "name": ds_name, "train_pairs": len(train_pairs), "val_pairs": len(pairs["val"])},
        "trainable": {"mode": cfg.trainable, "blocks": cfg.blocks if cfg.trainable == "last_blocks" else 0,
                      "parameters": n_train, "of": n_all, "names": kept},
        "config": cfg.to_dict(), "steps_done": len(losses), "stopped_early": len(losses) < cfg.steps,
        "loss": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        "recall_before": asdict(before), "recall_after": asdict(after),
        "recall_note": (f"image->text and text->image retrieval among the {before.n} held-out (val) pairs; recall "
                        f"moves in steps of 1/{before.n}" + ("; under 50 pairs it is a rough reading" if
                                                             before.n < 50 else "")),
        "use": f"brand profile: `scorer: tuned:{cfg.name}`",
        "seconds": round(time.perf_counter() - start, 2), "created_by": who.username, "job_id": job_id,
    }
    _save(model, Path(base_path), out, card)
    info = register_scorer(cfg.name, out, base_label, card, who.username, dataset_id=ds_id, job_id=job_id,
                           settings=settings)
    return ClipTuneResult(info.label, str(out), before, after, card, info.id)


def start_clip_tune(actor: Actor, cfg: ClipTuneConfig, *, queue: bool = True) -> int:
    """Queue a ``clip_tune`` job for ``actor`` (``train``); returns the job id."""
    from workbench.jobs import enqueue

    who = require(actor, "train")
    cfg.check()
    return enqueue("clip_tune", cfg.to_dict(), title=f"tune CLIP scorer {cfg.name}", created_by=who.username,
                   queue=queue)


def clip_tune_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``clip_tune``): config = ``ClipTuneConfig.to_dict()``."""
    from workbench.auth import on_behalf_of
    from workbench.jobs import JobStopped

    cfg = ClipTuneConfig.from_dict(ctx.config)
    result = tune_clip(on_behalf_of(ctx.created_by, "train"), cfg, job_id=ctx.job_id, settings=ctx.settings,
                       progress=lambda step, total, msg, **m: ctx.progress(step, total, message=msg, **m),
                       should_stop=ctx.should_stop)
    ctx.log(f"scorer {result.scorer} in {result.path}: held-out recall@5 (image->text) "
            f"{result.recall_before.i2t_r5:.3f} -> {result.recall_after.i2t_r5:.3f}")
    if result.card["stopped_early"]:
        raise JobStopped()
    return {"scorer": result.scorer, "scorer_id": result.scorer_id, "path": result.path,
            "recall_before": asdict(result.recall_before), "recall_after": asdict(result.recall_after)}


# -- the demo workspace ------------------------------------------------------------------------------------------------

DEMO_SCORER = "aurelo-clip"


def demo_scorer(dataset_id: int, brand: str) -> dict[str, Any]:
    """The demo's tuned scorer: the workspace's (tiny) CLIP tuned on the demo catalog (30 steps, a few seconds on a
    CPU), then named in the brand profile (``scorer: tuned:aurelo-clip``), so the brand's gate, evaluations and
    retrieval use it from then on. Kept when it exists already."""
    from pathlib import Path as _Path

    from workbench.auth import system_actor
    from workbench.models.scorers import ScorerError, get_scorer
    from workbench.prompts.library import load_library, save_brand_text

    try:
        info = get_scorer(DEMO_SCORER)
        out = {"scorer": info.label, "recall_after": info.card.get("recall_after")}
    except ScorerError:
        r = tune_clip(system_actor("ari", role="analyst"),
                      ClipTuneConfig(dataset=dataset_id, name=DEMO_SCORER, steps=30, learning_rate=3e-3))
        out = {"scorer": r.scorer, "recall_before": asdict(r.recall_before), "recall_after": asdict(r.recall_after)}
    profile = load_library().brands.get(brand)
    if profile is not None and not profile.scorer:
        text = _Path(profile.path).read_text(encoding="utf-8").rstrip("\n")
        save_brand_text(system_actor("demo"), f"{text}\nscorer: {out['scorer']}   # tuned on the catalog "
                                              "(workbench train clip)\n")
    return out
