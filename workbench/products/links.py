"""What ties products to generated images and to trained LoRAs: the tables the generation, review, export and
retrieval code read and write.

    link_generation(actor, generation_id, ["AUR-1001"])                       # generated for this SKU
    link_generation(actor, generation_id, ["AUR-2002"], source="retrieved", score=0.83)
    products_of_generation(generation_id)       # -> [GenerationLink(sku="AUR-1001", url=..., price=..., ...)]
    loras_for("AUR-1001")                # -> [LoraLink(run_id=7, token="bkz", lora_path=..., ...)], newest first
    tokens_of_run(7)                             # -> {"AUR-1001": "bkz", ...}
    record_fidelity(actor, generation_id, "AUR-1001", result, False, "colour ΔE 7.9 vs AUR-1001 reference, limit 5")
    fidelity_rows("AUR-1001")                    # -> [FidelityRow(generation_id, sku, dino, delta_e, passed, ...)]
    fidelity_summary()                           # per SKU: means and pass rate, worst first (the Evaluate page)

Linking an image generated for a product needs ``generate`` (the generating user, or the job acting for them);
linking a retrieved product needs ``evaluate`` (retrieval runs with the evaluation). Both replace an earlier link of
the same (generation, product, source). The LoRA links are written by ``products.training.start_product_run``.
The fidelity of an image generated for a product (its scores against the product's reference photos and the brand
gate's verdict, ``generate.product.check_fidelity``) is stored on its "generated_for" link (``generate``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench import trash
from workbench.db import audit, session_scope, utcnow
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
    fidelity_passed: bool | None = None  # the brand's fidelity gate (None: not checked)
    fidelity_reason: str = ""
    scored_by: str = ""  # the model that made ``score`` (a retrieval index's model_ref)


@dataclass
class LoraLink:
    run_id: int
    sku: str
    token: str
    prompt: str  # the instance prompt / caption the run trained it with
    lora_path: str | None  # the run's registered LoRA folder, None until the run finished
    status: str  # the run's first job status


def link_generation(actor: Actor, generation_id: int, skus: Iterable[str], source: str = "generated_for",
                    score: float | None = None, settings: Settings | None = None, scored_by: str = "") -> list[str]:
    """Record that generation ``generation_id`` depicts ``skus``; returns the SKUs linked. Unknown SKUs are an
    error naming them (nothing is linked then). ``scored_by``: the model that made ``score``."""
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
                                        score=score, scored_by=scored_by, created_by=who.username,
                                        created_at=utcnow()))
            else:
                row.score, row.scored_by, row.created_by, row.created_at = score, scored_by, who.username, utcnow()
    return wanted


def products_of_generation(generation_id: int, settings: Settings | None = None) -> list[GenerationLink]:
    """The products a generated image shows: "generated_for" first, then retrieved ones by score."""
    with session_scope(settings) as s:
        rows = s.execute(select(GenerationProduct, Product).join(Product)
                         .where(GenerationProduct.generation_id == int(generation_id))).all()
    links = [GenerationLink(g.generation_id, p.sku, p.name, p.url, _dec(p.price),
                            p.currency, g.source, g.score, g.fidelity_passed, g.fidelity_reason or "",
                            g.scored_by or "")
             for g, p in rows]
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
                         .join(Job, Job.id == LoraProduct.run_id)
                         .where(Product.sku == sku, LoraProduct.run_id.not_in(trash.hidden_ids("run")))
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


# -- fidelity of images generated for a product ----------------------------------------------------------------------

@dataclass
class FidelityRow:
    generation_id: int
    sku: str
    dino: float | None
    clip_i: float | None
    delta_e: float | None
    shape_iou: float | None
    passed: bool | None  # None: not checked (no limit applied, or no reference photos)
    reason: str
    created_at: dt.datetime | None  # when the fidelity was checked
    demo: bool = False  # a tiny demo model made one of the numbers
    unavailable: dict[str, str] | None = None  # metric -> "unavailable: <model> — run ..."


def _as_dict(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    data = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def record_fidelity(actor: Actor, generation_id: int, sku: str, result: Any, passed: bool | None, reason: str,
                    settings: Settings | None = None) -> FidelityRow:
    """Store an image's fidelity against ``sku`` (``result``: a ``fidelity.FidelityResult`` or its ``as_dict()``,
    None when nothing could be measured) and the gate's verdict on its "generated_for" link. Needs ``generate``."""
    who = require(actor, "generate", settings=settings)
    data = _as_dict(result)
    with session_scope(settings) as s:
        product_id = s.scalar(select(Product.id).where(Product.sku == sku))
        if product_id is None:
            raise ProductError(f"generation {generation_id}: no product with sku {sku}")
        row = s.get(GenerationProduct, (int(generation_id), product_id, "generated_for"))
        if row is None:
            raise ProductError(f"generation {generation_id} was not generated for {sku}: link it first "
                               f"(link_generation(actor, {generation_id}, [{sku!r}]))")
        row.fidelity, row.fidelity_passed, row.fidelity_reason = data, passed, str(reason or "")
        row.fidelity_at = utcnow()
        audit(s, who.username, "products.fidelity", "generation", generation_id,
              after={"sku": sku, "passed": passed, "reason": row.fidelity_reason})
        return _fidelity_row(row, sku)


