"""`workbench products list|show|create|edit|link|unlink|logo-region|merge|train|measure`: the Products tab from the
command line.

    workbench products list --text coat
    workbench products show AUR-1001
    workbench products edit AUR-1001 --price 249.00 --currency EUR --url https://shop.example/p/AUR-1001 \
        --attr fit=regular
    workbench products merge AUR-1001 aurelo-navy-wool-coat
    workbench products logo-region AUR-1001 --corners 40,30,90,34,88,52,38,48   # where the logo goes (photo pixels)
    workbench products train AUR-1001 AUR-2002 --steps 800
    workbench products index --model clip          # embed the reference photos not yet in the retrieval index
    workbench products tag --batch ss26            # record the catalog products each image shows (shop-the-look)
    workbench products nearest look.png --k 5      # the nearest catalog products of any image
    workbench products measure AUR-1001          # or --all: the garment's Lab colour from its photos

The CLI acts as ``workbench.auth.operator.cli_actor``: the named account (``--as``) once the workspace has accounts,
else the operator as admin; index and tag as an analyst (retrieval is part of the evaluation: ``evaluate``).
"""
from __future__ import annotations

import json

import typer

app = typer.Typer(help="Products (SKUs): list, show, create, edit, link photos, merge, train, measure colours, "
                  "shop-the-look.",
                  no_args_is_help=True)


def _actor():
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit()


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _attrs(pairs: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r}: write key=value (key= removes the key)", param_hint="--attr")
        out[key.strip()] = value if value != "" else None
    return out


@app.command("list")
def list_cmd(
    text: str = typer.Option("", help="Text in sku, name, colour or brand."),
    category: str = typer.Option("", help="Exact category."),
    limit: int = typer.Option(200, help="At most this many."),
) -> None:
    """List products: sku, name, category, colour, price, photos."""
    from workbench.products import list_products

    rows = list_products(text, category, limit=limit)
    if not rows:
        typer.echo("no products (import a source that names them, or `workbench products create`)")
        return
    for p in rows:
        typer.echo(f"{p.sku:<24} {p.name[:40]:<40} {p.category[:16]:<16} {p.colour[:12]:<12} "
                   f"{p.price_label:>14} {len(p.item_ids):>3} photo(s)")


@app.command("show")
def show_cmd(sku: str = typer.Argument(...)) -> None:
    """One product's fields, photos, token, LoRAs and linked generations (JSON)."""
    from workbench.products import (
        ProductError,
        generations_of_product,
        get_product,
        loras_for,
    )

    try:
        p = get_product(sku)
    except ProductError as exc:
        _fail(exc)
    data = {**p.as_dict(), "images": [str(x) for x in p.images],
            "loras": [{"run_id": x.run_id, "token": x.token, "lora": x.lora_path, "status": x.status}
                      for x in loras_for(sku)],
            "generations": generations_of_product(sku), "logo_region": _region_dict(sku), "updated_by": p.updated_by,
            "updated_at": p.updated_at.isoformat(timespec="seconds") if p.updated_at else None}
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _region_dict(sku: str):
    from workbench.products.logo_region import logo_region

    r = logo_region(sku)
    return None if r is None else r.as_dict()


@app.command("create")
def create_cmd(
    sku: str = typer.Argument(...),
    name: str = typer.Option("", help="Product name."),
    category: str = typer.Option("", help="Category (its noun is the class word of training prompts)."),
    items: list[int] = typer.Option([], "--item", help="A dataset item id of a reference photo (repeat)."),
) -> None:
    """Create a product (edit its other fields with `edit`)."""
    from workbench.products import ProductError, create_product

    try:
        p = create_product(_actor(), sku, name, category=category, item_ids=items)
    except ProductError as exc:
        _fail(exc)
    typer.echo(f"created {p.sku} with {len(p.item_ids)} photo(s)")


