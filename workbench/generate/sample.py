"""Generate images for a prompt and save each with its full provenance.

    images = generate("mia", assembled, GenerationParams(prompt="...", seed=7, num_images=4, width=1024, height=1024),
                      batch="ss26-tees")      # mia needs the ``generate`` permission

Each image is written atomically as a PNG with two chunks: ``parameters``, the A1111 text any tool that reads A1111 PNG
info understands, and ``workbench``, a JSON object with everything that made the image (model and revision, VAE, LoRAs
and scales, quantization, scheduler, seed, the saved prompt it came from (``prompt_id``, ``prompt_version``,
``template``: filled in from the prompt library whenever a prompt id is given), brand, the SKUs it was generated for,
workbench version, and whether the model is a demo model). Image ``i`` of a request uses seed ``seed + i``, so one
image can be remade alone; the same inputs and seed give the same image on the same device. Every image is recorded
in the ``generations`` table with review status pending, and linked to the products it was generated for
(``products.link_generation``, source "generated_for").
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

import workbench
from workbench import trash
from workbench.db import session_scope
from workbench.generate.pipeline import AssembledPipeline, GenerationError
from workbench.auth import Actor, require
from workbench.settings import Settings, get_settings

PROVENANCE_KEY = "workbench"


@dataclass
class GenerationParams:
    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    steps: int = 30
    guidance: float = 5.0
    seed: int = 0
    num_images: int = 1
    batch_size: int = 1
    prompt_id: int | None = None  # the saved prompt version (workbench.prompts) the text came from
    template: str = ""  # that prompt's template ("" for a typed prompt)
    brand: str = ""
    prompt_version: int | None = None  # that prompt's version number (1, 2, … along its refinements)
    products: tuple[str, ...] = ()  # SKUs the image is generated for: in its provenance, linked in the DB
    request: str = ""  # the request the image belongs to (one Generate click, one batch job "job-<id>"): results group

    def check(self) -> None:
        if not self.prompt.strip():
            raise GenerationError("prompt is empty")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value % 8 or not 64 <= value <= 4096:
                raise GenerationError(f"{name} {value} must be a multiple of 8 between 64 and 4096")
        if not 1 <= self.steps <= 200:
            raise GenerationError(f"steps {self.steps} must be between 1 and 200")
        if not 0 <= self.seed < 2**32:
            raise GenerationError(f"seed {self.seed} must be between 0 and 2**32 - 1")
        if self.num_images < 1 or self.batch_size < 1:
            raise GenerationError("num_images and batch_size must be at least 1")


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    path: Path
    provenance: dict[str, Any]
    generation_id: int | None = None
    attempt: int = 1
    clip_score: float | None = None
    kept: bool = True


@dataclass
class PngMetadata:
    parameters: str
    provenance: dict[str, Any] = field(default_factory=dict)


def model_revision(ref: str) -> str:
    """The hub commit a cached model resolves to ('' for local folders and files)."""
    m = re.search(r"/snapshots/([0-9a-f]{40})", str(ref))
    if m:
        return m.group(1)
    from workbench.models.sources import availability

    m = re.search(r"/snapshots/([0-9a-f]{40})", availability(ref).local_path)
    return m.group(1) if m else ""


def provenance(assembled: AssembledPipeline, params: GenerationParams, seed: int, attempt: int = 1,
               base_seed: int | None = None) -> dict[str, Any]:
    """Everything that made one image. ``base_seed`` is the seed the image was asked with (a gate retry uses another
    seed for the same requested image); batches resume by (prompt, base_seed)."""
    spec = assembled.spec
    return {
        "workbench_version": workbench.__version__,
        "model": spec.model,
        "model_revision": model_revision(spec.model),
        "demo_model": assembled.demo_model,
        "vae": spec.vae or "",
        "loras": [{"path": l.path, "scale": l.scale, "name": l.name} for l in spec.loras],
        "quantization": spec.quantization,
        "dtype": spec.dtype,
        "scheduler": spec.scheduler,
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt,
        "prompt_id": params.prompt_id,
        "prompt_version": params.prompt_version,
        "template": params.template,
        "brand": params.brand,
        "products": list(params.products),
        "seed": seed,
        "base_seed": seed if base_seed is None else base_seed,
        "steps": params.steps,
        "guidance": params.guidance,
        "width": params.width,
        "height": params.height,
        "attempt": attempt,
        "request": params.request,
    }


# Provenance fields that do not change the image (who asked, when, through which click or tool version): left out of
# the file name, so a resumed batch writes the same name again and another setting never shares one.
_NOT_IN_FILE_NAME = ("request", "workbench_version", "attempt", "seed")


def image_digest(prov: dict[str, Any]) -> str:
    """A short digest of everything in ``prov`` that makes the image (prompt, model, LoRAs and scales, scheduler,
    size, steps, ...): two images share a file name only when the same settings made them from the same seed."""
    made_by = {k: v for k, v in prov.items() if k not in _NOT_IN_FILE_NAME}
    return hashlib.sha256(json.dumps(made_by, sort_keys=True, default=str).encode()).hexdigest()[:10]


def a1111_parameters(prov: dict[str, Any], sampler: str) -> str:
    """The text A1111 writes into its PNGs (prompt, 'Negative prompt:', then 'Key: value' pairs)."""
    pairs = [("Steps", prov["steps"]), ("Sampler", sampler), ("CFG scale", prov["guidance"]), ("Seed", prov["seed"]),
             ("Size", f"{prov['width']}x{prov['height']}"), ("Model", Path(prov["model"]).name or prov["model"])]
    if prov["loras"]:
        pairs.append(("Lora", "; ".join(f"{Path(l['path']).name}:{l['scale']}" for l in prov["loras"])))
    if prov["quantization"] != "none":
        pairs.append(("Quantization", prov["quantization"]))
    pairs.append(("Version", f"workbench {prov['workbench_version']}"))
    text = prov["prompt"]
    if prov["negative_prompt"]:
        text += f"\nNegative prompt: {prov['negative_prompt']}"
    return text + "\n" + ", ".join(f"{k}: {str(v).replace(',', ';')}" for k, v in pairs)


def parse_a1111(text: str) -> dict[str, Any]:
    """Read A1111 parameters back: prompt, negative prompt and the key/value pairs."""
    lines = text.split("\n")
    kv_line = lines[-1]
    body = lines[:-1]
    negative = ""
    for i, line in enumerate(body):
        if line.startswith("Negative prompt: "):
            negative = "\n".join(body[i:])[len("Negative prompt: "):]
            body = body[:i]
            break
    pairs = dict(re.findall(r"\s*([^:,]+): ([^,]*)", kv_line))
    return {"prompt": "\n".join(body), "negative_prompt": negative, **pairs}


def write_png(path: Path, image: Image.Image, parameters: str, prov: dict[str, Any]) -> Path:
    """Save atomically (``workbench.files.write_atomic``) with the ``parameters`` and ``workbench`` chunks."""
    from workbench.files import write_atomic

    info = PngInfo()
    info.add_text("parameters", parameters)
    info.add_itxt(PROVENANCE_KEY, json.dumps(prov, sort_keys=True))
    return write_atomic(path, lambda f: image.save(f, format="PNG", pnginfo=info))


def with_prompt_source(params: GenerationParams, settings: Settings | None = None) -> GenerationParams:
    """``params`` with the template and version of its saved prompt (``prompt_id``) filled in from the prompt library,
    so every caller (page, batch, review's regeneration, prompt suites) records where the text came from."""
    if params.prompt_id is None or (params.template and params.prompt_version is not None):
        return params
    from dataclasses import replace

    from workbench.prompts.tables import PromptRow

    with session_scope(settings) as s:
        row = s.get(PromptRow, params.prompt_id)
        if row is None:  # deleted since: keep what the caller said
            return params
        return replace(params, template=params.template or row.template,
                       prompt_version=params.prompt_version if params.prompt_version is not None else row.version)


def read_png_metadata(path: Path) -> PngMetadata:
    with Image.open(path) as im:
        text = dict(im.text)
    return PngMetadata(text.get("parameters", ""), json.loads(text[PROVENANCE_KEY]) if PROVENANCE_KEY in text else {})


def _refuse_trashed(session, batch: str) -> None:
    """A batch in the trash takes no new images: they would be hidden with it, and its folder must stay free for
    a restore."""
    gone = trash.in_trash(session, "batch", batch)
    if gone is not None:
        raise GenerationError(f"batch {batch!r} is in the trash (entry {gone.id}): restore it (`workbench trash "
                              f"restore {gone.id}`) or generate into another batch")


def record_generation(actor: str, img: GeneratedImage, batch: str, settings: Settings | None = None,
                      replaces_id: int | None = None, session=None) -> int:
    """Insert one generations row (pending review) for a saved image, in ``settings``' workspace; returns its id.
    ``replaces_id``: the image it replaces (a regeneration asked for by review). ``session``: add it to that open
    transaction (the gate records every attempt of an image together) instead of committing it alone."""
    from workbench.generate.tables import Generation

    p = img.provenance
    row = Generation(batch=batch, prompt_id=p["prompt_id"], prompt=p["prompt"], negative_prompt=p["negative_prompt"],
                     brand=p["brand"], model=p["model"], vae=p["vae"], loras=p["loras"],
                     quantization=p["quantization"], scheduler=p["scheduler"], dtype=p["dtype"], seed=p["seed"],
                     steps=p["steps"], guidance=p["guidance"], width=p["width"], height=p["height"], params=p,
                     image_path=str(img.path), clip_score=img.clip_score, attempt=img.attempt,
                     kept=img.kept, review_status="pending" if img.kept else "not_kept",
                     demo_model=p["demo_model"], created_by=actor, replaces_id=replaces_id)
    if session is not None:
        _refuse_trashed(session, batch)
        session.add(row)
        session.flush()
        return row.id
    with session_scope(settings) as s:
        _refuse_trashed(s, batch)
        s.add(row)
        s.flush()
        return row.id


def generate(actor: Actor, assembled: AssembledPipeline, params: GenerationParams, batch: str = "adhoc", *,
             attempt: int = 1, record: bool = True, settings: Settings | None = None,
             base_seed: int | None = None, replaces_id: int | None = None) -> list[GeneratedImage]:
    """Generate ``params.num_images`` images (seeds seed, seed+1, ...), save and record each as made by ``user``
    (a job passes ``on_behalf_of(created_by, "generate")``: the user was checked when it was queued), each replacing
    ``replaces_id`` when given."""
    import torch

    who = require(actor, "generate", settings=settings)
    settings = settings or get_settings()
    params.check()
    params = with_prompt_source(params, settings)
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", batch):
        raise GenerationError(f"batch name {batch!r} may use letters, digits, '.', '_' and '-' only")
    if record:
        with session_scope(settings) as s:
            _refuse_trashed(s, batch)  # before any file lands in the folder a restore needs free
    out_dir = settings.path("generations", batch)
    device = assembled.spec.device if not assembled.spec.cpu_offload else "cpu"
    seeds = [params.seed + i for i in range(params.num_images)]
    results: list[GeneratedImage] = []
    for start in range(0, len(seeds), params.batch_size):
        chunk = seeds[start:start + params.batch_size]
        generators = [torch.Generator(device=device).manual_seed(s) for s in chunk]
        images = assembled.pipe(
            prompt=[params.prompt] * len(chunk), negative_prompt=[params.negative_prompt] * len(chunk) or None,
            width=params.width, height=params.height, num_inference_steps=params.steps,
            guidance_scale=params.guidance, generator=generators).images
        for seed, image in zip(chunk, images):
            prov = provenance(assembled, params, seed, attempt, base_seed)
            name = f"{image_digest(prov)}-s{seed}-a{attempt}.png"
            path = write_png(out_dir / name, image, a1111_parameters(prov, assembled.sampler_name), prov)
            img = GeneratedImage(image=image, seed=seed, path=path, provenance=prov, attempt=attempt)
            if record:
                img.generation_id = record_generation(who.username, img, batch, settings, replaces_id)
                if params.products:
                    from workbench.products.links import link_generation

                    link_generation(who, img.generation_id, params.products, settings=settings)
            results.append(img)
    return results


def params_from_dict(d: dict[str, Any]) -> GenerationParams:
    known = set(GenerationParams.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise GenerationError(f"unknown generation setting(s): {', '.join(sorted(unknown))}")
    return GenerationParams(**d)