def _fidelity_row(g: GenerationProduct, sku: str) -> FidelityRow:
    f: Mapping[str, Any] = g.fidelity or {}
    return FidelityRow(g.generation_id, sku, f.get("dino"), f.get("clip_i"), f.get("delta_e"), f.get("shape_iou"),
                       g.fidelity_passed, g.fidelity_reason or "", g.fidelity_at, bool(f.get("demo")),
                       dict(f.get("unavailable") or {}))


def fidelity_rows(sku: str | None = None, generation_ids: Iterable[int] | None = None,
                  settings: Settings | None = None, session: Session | None = None) -> list[FidelityRow]:
    """The fidelity checks of images generated for products (of ``sku``, or of ``generation_ids``), oldest first;
    links never checked are left out. ``session``: read in the caller's (the review queue's) session."""
    q = (select(GenerationProduct, Product.sku).join(Product)
         .where(GenerationProduct.source == "generated_for", GenerationProduct.fidelity_at.is_not(None))
         .order_by(GenerationProduct.generation_id, Product.sku))
    if sku is not None:
        q = q.where(Product.sku == sku)
    if generation_ids is not None:
        q = q.where(GenerationProduct.generation_id.in_([int(i) for i in generation_ids]))
    if session is not None:
        return [_fidelity_row(g, sku_) for g, sku_ in session.execute(q).all()]
    with session_scope(settings) as s:
        return [_fidelity_row(g, sku_) for g, sku_ in s.execute(q).all()]


@dataclass
class ProductFidelity:
    """One SKU's generated images, summarised: what the Evaluate page's Products view charts."""

    sku: str
    images: int  # images checked
    passed: int
    failed: int
    mean_dino: float | None
    mean_delta_e: float | None
    mean_shape_iou: float | None
    demo: bool = False

    @property
    def pass_rate(self) -> float | None:
        decided = self.passed + self.failed
        return self.passed / decided if decided else None


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def fidelity_summary(rows: Iterable[FidelityRow] | None = None,
                     settings: Settings | None = None) -> list[ProductFidelity]:
    """Per SKU: images checked, passed/failed, mean DINO, mean ΔE, mean shape IoU; worst first (lowest pass rate,
    then largest mean ΔE)."""
    by_sku: dict[str, list[FidelityRow]] = {}
    for r in fidelity_rows(settings=settings) if rows is None else rows:
        by_sku.setdefault(r.sku, []).append(r)
    out = [ProductFidelity(sku, len(rs), sum(r.passed is True for r in rs), sum(r.passed is False for r in rs),
                           _mean([r.dino for r in rs]), _mean([r.delta_e for r in rs]),
                           _mean([r.shape_iou for r in rs]), any(r.demo for r in rs))
           for sku, rs in by_sku.items()]
    return sorted(out, key=lambda p: (1.0 if p.pass_rate is None else p.pass_rate, -(p.mean_delta_e or 0.0), p.sku))
