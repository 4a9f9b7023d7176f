"""Shop-the-look retrieval: which catalog products does an image look like? An embedding index over the products'
reference photos (issue #20 item 7).

    result = build_index(actor, model="clip")           # embeds only photos with no row yet for that model
    matches = nearest_products(image, k=5, model="clip")  # [ProductMatch(sku, name, url, price, score, ...)]
    nearest_by_vector(vector, model_ref, k=5)            # the same search for an embedding already made

- **Embeddings.** ``clip``: the configured CLIP scorer (open_clip, ``settings.models.clip_scorer``) through
  ``workbench.models.clip.image_embeddings``; ``dino``: DINOv2's CLS embedding (``settings.models.dinov2``,
  ``workbench.models.dinov2.load_dinov2``). Unit length, stored once per (item, model) in ``item_embeddings`` as
  float16 (``model_ref`` = ``"clip:<ref>"`` / ``"dino:<ref>"``, so a new model version gets its own rows).
- **Garment crops.** Given ``masks`` (the garment masks module: ``garment_mask`` + ``masked_crop``), a photo is
  embedded as its garment crop, or whole when no garment stands out; a queried image as a whole, as its garment
  crop, and as the crop of each large connected part of the garment mask (``COMPONENT_MIN`` of the frame: a jacket
  and trousers on white are two parts). Without ``masks``, whole images. The masks live on the evaluation floor,
  above products, so the callers that may import them (the CLI, the pages) pass them in.
- **Search.** The embeddings of one model are held in memory as one float16 (n, d) matrix, loaded from the table
  once per process and reloaded when the table's count or newest row changes (checked at most every
  ``FRESH_SECONDS``; a build in this process reloads at once). A query is one matrix-vector product
  per region (n x d by d); the best ``CANDIDATES`` (or 4 x k) items are looked up in the database (so a photo moved
  to another product, or merged, is found under its current product), and a product scores the max over its photos
  and the query's regions. 100k items x 768 float16 = ~150 MB and one ~100 MFLOP product per query; beyond ~1M items, an
  approximate index (FAISS / hnswlib) would replace the matrix product. Measured: docs/PERFORMANCE.md.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from workbench.auth import Actor, require
from workbench.data.tables import Item
from workbench.db import audit, session_scope, utcnow
from workbench.products.fields import ProductError
from workbench.products.records import _dec
from workbench.products.tables import ItemEmbedding, Product, ProductItem
from workbench.settings import Settings, get_settings

MODELS = {"clip": "clip_scorer", "dino": "dinov2"}  # retrieval model -> the Settings.models field it uses
CANDIDATES = 64  # at least this many best items are looked up per query before aggregating per product
COMPONENT_MIN = 0.05  # a garment-mask part of at least this share of the frame is queried on its own
STORE_DTYPE = np.dtype("<f2")
FRESH_SECONDS = 2.0  # a loaded matrix is checked against the table at most this often (this process's builds: at once)


class RetrievalError(ProductError):
    """A retrieval request that cannot be served (unknown model, a query of the wrong dimension, unknown items)."""


class MaskTools(Protocol):
    """What retrieval needs from the garment masks module (``workbench.fidelity.masks``)."""

    def garment_mask(self, image: Image.Image) -> Any: ...

    def masked_crop(self, image: Image.Image, mask: Any) -> Image.Image: ...


@dataclass
class Embedder:
    """An image embedding model: ``embed(images)`` -> (n, dim) float32 unit rows."""

    model: str  # clip | dino
    ref: str  # the model reference in settings
    dim: int
    embed: Callable[[Sequence[Image.Image]], np.ndarray]
    demo: bool = False  # a tiny-kit model: its matches mean nothing

    @property
    def model_ref(self) -> str:
        return f"{self.model}:{self.ref}"


@dataclass(frozen=True)
class ProductMatch:
    sku: str
    name: str
    url: str
    price: Decimal | None
    currency: str
    score: float  # cosine of the best (photo, query region) pair
    item_id: int  # that photo


@dataclass
class IndexResult:
    model: str
    model_ref: str
    added: int = 0
    already: int = 0  # photos that had an embedding for this model already
    total: int = 0  # photos of this model in the index now
    failed: list[str] = field(default_factory=list)  # "item 12: <path>: <why>"
    unavailable: str | None = None  # "unavailable: <model> — <why>. <remedy>": nothing was embedded
    demo: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class LoadedIndex:
    model_ref: str
    items: int
    dim: int
    megabytes: float
    seconds: float  # reading the table into the matrix


def check_model(model: str) -> str:
    if model not in MODELS:
        raise RetrievalError(f"model {model!r}: use one of {', '.join(MODELS)}")
    return model


def unavailable_text(exc: Exception) -> str:
    ref, reason, remedy = (getattr(exc, a, "") for a in ("ref", "reason", "remedy"))
    return f"unavailable: {ref} — {reason}. {remedy}".strip() if ref else f"unavailable: {exc}"


def load_embedder(model: str = "clip", settings: Settings | None = None, device: str = "cpu",
                  scorer: str | None = None) -> Embedder:
    """The configured model for ``model`` ("clip" | "dino"). Raises ModelUnavailable (naming the model and
    `workbench models pull`) when its weights are not on this machine; never downloads. ``scorer``: a CLIP scorer
    reference instead of the configured one (``tuned:<name>``, a brand profile's ``scorer:``; its embeddings are
    stored under ``clip:tuned:<name>``)."""
    from workbench.models.sources import is_demo_model

    ref = getattr((settings or get_settings()).models, MODELS[check_model(model)])
    if model == "clip" and scorer:
        from workbench.models.clip import image_embeddings
        from workbench.models.scorers import load_scorer

        s = load_scorer(scorer, device, settings)
        dim = int(image_embeddings(s.model, s.preprocess, [Image.new("RGB", (8, 8))], device).shape[1])
        return Embedder("clip", s.label, dim,
                        lambda ims: image_embeddings(s.model, s.preprocess, ims, device).cpu().numpy(),
                        is_demo_model(s.path))
    if model == "dino":
        from workbench.models.dinov2 import load_dinov2

        dino = load_dinov2(ref, device)
        return Embedder("dino", ref, dino.dim, lambda ims: dino.embeddings(ims).float().numpy(), dino.demo)
    from workbench.models.clip import image_embeddings
    from workbench.models.sources import load_open_clip

    net, preprocess, _ = load_open_clip(ref, device)
    dim = int(image_embeddings(net, preprocess, [Image.new("RGB", (8, 8))], device).shape[1])
    return Embedder("clip", ref, dim, lambda ims: image_embeddings(net, preprocess, ims, device).cpu().numpy(),
                    is_demo_model(ref))


# -- garment regions -----------------------------------------------------------------------------------------------

def index_region(image: Image.Image, masks: MaskTools | None = None) -> Image.Image:
    """What a reference photo is embedded as: its garment crop, or the whole photo without one."""
    if masks is not None:
        try:
            return masks.masked_crop(image, masks.garment_mask(image))
        except ValueError:  # nothing stands out from the background
            pass
    return image.convert("RGB")


def query_regions(image: Image.Image, masks: MaskTools | None = None) -> list[Image.Image]:
    """What a queried image is searched as: the whole frame, the garment crop, and each large part of the garment
    mask on its own (other garments in the frame)."""
    whole = image.convert("RGB")
    if masks is None:
        return [whole]
    try:
        m = masks.garment_mask(image)
    except ValueError:
        return [whole]
    out = [whole, masks.masked_crop(image, m)]
    from scipy import ndimage as ndi

    labels, n = ndi.label(m.mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        for lab in np.flatnonzero(sizes >= COMPONENT_MIN * m.mask.size) + 1:
            part = labels == lab
            out.append(masks.masked_crop(image, dataclasses.replace(m, mask=part, alpha=m.alpha * part)))
    return out


# -- building the index --------------------------------------------------------------------------------------------

def _encode(vector: np.ndarray) -> bytes:
    v = np.asarray(vector, dtype=np.float32)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(STORE_DTYPE).tobytes()


def build_index(actor: Actor, model: str = "clip", items: Iterable[int] | None = None, *,
                embedder: Embedder | None = None, masks: MaskTools | None = None,
                settings: Settings | None = None, batch_size: int = 16) -> IndexResult:
    """Embed the reference photos (``items``, default: every item linked to a product) that have no embedding for
    this model yet; a re-run adds nothing. Needs ``evaluate``. With the model's weights missing, nothing is embedded
    and ``result.unavailable`` says why and what to run."""
    who = require(actor, "evaluate", settings=settings)
    settings = settings or get_settings()
    check_model(model)
    start = time.perf_counter()
    ref = embedder.model_ref if embedder else f"{model}:{getattr(settings.models, MODELS[model])}"
    with session_scope(settings) as s:
        if items is None:
            wanted = list(s.scalars(select(ProductItem.item_id).order_by(ProductItem.item_id)))
        else:
            wanted = sorted({int(i) for i in items})
        rows = {i.id: i for i in s.scalars(select(Item).where(Item.id.in_(wanted)))} if wanted else {}
        if items is not None and len(rows) < len(wanted):
            raise RetrievalError(f"items: no dataset item with id {', '.join(str(i) for i in wanted if i not in rows)}")
        done = set(s.scalars(select(ItemEmbedding.item_id).where(ItemEmbedding.model_ref == ref,
                                                                 ItemEmbedding.item_id.in_(wanted))))
        todo = [(i, settings.path("datasets", str(rows[i].dataset_id), rows[i].path)) for i in wanted
                if i not in done]
    from workbench.models.sources import ModelUnavailable, is_demo_model

    if embedder is None and todo:  # the model is loaded only when there is something to embed
        try:
            embedder = load_embedder(model, settings)
        except ModelUnavailable as exc:
            return IndexResult(model, ref, already=len(done), total=len(done), unavailable=unavailable_text(exc))
    result = IndexResult(model, ref, demo=embedder.demo if embedder else is_demo_model(ref.split(":", 1)[1]))
    result.already = len(done)
    for at in range(0, len(todo), batch_size):
        ids, crops = [], []
        for item_id, path in todo[at:at + batch_size]:
            try:
                with Image.open(path) as im:
                    crops.append(index_region(im.convert("RGB"), masks))
                ids.append(item_id)
            except (OSError, ValueError) as exc:
                result.failed.append(f"item {item_id}: {path}: {exc.__class__.__name__}: {exc}")
        if not crops:
            continue
        vectors = np.asarray(embedder.embed(crops), dtype=np.float32)
        with session_scope(settings) as s:
            for item_id, vec in zip(ids, vectors):
                if s.get(ItemEmbedding, (item_id, ref)) is None:  # another build may have added it meanwhile
                    s.add(ItemEmbedding(item_id=item_id, model_ref=ref, dim=int(vec.shape[0]), vector=_encode(vec),
                                        created_at=utcnow()))
                    result.added += 1
    with session_scope(settings) as s:
        result.total = s.scalar(select(func.count()).select_from(ItemEmbedding)
                                .where(ItemEmbedding.model_ref == ref)) or 0
        if result.added:
            audit(s, who.username, "products.index", "item_embeddings", ref,
                  after={"added": result.added, "total": result.total, "failed": len(result.failed)})
    if result.added:
        clear_cache(ref)
    result.seconds = time.perf_counter() - start
    return result


# -- the in-memory matrix ------------------------------------------------------------------------------------------

@dataclass
class _Matrix:
    item_ids: np.ndarray  # int64 (n,)
    vectors: Any  # torch float16 (n, d)
    dim: int
    stamp: tuple[Any, ...]
    seconds: float
    checked: float = 0.0  # time.monotonic() of the last freshness check


_CACHE: dict[tuple[str, str], _Matrix] = {}
_LOCK = threading.Lock()


def _stamp(s: Any, model_ref: str) -> tuple[Any, ...]:
    q = select(func.count(), func.max(ItemEmbedding.created_at)).where(ItemEmbedding.model_ref == model_ref)
    return tuple(s.execute(q).one())


def _matrix(model_ref: str, settings: Settings) -> _Matrix:
    import torch

    key = (settings.db_url, model_ref)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and time.monotonic() - cached.checked < FRESH_SECONDS:
            return cached
    with session_scope(settings) as s:
        stamp = _stamp(s, model_ref)
        if cached is not None and cached.stamp == stamp:
            cached.checked = time.monotonic()
            return cached
        start = time.perf_counter()
        rows = s.execute(select(ItemEmbedding.item_id, ItemEmbedding.dim, ItemEmbedding.vector)
                         .where(ItemEmbedding.model_ref == model_ref).order_by(ItemEmbedding.item_id)).all()
    dims = {d for _, d, _ in rows}
    if len(dims) > 1:
        raise RetrievalError(f"item_embeddings of {model_ref!r} have several dimensions {sorted(dims)}: the model "
                             "changed under the same reference; delete its rows and run `workbench products index`")
    dim = dims.pop() if dims else 0
    flat = np.frombuffer(b"".join(v for _, _, v in rows), dtype=STORE_DTYPE)
    vectors = torch.from_numpy(flat.astype(np.float16).reshape(len(rows), dim).copy())
    m = _Matrix(np.fromiter((i for i, _, _ in rows), dtype=np.int64, count=len(rows)), vectors, dim, stamp,
                time.perf_counter() - start, time.monotonic())
    with _LOCK:
        _CACHE[key] = m
    return m


def load_index(model_ref: str, settings: Settings | None = None) -> LoadedIndex:
    """Load (or reuse) the in-memory matrix of ``model_ref`` and say how big it is and how long reading it took."""
    m = _matrix(model_ref, settings or get_settings())
    return LoadedIndex(model_ref, len(m.item_ids), m.dim, m.vectors.numel() * 2 / 1e6, m.seconds)


def clear_cache(model_ref: str | None = None) -> None:
    """Forget the loaded matrices (of one model, or all): the next query reads the table again."""
    with _LOCK:
        for key in [k for k in _CACHE if model_ref is None or k[1] == model_ref]:
            del _CACHE[key]


# -- searching -----------------------------------------------------------------------------------------------------

def nearest_by_vector(vectors: np.ndarray, model_ref: str, k: int = 5, exclude: Iterable[str] = (),
                      settings: Settings | None = None) -> list[ProductMatch]:
    """The ``k`` products whose photos are nearest to ``vectors`` ((d,) or (regions, d) embeddings of
    ``model_ref``), best first, leaving out the SKUs in ``exclude``. A product scores its best photo's cosine with
    the best region."""
    import torch

    settings = settings or get_settings()
    m = _matrix(model_ref, settings)
    q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if not len(m.item_ids):
        return []
    if q.shape[1] != m.dim:
        raise RetrievalError(f"a query of dimension {q.shape[1]} against the {model_ref!r} index of dimension {m.dim}")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    with torch.no_grad():  # one matrix-vector product per region: on CPU, float16 (n, d) @ (d, r) is much slower
        q16 = torch.from_numpy(q.astype(np.float16))
        scores = torch.stack([m.vectors @ row for row in q16]).float().amax(dim=0).numpy()
    skip = set(exclude)
    want = min(len(scores), max(CANDIDATES, 4 * (k + len(skip))))
    top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
    best = {int(m.item_ids[i]): float(scores[i]) for i in top}
    with session_scope(settings) as s:
        rows = s.execute(select(ProductItem.item_id, Product.sku, Product.name, Product.url, Product.price,
                                Product.currency).join(Product, Product.id == ProductItem.product_id)
                         .where(ProductItem.item_id.in_(list(best)))).all()
    out: dict[str, ProductMatch] = {}
    for item_id, sku, name, url, price, currency in rows:
        score = best[item_id]
        if sku in skip or (sku in out and out[sku].score >= score):
            continue
        out[sku] = ProductMatch(sku, name, url, _dec(price), currency, score, item_id)
    return sorted(out.values(), key=lambda x: (-x.score, x.sku))[:k]


def nearest_products(image: Image.Image | str | Path, k: int = 5, model: str = "clip", *,
                     embedder: Embedder | None = None, masks: MaskTools | None = None, exclude: Iterable[str] = (),
                     settings: Settings | None = None) -> list[ProductMatch]:
    """The ``k`` catalog products nearest to ``image`` (a PIL image or a path): its whole frame, its garment crop
    and each large garment part are searched, a product keeps its best score. Raises ModelUnavailable when the
    model's weights are missing."""
    settings = settings or get_settings()
    embedder = embedder or load_embedder(model, settings)
    if not isinstance(image, Image.Image):
        with Image.open(image) as im:
            image = im.convert("RGB")
    vectors = np.asarray(embedder.embed(query_regions(image, masks)), dtype=np.float32)
    return nearest_by_vector(vectors, embedder.model_ref, k, exclude, settings)
