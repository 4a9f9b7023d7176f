"""Shop-the-look retrieval latency: ``nearest_by_vector`` over a catalog of 20,000 reference photos (items) whose
embeddings are in the ``item_embeddings`` table, at the real models' dimensions (768: CLIP ViT-L/14 and DINOv2-base;
1024: DINOv2-large), on this machine's CPUs.

    nice python bench/retrieval.py                 # 20,000 items, 5,000 products, 300 queries per dimension
    nice python bench/retrieval.py --items 100000  # the 100k figure ARCHITECTURE.md quotes

A temporary workspace gets one dataset of ``--items`` items, one product per 4 items, and for each dimension one
float16 unit vector per item (random: the latency does not depend on the values). Timed:
1. load: reading the table into the in-memory float16 matrix (``load_index`` after ``clear_cache``), once per
   dimension (the cold start of the first query in a process);
2. query: ``nearest_by_vector(vector, model_ref, k=5)`` — the table-freshness check, the matrix product, the top
   200 items and their products from the database, max per product — p50 / p95 over the queries; the same with 3
   query regions (frame, garment crop, one garment part: what ``nearest_products`` sends with the masks module);
3. the matrix product alone (float16 (n, d) x (d,)), to show how much of a query is arithmetic.
Embedding the query image is not counted (see the fidelity bench: DINOv2-base ~1 s, CLIP ViT-L/14 ~2–5 s per crop on
this CPU; milliseconds on a GPU). Prints JSON and a Markdown table for docs/PERFORMANCE.md. Offline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _fill(n_items: int, dims: list[int], per_product: int = 4, seed: int = 0) -> None:
    import numpy as np
    from sqlalchemy import insert

    from workbench.data.tables import Dataset, Item
    from workbench.db import init_db, session_scope, utcnow
    from workbench.products.tables import ItemEmbedding, Product, ProductItem

    init_db()
    now = utcnow()
    rng = np.random.default_rng(seed)
    with session_scope() as s:
        s.add(Dataset(id=1, name="bench", created_at=now, updated_at=now))
        s.flush()
        s.execute(insert(Item), [dict(id=i, dataset_id=1, source_key=f"{i}.jpg", path=f"images/{i}.jpg",
                                      sha256=f"{i:064x}", phash="0" * 16, width=512, height=512, format="JPEG",
                                      created_at=now) for i in range(1, n_items + 1)])
        n_products = (n_items + per_product - 1) // per_product
        s.execute(insert(Product), [dict(id=p, sku=f"BNCH-{p:06d}", name=f"Bench product {p}", price=49.9,
                                         currency="EUR", url=f"https://shop.example/p/BNCH-{p:06d}", attributes={},
                                         created_at=now, updated_at=now) for p in range(1, n_products + 1)])
        s.execute(insert(ProductItem), [dict(item_id=i, product_id=(i - 1) // per_product + 1, created_at=now)
                                        for i in range(1, n_items + 1)])
    for d in dims:
        for start in range(1, n_items + 1, 5000):
            ids = range(start, min(start + 5000, n_items + 1))
            v = rng.standard_normal((len(ids), d)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            v16 = v.astype("<f2")
            with session_scope() as s:
                s.execute(insert(ItemEmbedding), [dict(item_id=i, model_ref=f"bench:{d}", dim=d,
                                                       vector=v16[j].tobytes(), created_at=now)
                                                  for j, i in enumerate(ids)])


def _pct(xs: list[float]) -> dict:
    import numpy as np

    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2)}


def run(n_items: int, dims: list[int], queries: int) -> dict:
    import numpy as np
    import torch

    from workbench.products import retrieval as R

    t = time.perf_counter()
    _fill(n_items, dims)
    out: dict = {"items": n_items, "products": (n_items + 3) // 4, "fill_s": round(time.perf_counter() - t, 1),
                 "dims": {}}
    rng = np.random.default_rng(1)
    for d in dims:
        ref = f"bench:{d}"
        R.clear_cache()
        loaded = R.load_index(ref)
        qs = rng.standard_normal((queries, d)).astype(np.float32)
        R.nearest_by_vector(qs[0], ref, k=5)  # warm-up
        one, three, mm = [], [], []
        for q in qs:
            t = time.perf_counter()
            hits = R.nearest_by_vector(q, ref, k=5)
            one.append(time.perf_counter() - t)
        assert len(hits) == 5
        for i in range(queries):
            regions = qs[[i, (i + 1) % queries, (i + 2) % queries]]
            t = time.perf_counter()
            R.nearest_by_vector(regions, ref, k=5)
            three.append(time.perf_counter() - t)
        m = R._CACHE[next(k for k in R._CACHE if k[1] == ref)].vectors
        for q in qs:
            qt = torch.from_numpy(q.astype(np.float16))
            t = time.perf_counter()
            with torch.no_grad():
                (m @ qt).float()
            mm.append(time.perf_counter() - t)
        out["dims"][d] = {"load_s": round(loaded.seconds, 3), "matrix_mb": round(loaded.megabytes, 1),
                          "query": _pct(one), "query_3_regions": _pct(three), "matrix_product": _pct(mm)}
    return out


def table(r: dict) -> str:
    rows = [f"| {r['items']:,} items ({r['products']:,} products), 2 CPUs | load (table → matrix) | "
            "query p50 / p95 | 3 regions p50 / p95 | matrix product alone p50 / p95 |", "|---|---|---|---|---|"]
    for d, x in r["dims"].items():
        rows.append(f"| d = {d} (float16, {x['matrix_mb']} MB) | {x['load_s']} s | "
                    f"{x['query']['p50_ms']} / {x['query']['p95_ms']} ms | "
                    f"{x['query_3_regions']['p50_ms']} / {x['query_3_regions']['p95_ms']} ms | "
                    f"{x['matrix_product']['p50_ms']} / {x['matrix_product']['p95_ms']} ms |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--dims", type=int, nargs="+", default=[768, 1024])
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        os.environ["WORKBENCH_WORKSPACE"] = tmp
        load_before = os.getloadavg()
        result = run(args.items, args.dims, args.queries)
    import torch

    result.update(machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
                  python=platform.python_version(), torch=torch.__version__, date=time.strftime("%Y-%m-%d"),
                  load_before=[round(x, 1) for x in load_before], load_after=[round(x, 1) for x in os.getloadavg()])
    print(json.dumps(result, indent=1))
    print(table(result))


if __name__ == "__main__":
    main()
