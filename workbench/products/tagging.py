"""Shop-the-look tags: the catalog products a generated image shows besides the one it was generated for, recorded
as ``generation_products`` rows with source "retrieved" and the similarity as score (issue #20 item 7).

    tag_generation(actor, 42, k=3)                # -> TagResult(linked=[ProductMatch...], generated_for=["AUR-1001"])
    tag_batch(actor, "ss26", model="dino")        # every kept image of a batch, the model loaded once
    tag_if_indexed(actor, "ss26")                 # after a generation batch: only when a catalog index exists

Needs ``evaluate`` (retrieval runs with the evaluation; a job passes ``on_behalf_of(user, "evaluate")``). Idempotent:
a re-run replaces the image's retrieved links with the current matches (a product no longer among them is
unlinked); links of source "generated_for" are never touched, and those SKUs are never retrieved for the image.
With the model's weights missing, nothing is tagged and ``result.unavailable`` says why and what to run.

The image paths come from the ``generations`` table (owned by ``workbench.generate.tables``, a floor above
products): read here through a lightweight table of the three columns needed, as the migrations do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import delete, select

from workbench.auth import Actor, require
from workbench.db import session_scope
from workbench.products.links import link_generation, products_of_generation
from workbench.products.retrieval import (
    MODELS,
    Embedder,
    MaskTools,
    ProductMatch,
    RetrievalError,
    check_model,
    load_embedder,
    nearest_products,
    unavailable_text,
)
from workbench.products.tables import GenerationProduct, ItemEmbedding, Product
from workbench.settings import Settings, get_settings

# Cosines below these are "not the same product" for the released models (garment crops on white): starting points,
# to be tuned on a brand's own catalog. Tiny demo models score everything near 1; their tags mean nothing.
MIN_SCORE = {"clip": 0.80, "dino": 0.60}

_generations = sa.table("generations", sa.column("id", sa.Integer), sa.column("image_path", sa.String),
                        sa.column("batch", sa.String), sa.column("kept", sa.Boolean))


@dataclass
class TagResult:
    generation_id: int
    linked: list[ProductMatch] = field(default_factory=list)  # the retrieved products recorded, best first
    generated_for: list[str] = field(default_factory=list)  # SKUs the image was made for (never retrieved)
    unlinked: list[str] = field(default_factory=list)  # earlier retrieved SKUs no longer among the matches
    unavailable: str | None = None
    note: str = ""
    demo: bool = False


def _image_path(generation_id: int, settings: Settings) -> str:
    with session_scope(settings) as s:
        path = s.scalar(select(_generations.c.image_path).where(_generations.c.id == int(generation_id)))
    if path is None:
        raise RetrievalError(f"generation {generation_id}: no such generated image "
                             "(see `workbench review queue --status all`)")
    return path


def _embedder(model: str, embedder: Embedder | None, settings: Settings) -> tuple[Embedder | None, str | None]:
    if embedder is not None:
        return embedder, None
    from workbench.models.sources import ModelUnavailable

    try:
        return load_embedder(model, settings), None
    except ModelUnavailable as exc:
        return None, unavailable_text(exc)


def tag_generation(actor: Actor, generation_id: int, k: int = 3, min_score: float | None = None, *,
                   model: str = "clip", embedder: Embedder | None = None, masks: MaskTools | None = None,
                   settings: Settings | None = None) -> TagResult:
    """Record the ``k`` nearest catalog products (score >= ``min_score``, default ``MIN_SCORE[model]``) of a
    generated image as its "retrieved" products, leaving out the SKUs it was generated for."""
    who = require(actor, "evaluate", settings=settings)
    settings = settings or get_settings()
    check_model(model if embedder is None else embedder.model)
    path = _image_path(generation_id, settings)
    result = TagResult(int(generation_id))
    embedder, result.unavailable = _embedder(model, embedder, settings)
    if embedder is None:
        return result
    result.demo = embedder.demo
    threshold = MIN_SCORE[embedder.model] if min_score is None else float(min_score)
    result.generated_for = [x.sku for x in products_of_generation(generation_id, settings)
                            if x.source == "generated_for"]
    try:
        matches = nearest_products(path, k, embedder=embedder, masks=masks, exclude=result.generated_for,
                                   settings=settings)
    except OSError as exc:
        raise RetrievalError(f"generation {generation_id}: cannot read its image {path}: {exc}") from None
    if not matches:
        result.note = (f"the {embedder.model} index is empty: run `workbench products index --model "
                       f"{embedder.model}` first")
    result.linked = [m for m in matches if m.score >= threshold]
    keep = {m.sku for m in result.linked}
    with session_scope(settings) as s:
        old = s.execute(select(Product.sku, Product.id).join(GenerationProduct)
                        .where(GenerationProduct.generation_id == int(generation_id),
                               GenerationProduct.source == "retrieved")).all()
        result.unlinked = sorted(sku for sku, _ in old if sku not in keep)
        gone = [pid for sku, pid in old if sku not in keep]
        if gone:
            s.execute(delete(GenerationProduct).where(GenerationProduct.generation_id == int(generation_id),
                                                      GenerationProduct.source == "retrieved",
                                                      GenerationProduct.product_id.in_(gone)))
    for m in result.linked:
        link_generation(who, generation_id, [m.sku], source="retrieved", score=round(m.score, 4), settings=settings,
                        scored_by=embedder.model_ref)
    return result


def tag_batch(actor: Actor, batch: str, k: int = 3, min_score: float | None = None, *, model: str = "clip",
              embedder: Embedder | None = None, masks: MaskTools | None = None,
              settings: Settings | None = None) -> list[TagResult]:
    """``tag_generation`` for every kept image of ``batch``, oldest first, with the model loaded once."""
    require(actor, "evaluate", settings=settings)
    settings = settings or get_settings()
    with session_scope(settings) as s:
        ids = list(s.scalars(select(_generations.c.id).where(_generations.c.batch == batch,
                                                             _generations.c.kept.is_(True))
                             .order_by(_generations.c.id)))
    if not ids:
        raise RetrievalError(f"batch {batch!r}: no kept generated images in it "
                             "(batch names: `workbench review queue --status all`)")
    embedder, why = _embedder(check_model(model), embedder, settings)
    if embedder is None:
        return [TagResult(i, unavailable=why) for i in ids]
    return [tag_generation(actor, i, k, min_score, model=model, embedder=embedder, masks=masks, settings=settings)
            for i in ids]


def indexed_model(settings: Settings | None = None) -> str | None:
    """The retrieval model ("clip" before "dino") whose configured weights have a catalog index, or None."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        for model, field_name in MODELS.items():
            ref = f"{model}:{getattr(settings.models, field_name)}"
            if s.scalar(select(ItemEmbedding.item_id).where(ItemEmbedding.model_ref == ref).limit(1)) is not None:
                return model
    return None


def tag_if_indexed(actor: Actor, batch: str, k: int = 3, *, masks: MaskTools | None = None,
                   settings: Settings | None = None) -> tuple[str | None, list[TagResult]]:
    """What a generation batch does when it ends: ``tag_batch`` with the model whose catalog index exists (built by
    `workbench products index`), so every kept image lists the catalog products it shows without anyone running
    `workbench products tag`. Returns (model, results); (None, []) when no index exists (nothing to match)."""
    require(actor, "evaluate", settings=settings)
    model = indexed_model(settings)
    if model is None:
        return None, []
    return model, tag_batch(actor, batch, k, model=model, masks=masks, settings=settings)
