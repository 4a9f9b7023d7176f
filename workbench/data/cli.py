"""`workbench data import|import-shop|shops|list|show|caption|preprocess|split|export|delete|demo`: the Datasets
page from the command line.

    workbench data demo                          # draw and import the demo catalog
    workbench data import path/to/styles.csv --name kaggle
    workbench data import-shop https://shop.example/ --dataset shop --daily
    workbench data show kaggle --flag near_duplicate
    workbench data caption kaggle --prefix "a photo of TOK" --wait
    workbench data split kaggle --val 0.1 --test 0.1 --seed 0
    workbench data preprocess kaggle --size 1024 --mode pad
"""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Datasets: import, inspect, caption, preprocess, split, export.", no_args_is_help=True)


def _actor():
    """Who the CLI acts as: the operator, as admin (whoever runs it can open the workspace database anyway)."""
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit()


def _dataset(ref: str):
    from workbench.data.store import DatasetError, get_dataset

    try:
        return get_dataset(ref)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="DATASET") from None


def _bar(label: str):
    state = {"last": -1}

    def progress(done: int, total: int | None, message: str) -> None:
        pct = int(100 * done / total) if total else None
        if pct is None or pct // 10 != state["last"]:
            state["last"] = pct // 10 if pct is not None else -1
            typer.echo(f"{label}: {message}", err=True)
    return progress