@app.command("edit")
def edit_cmd(
    sku: str = typer.Argument(...),
    name: str = typer.Option(None), brand: str = typer.Option(None), category: str = typer.Option(None),
    colour: str = typer.Option(None, help="Colour name."),
    price: str = typer.Option(None, help="Amount such as 249.00 (empty: no price)."),
    currency: str = typer.Option(None, help="ISO 4217 code, e.g. EUR."),
    url: str = typer.Option(None, help="Product page, http(s) only."),
    attr: list[str] = typer.Option([], "--attr", help="key=value attribute (repeat; key= removes it)."),
) -> None:
    """Change fields of a product; only the options given change."""
    from workbench.products import ProductError, update_product

    fields = {k: v for k, v in dict(name=name, brand=brand, category=category, colour=colour, price=price,
                                     currency=currency, url=url).items() if v is not None}
    if attr:
        fields["attributes"] = _attrs(attr)
    if not fields:
        raise typer.BadParameter("give at least one field to change (see --help)")
    try:
        p = update_product(_actor(), sku, **fields)
    except ProductError as exc:
        _fail(exc)
    typer.echo(json.dumps(p.as_dict(), indent=2, ensure_ascii=False))


@app.command("link")
def link_cmd(sku: str = typer.Argument(...), items: list[int] = typer.Argument(..., help="Dataset item ids."),
             move: bool = typer.Option(False, help="Take items that belong to another product.")) -> None:
    """Make dataset items reference photos of a product."""
    from workbench.products import ProductError, link_items

    try:
        p = link_items(_actor(), sku, items, move=move)
    except ProductError as exc:
        _fail(exc)
    typer.echo(f"{p.sku}: {len(p.item_ids)} photo(s)")


@app.command("unlink")
def unlink_cmd(sku: str = typer.Argument(...),
               items: list[int] = typer.Argument(..., help="Dataset item ids.")) -> None:
    """The items stop being photos of the product (they stay in their dataset)."""
    from workbench.products import ProductError, unlink_items

    try:
        p = unlink_items(_actor(), sku, items)
    except ProductError as exc:
        _fail(exc)
    typer.echo(f"{p.sku}: {len(p.item_ids)} photo(s)")


@app.command("logo-region")
def logo_region_cmd(
    sku: str = typer.Argument(...),
    corners: str = typer.Option(None, help="x1,y1,...,x4,y4: top-left, top-right, bottom-right, bottom-left of where "
                                           "the logo goes, in pixels of the photo (or 0..1 with --normalised)."),
    item: int = typer.Option(None, help="Which photo of the product (a dataset item id; default its first)."),
    normalised: bool = typer.Option(False, "--normalised", help="The corners are x / width, y / height (0..1)."),
    clear: bool = typer.Option(False, "--clear", help="Forget the region (of --item, else of every photo)."),
) -> None:
    """Record where the logo goes on a product's photo; `workbench generate logo --product SKU` and the Generate
    page's Place logo tab use it when no corners are given, on the photo and on its product scenes. Without
    --corners or --clear: print the region (JSON)."""
    from workbench.generate.scenes.logo import LogoError, parse_corners
    from workbench.products import ProductError
    from workbench.products.logo_region import (clear_logo_region, logo_region, normalise, photo_size,
                                                set_logo_region)

    if corners and clear:
        _fail(ValueError("give --corners or --clear, not both"))
    try:
        if clear:
            had = clear_logo_region(_actor(), sku, item_id=item)
            typer.echo(f"{sku}: logo region cleared" if had else f"{sku}: no logo region to clear")
            return
        if corners is None:
            r = logo_region(sku, item_id=item)
            if r is None:
                typer.echo(f"{sku}: no logo region recorded (set one with --corners)")
                raise typer.Exit(1)
            w, h = photo_size(r.item_id)
            typer.echo(json.dumps({**r.as_dict(), "pixels": [[round(x, 1), round(y, 1)] for x, y in r.pixels(w, h)],
                                   "photo_size": [w, h]}))
            return
        pts = parse_corners(corners)
        if not normalised:
            from workbench.products import get_product

            target = item if item is not None else (get_product(sku).item_ids or [None])[0]
            if target is None:
                raise ProductError(f"{sku} has no photos: a logo region belongs to a photo; link one first")
            pts = normalise(pts, *photo_size(target))
        r = set_logo_region(_actor(), sku, pts, item_id=item)
    except (ProductError, LogoError) as exc:
        _fail(exc)
    typer.echo(f"{r.sku}: logo region of item {r.item_id} saved: "
               + " ".join(f"({x:.3f},{y:.3f})" for x, y in r.corners))


