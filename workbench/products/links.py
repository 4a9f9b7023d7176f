"""What ties products to generated images and to trained LoRAs: the tables the generation, review, export and
retrieval code read and write.

    link_generation(actor, generation_id, ["AUR-1001"])                       # generated for this SKU
    link_generation(actor, generation_id, ["AUR-2002"], source="retrieved", score=0.83)
    products_of_generation(generation_id)       # -> [GenerationLink(sku="AUR-1001", url=..., price=..., ...)]
    loras_for("AUR-1001")                        # -> [LoraLink(run_id=7, token="bkz", lora_path=..., ...)], newest first
    tokens_of_run(7)                             # -> {"AUR-1001": "bkz", ...}

Linking an image generated for a product needs ``generate`` (the generating user, or the job acting for them);
linking a retrieved product needs ``evaluate`` (retrieval runs with the evaluation). Both replace an earlier link of
the same (generation, product, source). The LoRA links are written by ``products.training.start_product_run``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from workbench.db import session_scope, utcnow
from workbench.products.fields import ProductError
from workbench.products.records import _dec
from workbench.products.tables import GenerationProduct, LoraProduct, Product
from workbench.auth import Actor, require
from workbench.settings import Settings

SOURCES = {"generated_for": "generate", "retrieved": "evaluate"}  # link source -> the permission it needs


@dataclass
class GenerationLink:
    generation_id: int
    sku: str
    name: str
    url: str
    price: Decimal | None
    currency: str
    source: str  # generated_for | retrieved
    score: float | None


@dataclass
class LoraLink:
    run_id: int
    sku: str
    token: str
    prompt: str  # the instance prompt / caption the run trained it with
    lora_path: str | None  # the run's registered LoRA folder, None until the run finished
    status: str  # the run's first job status


def link_generation(actor: Actor, generation_id: int, skus: Iterable[str], source: str = "generated_for",
                    score: float | None = None, settings: Settings | None = None) -> list[str]:
    """Record that generation ``generation_id`` depicts ``skus``; returns the SKUs linked. Unknown SKUs are an
    error naming them (nothing is linked then)."""
    if source not in SOURCES:
        raise ProductError(f"source {source!r}: one of {', '.join(SOURCES)}")
    who = require(actor, SOURCES[source], settings=settings)
    wanted = list(dict.fromkeys(str(x).strip() for x in skus))
    with session_scope(settings) as s:
        found = dict(s.execute(select(Product.sku, Product.id).where(Product.sku.in_(wanted))).all())
        missing = [x for x in wanted if x not in found]
        if missing:
            raise ProductError(f"generation {generation_id}: no product with sku {', '.join(missing)}")
        for sku in wanted:
            row = s.get(GenerationProduct, (int(generation_id), found[sku], source))
            if row is None:
                s.add(GenerationProduct(generation_id=int(generation_id), product_id=found[sku], source=source,
                                        score=score, created_by=who.username, created_at=utcnow()))
            else:
                row.score, row.created_by, row.created_at = score, who.username, utcnow()
    return wanted


def products_of_generation(generation_id: int, settings: Settings | None = None) -> list[GenerationLink]:
    """The products a generated image shows: "generated_for" first, then retrieved ones by score."""
    with session_scope(settings) as s:
        rows = s.execute(select(GenerationProduct, Product).join(Product)
                         .where(GenerationProduct.generation_id == int(generation_id))).all()
    links = [GenerationLink(g.generation_id, p.sku, p.name, p.url, _dec(p.price),
                            p.currency, g.source, g.score) for g, p in rows]
    return sorted(links, key=lambda x: (x.source != "generated_for", -(x.score or 0.0), x.sku))


def generations_of_product(sku: str, source: str | None = None, settings: Settings | None = None) -> list[int]:
    """Ids of the generated images linked to ``sku`` (optionally of one source), oldest first."""
    with session_scope(settings) as s:
        q = select(GenerationProduct.generation_id).join(Product).where(Product.sku == sku)
        if source:
            q = q.where(GenerationProduct.source == source)
        return sorted(set(s.scalars(q)))


def loras_for(sku: str, settings: Settings | None = None) -> list[LoraLink]:
    """The training runs (and their LoRAs) that know ``sku``, newest first: the generation page preselects the first
    finished one."""
    from workbench.db import Job

    with session_scope(settings) as s:
        rows = s.execute(select(LoraProduct, Product.sku, Job.status).join(Product)
                         .join(Job, Job.id == LoraProduct.run_id).where(Product.sku == sku)
                         .order_by(LoraProduct.run_id.desc())).all()
        paths = _lora_paths(s, [r.run_id for r, _, _ in rows])
    return [LoraLink(r.run_id, sku_, r.token, r.prompt, paths.get(r.run_id), status) for r, sku_, status in rows]


def tokens_of_run(run_id: int, settings: Settings | None = None) -> dict[str, str]:
    """{sku: token} a run's LoRA was trained on (empty for a run that is not a product run)."""
    with session_scope(settings) as s:
        return dict(s.execute(select(Product.sku, LoraProduct.token).join(Product)
                              .where(LoraProduct.run_id == int(run_id)).order_by(Product.sku)).all())


def _lora_paths(s, run_ids: list[int]) -> dict[int, str]:
    """The newest registered LoRA folder of each run (the loras table is the training branch's; absent: none)."""
    if not run_ids:
        return {}
    try:
        from workbench.train.tables import Lora
    except ImportError:  # pragma: no cover - the training capability is part of the product
        return {}
    out: dict[int, str] = {}
    for run_id, path in s.execute(select(Lora.run_id, Lora.path).where(Lora.run_id.in_(run_ids)).order_by(Lora.id)):
        out[run_id] = path
    return out