@app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="Folder, .zip, .csv, .parquet, save_to_disk folder, or hub name org/name."),
    name: str = typer.Option(None, help="Dataset name (default: the source's name; an existing name appends)."),
    template: str = typer.Option(None, help="Caption template for attribute CSVs, e.g. "
                                            "'a {baseColour} {articleType}'."),
    caption_column: str = typer.Option(None, help="Caption column (default: text, caption or prompt)."),
    kream: bool = typer.Option(None, "--kream/--no-kream",
                               help="Split KREAM text (default: when the name says kream)."),
    workers: int = typer.Option(None, help="Worker processes (default: CPU cores, at most 8)."),
    show_skipped: int = typer.Option(20, help="Skipped files to list."),
) -> None:
    """Import photos and captions into a dataset. Re-importing the same files adds nothing."""
    from workbench.data.captions import DEFAULT_TEMPLATE
    from workbench.data.sources import SourceError
    from workbench.products.importing import import_catalog  # the CLI composes: the photos, then their products

    try:
        report = import_catalog(_actor(), source, name=name, template=template or DEFAULT_TEMPLATE,
                                caption_column=caption_column, kream=kream, workers=workers,
                                progress=_bar("import"))
    except (SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    lines = report.summary().splitlines()
    head = [ln for ln in lines if not ln.startswith("skipped ")]
    skipped = [ln for ln in lines if ln.startswith("skipped ")]
    typer.echo("\n".join(head))
    for ln in skipped[:show_skipped]:
        typer.echo(ln)
    if len(skipped) > show_skipped:
        typer.echo(f"... and {len(skipped) - show_skipped} more skipped (see `workbench data show`)")


@app.command("import-shop")
def import_shop_cmd(
    url: str = typer.Argument(..., help="The shop's start URL, e.g. https://shop.example/ (one site is crawled)."),
    dataset: str = typer.Option(None, help="Dataset name (default: shop-<host>; an existing name adds to it)."),
    max_pages: int = typer.Option(500, help="HTML pages at most (images, robots.txt and sitemaps not counted)."),
    rate: float = typer.Option(1.0, help="Requests per second at most (robots.txt Crawl-delay can slow it more)."),
    timeout: float = typer.Option(15.0, help="Seconds per request."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Another host images may come from (a CDN); "
                                         "repeatable."),
    render_js: bool = typer.Option(False, help="Render pages in headless Chromium (JavaScript-only shops)."),
    allow_private: bool = typer.Option(False, help="Allow hosts on this machine or your own network (127.0.0.1, "
                                       "10.x, ...); refused by default."),
    daily: bool = typer.Option(None, "--daily/--no-daily", help="Schedule (or remove) a daily re-crawl job."),
    job: bool = typer.Option(False, help="Run as a background job instead of here."),
    wait: bool = typer.Option(False, help="With --job: wait for it to finish."),
) -> None:
    """Crawl a shop (robots.txt, sitemap, catalog pages, schema.org Product data) and import its product photos as a
    dataset linked to product records. A re-run downloads only what changed; an interrupted crawl resumes."""
    from workbench.data.shop.crawler import CrawlError, CrawlOptions
    from workbench.products.shop import import_shop, set_schedule, start_shop_crawl

    try:
        options = CrawlOptions(max_pages=max_pages, rate=rate, timeout=timeout, allow_hosts=list(allow_host),
                               render_js=render_js, allow_private=allow_private).check()
        if job:
            job_id = start_shop_crawl(_actor(), url, dataset=dataset or "", options=options, daily=daily)
            typer.echo(f"shop import job {job_id} queued (`workbench jobs show {job_id}`)")
            if wait:
                from workbench import jobs

                done = jobs.wait_for(job_id, timeout=7 * 24 * 3600)
                typer.echo(f"job {job_id}: {done.status} {done.message}")
                raise typer.Exit(0 if done.status == "done" else 1)
            return
        if daily is not None:
            when = set_schedule(_actor(), url, 24 if daily else None, dataset=dataset or "", options=options)
            typer.echo(f"daily re-crawl {'due ' + when.isoformat(timespec='minutes') + ' UTC' if when else 'removed'}"
                       " (runs as a job while a worker runs: `workbench worker`)")
        result = import_shop(_actor(), url, dataset=dataset or "", options=options, progress=_bar("crawl"))
    except CrawlError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    if result.crawl.status != "crawled":
        raise typer.Exit(1)


@app.command("shops")
def shops_cmd() -> None:
    """List crawled shops: dataset, schedule, last crawl."""
    from workbench.products.shop import list_shops

    rows = list_shops()
    if not rows:
        typer.echo("no shops yet: `workbench data import-shop URL --dataset NAME`")
    for r in rows:
        sched = f"every {r.schedule_hours} h, next {r.next_crawl_at:%Y-%m-%d %H:%M} UTC" if r.schedule_hours \
            else "not scheduled"
        c = r.last_counts
        typer.echo(f"{r.origin}  dataset {r.dataset_name!r}  {sched}  {r.crawls} crawl(s); last: {r.last_status or '-'}"
                   f" ({c.get('downloaded', 0)} downloaded, {c.get('not_modified', 0)} not modified, "
                   f"{len(r.last_problems)} problem(s))")


@app.command("list")
def list_cmd() -> None:
    """List datasets with item, flag and caption counts."""
    from workbench.data.store import list_datasets

    rows = list_datasets()
    if not rows:
        typer.echo("no datasets yet: `workbench data import PATH` or `workbench data demo`")
        return
    typer.echo(f"{'id':>4}  {'name':<28}{'kind':<12}{'items':>7}{'flagged':>9}{'excluded':>10}{'captioned':>11}")
    for d in rows:
        typer.echo(f"{d.id:>4}  {d.name[:27]:<28}{d.source_kind:<12}{d.items:>7}{d.flagged:>9}{d.excluded:>10}"
                   f"{d.captioned:>11}")


@app.command()
def show(
    dataset: str = typer.Argument(..., help="Dataset id or name."),
    flag: str = typer.Option("", help="Only items with this flag ('any', 'none', or a flag name)."),
    category: str = typer.Option("", help="Only this category."),
    text: str = typer.Option("", help="Caption or file name contains."),
    limit: int = typer.Option(20, help="Items to list."),
) -> None:
    """Show a dataset: stats, flags, duplicate groups, the last import's skips, and items."""
    from workbench.data import dedupe, images
    from workbench.data.importer import tiny_threshold
    from workbench.data.store import FLAG_HELP, ItemFilter, duplicate_groups, query_items, stats

    ds = _dataset(dataset)
    st = stats(ds.id)
    typer.echo(f"dataset {ds.id} {ds.name!r} ({ds.source_kind}) from {ds.source}")
    typer.echo(f"items: {sum(st.categories.values())}; splits: {st.splits}")
    typer.echo("categories: " + ", ".join(f"{k} {v}" for k, v in list(st.categories.items())[:15]))
    typer.echo(f"thresholds: tiny < {tiny_threshold()} px, aspect > {images.MAX_ASPECT}:1, near duplicate <= "
               f"{dedupe.NEAR_DISTANCE} bits")
    for f, n in st.flags.items():
        typer.echo(f"  {f:<24}{n:>6}  {FLAG_HELP.get(f, '')}")
    groups = duplicate_groups(ds.id, limit=10)
    if groups:
        typer.echo("duplicate groups: " + "; ".join(f"[{', '.join(str(i.id) for i in g)}]" for g in groups))
    if ds.imports:
        last = ds.imports[-1]
        typer.echo(f"last import: {last['added']} added, {last['already_present']} already present, "
                   f"{last['skipped_count']} skipped")
        for s in last["skipped"][:10]:
            typer.echo(f"  skipped {s['where']}: {s['reason']}")
    page = query_items(ds.id, ItemFilter(flag=flag, category=category, text=text), per_page=limit)
    typer.echo(f"{page.total} matching items" + (f" (first {limit})" if page.total > limit else ""))
    for it in page.items:
        typer.echo(f"  {it.id:>6} {it.width}x{it.height} {it.format:<5} {it.split or '-':<5} "
                   f"{','.join(it.flags) or '-':<24} {it.caption[:70]}")


@app.command()
def caption(
    dataset: str = typer.Argument(..., help="Dataset id or name."),
    all_items: bool = typer.Option(False, "--all", help="Re-caption every item (default: uncaptioned only)."),
    prefix: str = typer.Option("", help="Trigger phrase put in front, e.g. 'a photo of TOK woman'."),
    model: str = typer.Option(None, help="Captioner (default: settings.models.blip_captioner)."),
    inline: bool = typer.Option(False, help="Run BLIP here instead of as a background job."),
    wait: bool = typer.Option(False, help="Wait for the job to finish."),
    find: str = typer.Option(None, help="Bulk find/replace in captions: the text to find (with --replace-with)."),
    replace_with: str = typer.Option("", help="What --find is replaced with."),
    add_prefix: bool = typer.Option(False, help="Only put --prefix in front of existing captions (no BLIP)."),
    set_item: int = typer.Option(None, "--item", help="Edit one item's caption (with --text)."),
    new_text: str = typer.Option(None, "--text", help="The new caption for --item."),
) -> None:
    """Caption with BLIP (as a job), or edit captions: --find/--replace-with, --add-prefix, --item ID --text."""
    from workbench.data import store

    ds = _dataset(dataset)
    if set_item is not None:
        if new_text is None:
            raise typer.BadParameter("--item needs --text")
        typer.echo(f"item {set_item}: {store.set_caption(_actor(), set_item, new_text).caption}")
        return
    if find:
        typer.echo(f"{store.bulk_find_replace(_actor(), ds.id, find, replace_with)} captions changed")
        return
    if add_prefix:
        typer.echo(f"{store.apply_prefix(_actor(), ds.id, prefix)} captions changed")
        return
    mode = "all" if all_items else "uncaptioned"
    if inline:
        from workbench.data.captioning import caption_items, load_captioner

        res = caption_items(_actor(), ds.id, load_captioner(model), mode, prefix, progress=_bar("caption"))
        typer.echo(f"captioned {res.captioned} of {res.total} ({res.failed} unreadable)")
        return
    from workbench import jobs
    from workbench.data.captioning import enqueue_caption

    job_id = enqueue_caption(_actor(), ds.id, mode, prefix, model)
    typer.echo(f"caption job {job_id} queued (`workbench jobs show {job_id}`)")
    if wait:
        job = jobs.wait_for(job_id, timeout=24 * 3600)
        typer.echo(f"job {job_id}: {job.status} {job.message}")
        if job.status != "done":
            raise typer.Exit(1)


@app.command()
def preprocess(
    dataset: str = typer.Argument(..., help="Dataset id or name."),
    size: int = typer.Option(1024, help="512, 768 or 1024."),
    mode: str = typer.Option("crop", help="crop, pad or bucket."),
    pad_color: str = typer.Option("#ffffff", help="Pad/alpha background colour."),
    fmt: str = typer.Option("png", "--format", help="png or jpg."),
    out: Path = typer.Option(None, help="Output folder (default: workspace/datasets/ID/prepared/...)."),
) -> None:
    """Write a training-ready imagefolder + manifest (reproducible byte for byte)."""
    from workbench.data.preprocess import PreprocessConfig, preprocess_dataset

    ds = _dataset(dataset)
    try:
        config = PreprocessConfig(size=size, mode=mode, pad_color=pad_color, format=fmt)
        res = preprocess_dataset(_actor(), ds.id, config, out, progress=_bar("preprocess"))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{sum(res.counts.values())} images -> {res.out_dir}")
    typer.echo(f"splits: {res.counts}; sizes: {res.sizes}")
    typer.echo(f"result hash: {res.result_hash}")


@app.command()
def split(
    dataset: str = typer.Argument(..., help="Dataset id or name."),
    val: float = typer.Option(0.1, help="Fraction for validation."),
    test: float = typer.Option(0.1, help="Fraction for test."),
    seed: int = typer.Option(0, help="Random seed."),
    stratify: bool = typer.Option(True, help="Stratify by category when there is one."),
) -> None:
    """Assign train/val/test with a fixed seed."""
    from workbench.data.split import split_dataset

    ds = _dataset(dataset)
    res = split_dataset(_actor(), ds.id, val, test, seed, stratify)
    typer.echo(f"{res.counts} ({'stratified by category' if res.stratified else 'not stratified'})")


@app.command()
def export(
    dataset: str = typer.Argument(..., help="Dataset id or name."),
    out: Path = typer.Argument(..., help="Folder to write."),
    include_excluded: bool = typer.Option(False, help="Also export items excluded as duplicates."),
) -> None:
    """Export the original files + metadata.jsonl (captions, splits, attributes)."""
    from workbench.data.store import export_imagefolder

    ds = _dataset(dataset)
    typer.echo(f"exported to {export_imagefolder(ds.id, out, include_excluded)}")


@app.command()
def delete(dataset: str = typer.Argument(..., help="Dataset name or id."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete a dataset (to the trash: `workbench trash restore` brings it back within the undo window)."""
    from workbench.data.store import DatasetError, delete_dataset, list_datasets
    from workbench.trash import TrashError, window_text

    ds = _dataset(dataset)
    items = next((d.items for d in list_datasets() if d.id == ds.id), 0)
    if not yes:
        typer.confirm(f"delete dataset {ds.name!r} ({items} photos)? It can be restored for {window_text()}",
                      abort=True)
    try:
        info = delete_dataset(_actor(), ds.id)
    except (DatasetError, TrashError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"dataset {ds.name!r} is in the trash (entry {info.id}); undo with `workbench trash restore {info.id}` "
               f"before {info.expires_at:%Y-%m-%d %H:%M} UTC")


@app.command()
def demo(
    seed: int = typer.Option(0, help="Random seed (same seed, same bytes)."),
    size: int = typer.Option(512, help="Image side in pixels."),
    colours: int = typer.Option(4, help="Colours per garment (1-8)."),
    out: Path = typer.Option(None, help="Only draw the catalog into this folder; do not import."),
) -> None:
    """Draw the synthetic demo catalog (an invented brand, offline) and import it."""
    from workbench.data.demo import import_demo_catalog, make_demo_catalog

    if out is not None:
        cat = make_demo_catalog(out, seed=seed, size=size, colours=colours)
        typer.echo(f"{len(cat.rows)} images + {cat.csv_path.name} in {cat.root}")
        return
    from workbench.products.importing import from_import

    report = import_demo_catalog(_actor(), seed=seed, size=size, colours=colours)
    from_import(_actor(), report.dataset_id, report)  # the catalog's products (its ids are SKUs)
    typer.echo(report.summary())