@app.command("merge")
def merge_cmd(keep: str = typer.Argument(..., help="The SKU kept."),
              others: list[str] = typer.Argument(..., help="SKUs folded into it (then deleted).")) -> None:
    """Merge duplicate products into one: photos, generation and LoRA links move; empty fields are filled."""
    from workbench.products import ProductError, merge_products

    try:
        p = merge_products(_actor(), keep, others)
    except ProductError as exc:
        _fail(exc)
    typer.echo(f"{p.sku}: merged {', '.join(p.attributes.get('merged_from', []))}; {len(p.item_ids)} photo(s)")


@app.command("train")
def train_cmd(
    skus: list[str] = typer.Argument(..., help="One SKU (DreamBooth with prior preservation) or several (one token "
                                               "each)."),
    steps: int = typer.Option(None, help="max_train_steps (default 500)."),
    class_images: int = typer.Option(None, help="num_class_images for prior preservation (default 50)."),
) -> None:
    """Start a DreamBooth-LoRA run on the products' reference photos; prints the run id and tokens."""
    from workbench.products import ProductError, tokens_of_run
    from workbench.products.training import start_product_run
    from workbench.train.config import ConfigError
    from workbench.train.runs import RunError

    overrides = {k: v for k, v in (("max_train_steps", steps), ("num_class_images", class_images)) if v is not None}
    try:
        run_id = start_product_run(_actor(), skus, **overrides)
    except (ProductError, ConfigError, RunError) as exc:
        _fail(exc)
    tokens = tokens_of_run(run_id)
    typer.echo(f"run {run_id} queued; tokens: " + ", ".join(f"{k} = {v}" for k, v in tokens.items())
               + f"\nwatch it with `workbench runs show {run_id}`")


# -- shop-the-look ---------------------------------------------------------------------------------------------------

MODEL_OPT = typer.Option("clip", "--model", help="clip (settings.models.clip_scorer) or dino (settings.models.dinov2).")


def _masks():
    """The garment masks module (garment crops for retrieval)."""
    from workbench.fidelity import masks

    return masks


SCORER_OPT = typer.Option("", "--scorer", help="CLIP scorer for --model clip: tuned:<name> (see `workbench train "
                                                "scorers`) or an open_clip reference; default: the configured one.")
BRAND_OPT = typer.Option("", "--brand", help="Use this brand profile's `scorer:` (CLIP).")


def _embedder(model: str, scorer: str, brand: str):
    """None (the configured model) or the CLIP embedder of ``scorer`` / the brand profile's scorer."""
    if brand and not scorer:
        from workbench.prompts import load_library

        profile = load_library().brands.get(brand)
        if profile is None:
            _fail(ValueError(f"no brand profile {brand!r}"))
        scorer = profile.scorer
    if not scorer or model != "clip":
        return None
    from workbench.models.scorers import ScorerError
    from workbench.models.sources import ModelUnavailable
    from workbench.products.retrieval import load_embedder, unavailable_text

    try:
        return load_embedder("clip", scorer=scorer)
    except ScorerError as exc:
        _fail(exc)
    except ModelUnavailable as exc:
        _unavailable(unavailable_text(exc))


def _unavailable(text: str) -> None:
    typer.echo(text, err=True)
    raise typer.Exit(1)


def _match_line(m) -> str:
    price = f"{m.price} {m.currency}".strip() if m.price is not None else "no price"
    return f"{m.sku:<24} {m.score:6.3f}  {m.name[:40]:<40} {price:>14}  {m.url or '-'}"


