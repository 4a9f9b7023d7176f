"""Training inputs for tests, the demo and benches: the synthetic catalog as an imagefolder (metadata.jsonl)."""
from __future__ import annotations

import json
from pathlib import Path


def catalog_caption(row: dict[str, str]) -> str:
    """"a photo of a red t shirt by aurelo, on a white background" from a styles.csv row."""
    name = row["productDisplayName"].split(" (")[0]
    words = name.split(" ", 1)[1] if " " in name else name  # drop the brand word in front
    return f"a photo of a {words.lower()} by {row['brand'].lower()}, on a white background"


def demo_imagefolder(out: str | Path, size: int = 64, colours: int = 4, limit: int | None = None,
                     seed: int = 0) -> Path:
    """Draw the synthetic catalog at ``size`` px into ``out/images`` and write ``out/metadata.jsonl`` (file_name,
    text); returns ``out``. Deterministic; reused when already there."""
    from workbench.data.demo import make_demo_catalog

    out = Path(out)
    meta = out / "metadata.jsonl"
    if meta.is_file():
        return out
    cat = make_demo_catalog(out / "_catalog", seed=seed, size=size, colours=colours, extras=False)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for row in cat.rows[:limit]:
        src = cat.root / "images" / f"{row['id']}.jpg"
        dst = out / "images" / f"{row['id']}.png"
        from PIL import Image

        Image.open(src).convert("RGB").save(dst)
        lines.append(json.dumps({"file_name": f"images/{dst.name}", "text": catalog_caption(row)}))
    meta.write_text("\n".join(lines) + "\n")
    import shutil

    shutil.rmtree(out / "_catalog", ignore_errors=True)
    return out