@app.command("index")
def index_cmd(model: str = MODEL_OPT,
              items: list[int] = typer.Option([], "--item", help="Only these dataset item ids (repeat)."),
              scorer: str = SCORER_OPT, brand: str = BRAND_OPT) -> None:
    """Embed the products' reference photos (garment crops) that are not in the retrieval index yet."""
    from workbench.auth.operator import cli_actor_or_exit
    from workbench.products.retrieval import RetrievalError, build_index

    try:
        r = build_index(cli_actor_or_exit("analyst"), model, items or None, masks=_masks(),
                        embedder=_embedder(model, scorer, brand))
    except RetrievalError as exc:
        _fail(exc)
    if r.unavailable:
        _unavailable(r.unavailable)
    typer.echo(f"{r.model_ref}: {r.added} added, {r.already} already indexed, {r.total} in the index "
               f"({r.seconds:.1f} s)" + (" — demo model: matches mean nothing" if r.demo else ""))
    for line in r.failed:
        typer.echo(f"  failed: {line}", err=True)


@app.command("tag")
def tag_cmd(batch: str = typer.Option(None, help="Every kept image of this generation batch."),
            generation: int = typer.Option(None, help="One generated image id."),
            k: int = typer.Option(3, help="At most this many retrieved products per image."),
            min_score: float = typer.Option(None, help="Lowest similarity recorded (default per model)."),
            model: str = MODEL_OPT, scorer: str = SCORER_OPT, brand: str = BRAND_OPT) -> None:
    """Record the catalog products each generated image shows (source "retrieved"), besides its own SKU."""
    from workbench.auth.operator import cli_actor_or_exit
    from workbench.products.retrieval import RetrievalError
    from workbench.products.tagging import tag_batch, tag_generation

    if (batch is None) == (generation is None):
        raise typer.BadParameter("give either --batch NAME or --generation ID")
    actor = cli_actor_or_exit("analyst")
    emb = _embedder(model, scorer, brand)
    try:
        results = (tag_batch(actor, batch, k, min_score, model=model, masks=_masks(), embedder=emb)
                   if batch is not None else
                   [tag_generation(actor, generation, k, min_score, model=model, masks=_masks(), embedder=emb)])
    except RetrievalError as exc:
        _fail(exc)
    if results and results[0].unavailable:
        _unavailable(results[0].unavailable)
    for r in results:
        shown = ", ".join(f"{m.sku} ({m.score:.3f})" for m in r.linked) or "none"
        own = f"; generated for {', '.join(r.generated_for)}" if r.generated_for else ""
        typer.echo(f"image {r.generation_id}: {shown}{own}" + (f"  ({r.note})" if r.note else ""))
    if results and results[0].demo:
        typer.echo("note: a demo model made these matches: they mean nothing")


@app.command("nearest")
def nearest_cmd(image: str = typer.Argument(..., help="An image file."),
                k: int = typer.Option(5, help="How many products."), model: str = MODEL_OPT,
                scorer: str = SCORER_OPT, brand: str = BRAND_OPT) -> None:
    """The catalog products nearest to an image (its whole frame, garment crop and each large garment part)."""
    from workbench.models.sources import ModelUnavailable
    from workbench.products.retrieval import (
        RetrievalError,
        nearest_products,
        unavailable_text,
    )

    try:
        matches = nearest_products(image, k, model, masks=_masks(), embedder=_embedder(model, scorer, brand))
    except ModelUnavailable as exc:
        _unavailable(unavailable_text(exc))
    except (RetrievalError, OSError) as exc:
        _fail(exc)
    if not matches:
        typer.echo(f"no matches: the {model} index is empty (run `workbench products index --model {model}`)")
    for m in matches:
        typer.echo(_match_line(m))
@app.command("measure")
def measure_cmd(
    skus: list[str] = typer.Argument(None, help="SKUs to measure."),
    all_: bool = typer.Option(False, "--all", help="Every product with photos."),
) -> None:
    """Measure each product's garment colour (CIE Lab, from its reference photos) and store it."""
    from workbench.products import ProductError, list_products, measure_colour

    if all_ == bool(skus):
        _fail(ValueError("name SKUs or give --all (not both)"))
    targets = [p.sku for p in list_products(limit=100_000) if p.item_ids] if all_ else list(skus)
    failed = 0
    for sku in targets:
        try:
            p = measure_colour(_actor(), sku)
        except ProductError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        lab = ", ".join(f"{v:.1f}" for v in p.colour_lab)
        typer.echo(f"{sku}: Lab ({lab}) {p.swatch}")
    if failed:
        raise typer.Exit(2)
