"""Spin videos: a 2-3 s clip of the subject of an approved image turning, through diffusers' image-to-video pipeline
(Stable Video Diffusion XT; ``settings.models.video``, ``workbench models pull video``) (issue #22 item 3).

    pipe = load_video_pipeline()                                    # settings.models.video (or a tiny one in tests)
    v = generate_video("mia", pipe, VideoParams(frames=16, fps=8), generation_id=42)   # an approved image
    v.mp4, v.gif, v.sidecar, v.generation_id                        # files + the review queue's row
    video_for(v.generation_id)                                      # -> VideoInfo (what the review card plays)
    read_video("spin.mp4")                                          # -> DecodedVideo(frames, fps, duration, metadata)

    workbench generate video --image photo.png --frames 16 --fps 8     # or --generation 42

- **Frames.** SVD makes ``frames`` frames from the image (motion bucket, noise augmentation, guidance rising from
  ``min_guidance`` to ``max_guidance`` over the frames, as diffusers does); the VAE decodes ``decode_chunk_size``
  frames at a time, so the decode fits memory (SVD XT at 1024x576 decodes 25 frames in chunks of 8 on a 24 GB GPU).
  The clip lasts frames / fps seconds: 16 frames at 8 fps = 2 s; ``VideoParams.check`` asks for 16+ frames and
  2-3 s, what the issue asks of a spin video.
- **Files.** ``workspace/generations/<batch>/<stem>.mp4`` (H.264, yuv420p, through PyAV), ``<stem>.gif`` (Pillow,
  looping), ``<stem>.json`` (the provenance sidecar) and ``<stem>.png`` (the poster: the first frame, with the
  provenance in its PNG chunks like every generated image). The MP4 carries the provenance too: the container's
  ``comment`` tag holds the same JSON, ``title`` a one-line description.
- **Review.** A video is a generation: a ``generations`` row (the poster as its image, ``params["kind"] == "video"``)
  and a ``generation_videos`` row naming the files. The review queue lists it like an image (its brand's policies
  apply); the Review card plays the MP4 (``video_for``), and an export zips the MP4, GIF and sidecar beside the
  poster.
- **Pose-guided spins** (an OpenPose ControlNet per frame, as in the seed project) are not built: SVD has no
  ControlNet in diffusers and no pose-conditioned video weights are on this machine.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

import workbench
from workbench.auth import Actor, require
from workbench.db import session_scope
from workbench.generate.pipeline import GenerationError
from workbench.settings import Settings, get_settings

VIDEO_BATCH = "videos"
MIN_FRAMES, MIN_SECONDS, MAX_SECONDS = 16, 2.0, 3.0  # a spin video: 16+ frames, 2-3 s (issue #22)


@dataclass
class VideoParams:
    frames: int = 16
    fps: int = 8
    width: int = 1024  # SVD XT was trained at 1024x576
    height: int = 576
    steps: int = 25
    seed: int = 0
    motion_bucket_id: int = 127  # more = more motion (SVD's micro-conditioning)
    noise_aug_strength: float = 0.02  # noise added to the conditioning image: more = further from it
    min_guidance: float = 1.0
    max_guidance: float = 3.0  # 1.0 for both: no classifier-free guidance (half the UNet work)
    decode_chunk_size: int = 8  # frames the VAE decodes at once: lower it when decoding runs out of memory
    crf: int = 18  # H.264 quality (0 lossless .. 51 worst)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def check(self) -> None:
        if self.frames < MIN_FRAMES or self.frames > 128:
            raise GenerationError(f"frames {self.frames}: a spin video has {MIN_FRAMES} to 128 frames")
        if not 1 <= self.fps <= 60:
            raise GenerationError(f"fps {self.fps} must be between 1 and 60")
        if not MIN_SECONDS <= self.seconds <= MAX_SECONDS:
            raise GenerationError(f"frames {self.frames} at fps {self.fps} last {self.seconds:g} s: a spin video "
                                  f"lasts {MIN_SECONDS:g}-{MAX_SECONDS:g} s (e.g. 16 frames at 8 fps, 24 at 10)")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value % 8 or not 32 <= value <= 2048:
                raise GenerationError(f"{name} {value} must be a multiple of 8 between 32 and 2048")
        if not 1 <= self.steps <= 200:
            raise GenerationError(f"steps {self.steps} must be between 1 and 200")
        if not 1 <= self.decode_chunk_size <= self.frames:
            raise GenerationError(f"decode_chunk_size {self.decode_chunk_size} must be between 1 and frames")
        if not 0 <= self.seed < 2**32:
            raise GenerationError(f"seed {self.seed} must be between 0 and 2**32 - 1")
        if not 0 <= self.crf <= 51:
            raise GenerationError(f"crf {self.crf} must be between 0 and 51")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoParams:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise GenerationError(f"unknown video setting(s): {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass
class VideoResult:
    generation_id: int | None
    mp4: Path
    gif: Path
    sidecar: Path
    poster: Path
    frames: list[Image.Image]
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the pipeline call (denoising + decoding)


@dataclass(frozen=True)
class VideoInfo:
    generation_id: int
    mp4_path: str
    gif_path: str
    sidecar_path: str
    frames: int
    fps: float
    source_generation_id: int | None

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


@dataclass
class DecodedVideo:
    frames: int
    fps: float
    duration: float  # seconds, from the stream's time base
    width: int
    height: int
    codec: str
    metadata: dict[str, str]


# -- the model -------------------------------------------------------------------------------------------------------

def load_video_pipeline(ref: str | None = None, dtype: str = "fp32", device: str | None = None):
    """The image-to-video pipeline (``settings.models.video`` unless ``ref``); ModelUnavailable when not here."""
    from workbench.models.sources import load_svd_pipeline

    settings = get_settings()
    pipe = load_svd_pipeline(ref or settings.models.video, dtype=dtype, device=device or settings.resolved_device())
    pipe.set_progress_bar_config(disable=True)
    pipe.workbench_ref = ref or settings.models.video  # recorded in the provenance
    return pipe


# -- writing and reading ---------------------------------------------------------------------------------------------

def write_mp4(path: Path, frames: list[Image.Image], fps: int, metadata: dict[str, str], crf: int = 18) -> Path:
    """H.264 (libx264, yuv420p: what browsers and shop platforms play) through PyAV, with container metadata;
    written to a temporary name and renamed. Odd sizes are padded by one pixel (yuv420p needs even ones)."""
    import av
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    w, h = frames[0].size
    ew, eh = w + w % 2, h + h % 2
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            for key, value in metadata.items():
                container.metadata[key] = value
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = ew, eh, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for im in frames:
                arr = np.asarray(im.convert("RGB"))
                if (ew, eh) != (w, h):
                    arr = np.pad(arr, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def gif_durations(n: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms. GIF stores hundredths of a second, so 8 fps (125 ms) alternates 120 and 130 ms:
    each frame ends at its true time rounded to 10 ms, and the loop lasts exactly n / fps."""
    ends = [round((i + 1) * 100 / fps) * 10 for i in range(n)]
    return [b - a for a, b in zip([0] + ends[:-1], ends)]


def write_gif(path: Path, frames: list[Image.Image], fps: int) -> Path:
    from workbench.files import write_atomic

    first, rest = frames[0].convert("RGB"), [f.convert("RGB") for f in frames[1:]]
    return write_atomic(path, lambda f: first.save(f, format="GIF", save_all=True, append_images=rest,
                                                   duration=gif_durations(len(frames), fps), loop=0, disposal=1))


def read_video(path: Path | str) -> DecodedVideo:
    """Decode every frame of a video with PyAV: the frame count, rate, duration, size, codec and container tags."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n = 0
        last_end = 0.0
        for frame in container.decode(stream):
            n += 1
            if frame.pts is not None and frame.time_base is not None:
                last_end = max(last_end, float((frame.pts + (frame.duration or 0)) * frame.time_base))
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = last_end or (float(stream.duration * stream.time_base) if stream.duration else n / fps)
        return DecodedVideo(n, fps, duration, stream.codec_context.width, stream.codec_context.height,
                            stream.codec_context.name, dict(container.metadata))


# -- making one ------------------------------------------------------------------------------------------------------

def _source(generation_id: int | None, image: Image.Image | str | Path | None,
            settings: Settings) -> tuple[Image.Image, dict[str, Any]]:
    """The conditioning image and what the video inherits from it (prompt, brand, products, the source)."""
    if generation_id is not None:
        from workbench.generate.tables import Generation

        with session_scope(settings) as s:
            row = s.get(Generation, int(generation_id))
            if row is None:
                raise GenerationError(f"generation {generation_id}: no such image")
            if row.review_status != "approved":
                raise GenerationError(f"generation {generation_id} is {row.review_status}: a spin video is made from "
                                      "an approved image (approve it in Review first)")
            path, prompt, brand = row.image_path, row.prompt, row.brand
            products = list((row.params or {}).get("products") or [])
        info = {"source_generation_id": int(generation_id), "source_image": path, "prompt": prompt, "brand": brand,
                "products": products}
    elif isinstance(image, Image.Image):
        path = None
        info = {"source_generation_id": None, "source_image": "(in memory)", "prompt": "", "brand": "",
                "products": []}
    elif image is not None:
        path = str(image)
        info = {"source_generation_id": None, "source_image": path, "prompt": "", "brand": "", "products": []}
    else:
        raise GenerationError("give the image to animate: a generation id or an image")
    if path is None:
        im = image.convert("RGB")
    else:
        try:
            with Image.open(path) as f:
                im = f.convert("RGB")
        except OSError as exc:
            raise GenerationError(f"cannot read the image {path}: {exc}") from None
    info["source_sha256"] = hashlib.sha256(im.tobytes()).hexdigest()
    return im, info


def generate_video(actor: Actor, pipe, params: VideoParams, *, generation_id: int | None = None,
                   image: Image.Image | str | Path | None = None, batch: str = VIDEO_BATCH, record: bool = True,
                   brand: str | None = None, settings: Settings | None = None) -> VideoResult:
    """Animate an approved generated image (``generation_id``) or any image, as ``actor`` (``generate``); write the
    MP4, GIF, poster and sidecar, and record the video as a generation (pending review)."""
    import re

    import torch

    who = require(actor, "generate", settings=settings)
    settings = settings or get_settings()
    params.check()
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", batch):
        raise GenerationError(f"batch name {batch!r} may use letters, digits, '.', '_' and '-' only")
    source, info = _source(generation_id, image, settings)
    if brand is not None:
        info["brand"] = brand
    device = str(getattr(pipe, "device", "cpu"))
    generator = torch.Generator(device="cpu" if device.startswith("mps") else device).manual_seed(params.seed)
    start = time.perf_counter()
    out = pipe(source, height=params.height, width=params.width, num_frames=params.frames,
               num_inference_steps=params.steps, min_guidance_scale=params.min_guidance,
               max_guidance_scale=params.max_guidance, fps=params.fps, motion_bucket_id=params.motion_bucket_id,
               noise_aug_strength=params.noise_aug_strength, decode_chunk_size=params.decode_chunk_size,
               generator=generator, output_type="pil")
    seconds = time.perf_counter() - start
    frames = list(out.frames[0])
    if len(frames) != params.frames:
        raise GenerationError(f"the pipeline returned {len(frames)} frames for {params.frames} asked")

    from workbench.generate.sample import model_revision, write_png
    from workbench.models.sources import is_demo_model

    ref = getattr(pipe, "workbench_ref", "") or getattr(getattr(pipe, "config", None), "_name_or_path", "") or ""
    stem = f"{info['source_sha256'][:10]}-s{params.seed}-f{params.frames}"
    folder = settings.path("generations", batch)
    mp4, gif, sidecar, poster = (folder / f"{stem}{ext}" for ext in (".mp4", ".gif", ".json", ".png"))
    prompt = f"spin video: {info['prompt']}" if info["prompt"] else "spin video"
    prov: dict[str, Any] = {
        "kind": "video", "workbench_version": workbench.__version__, "model": ref, "model_revision":
            model_revision(ref) if ref else "", "demo_model": is_demo_model(ref), "pipeline": type(pipe).__name__,
        "scheduler": type(pipe.scheduler).__name__, "dtype": str(getattr(pipe, "dtype", "")).replace("torch.", ""),
        **asdict(params), "seconds": params.seconds, "source_generation_id": info["source_generation_id"],
        "source_image": info["source_image"], "source_sha256": info["source_sha256"], "prompt": prompt,
        "negative_prompt": "", "prompt_id": None, "template": "", "brand": info["brand"],
        "products": info["products"], "vae": "", "loras": [], "quantization": "none", "base_seed": params.seed,
        "guidance": params.max_guidance, "attempt": 1, "files": {"mp4": mp4.name, "gif": gif.name,
                                                                 "poster": poster.name},
        "render_seconds": round(seconds, 3),
    }
    prov_json = json.dumps(prov, sort_keys=True)
    write_mp4(mp4, frames, params.fps, {"comment": prov_json, "title": f"{prompt} ({params.frames} frames, "
                                                                          f"{params.fps} fps)"[:250],
                                        "encoder": f"workbench {workbench.__version__}"}, params.crf)
    write_gif(gif, frames, params.fps)
    from workbench.files import write_json_atomic

    write_json_atomic(sidecar, prov)
    write_png(poster, frames[0], f"{prompt}\nSteps: {params.steps}, Seed: {params.seed}, Frames: {params.frames}, "
                                 f"FPS: {params.fps}, Model: {Path(ref).name or ref}", prov)
    result = VideoResult(None, mp4, gif, sidecar, poster, frames, prov, seconds)
    if record:
        result.generation_id = _record(who, result, params, batch, info, settings)
    return result


def _record(who, v: VideoResult, params: VideoParams, batch: str, info: dict[str, Any],
            settings: Settings) -> int:
    """The generations row (the poster as its image) and the generation_videos row, in one transaction."""
    from workbench.generate.sample import GeneratedImage, record_generation
    from workbench.generate.tables import GenerationVideo

    img = GeneratedImage(image=v.frames[0], seed=params.seed, path=v.poster, provenance=v.provenance)
    with session_scope(settings) as s:
        gid = record_generation(who.username, img, batch, settings, session=s)
        s.add(GenerationVideo(generation_id=gid, source_generation_id=info["source_generation_id"],
                              mp4_path=str(v.mp4), gif_path=str(v.gif), sidecar_path=str(v.sidecar),
                              frames=params.frames, fps=float(params.fps)))
    if info["products"]:
        from workbench.products.links import link_generation

        link_generation(who, gid, info["products"], settings=settings)
    return gid


def video_for(generation: int | Any, settings: Settings | None = None) -> VideoInfo | None:
    """The video of a generation (an id, or anything with ``generation_id``/``id``), or None for a still image."""
    from workbench.generate.tables import GenerationVideo

    gid = generation if isinstance(generation, int) else getattr(generation, "generation_id", None) or generation.id
    with session_scope(settings) as s:
        row = s.get(GenerationVideo, int(gid))
        if row is None:
            return None
        return VideoInfo(row.generation_id, row.mp4_path, row.gif_path, row.sidecar_path, row.frames, row.fps,
                         row.source_generation_id)


# -- the job ---------------------------------------------------------------------------------------------------------

def enqueue_video(actor: Actor, params: VideoParams, *, generation_id: int | None = None, image: str | None = None,
                  model: str | None = None, batch: str = VIDEO_BATCH, queue: bool = True) -> int:
    """Queue a ``video`` job for ``actor`` (``generate``); returns the job id."""
    from workbench.jobs import enqueue

    who = require(actor, "generate")
    params.check()
    if (generation_id is None) == (image is None):
        raise GenerationError("give either a generation id or an image path")
    config = {"params": asdict(params), "generation_id": generation_id, "image": image, "model": model,
              "batch": batch}
    what = f"generation {generation_id}" if generation_id is not None else Path(image).name
    return enqueue("video", config, title=f"spin video of {what}", created_by=who.username, queue=queue)


def video_job(ctx) -> dict[str, Any]:
    """Job handler (kind ``video``): config from ``enqueue_video``."""
    from workbench.auth import on_behalf_of

    cfg = dict(ctx.config)
    params = VideoParams.from_dict(cfg["params"])
    ctx.progress(0, 2, message="loading the video model", force=True)
    pipe = load_video_pipeline(cfg.get("model"))
    ctx.progress(1, 2, message=f"{params.frames} frames, {params.steps} steps", force=True)
    v = generate_video(on_behalf_of(ctx.created_by, "generate"), pipe, params, generation_id=cfg.get("generation_id"),
                       image=cfg.get("image"), batch=cfg.get("batch") or VIDEO_BATCH)
    ctx.log(f"video {v.generation_id}: {v.mp4} ({params.frames} frames, {params.seconds:g} s) in {v.seconds:.1f} s")
    return {"generation_id": v.generation_id, "mp4": str(v.mp4), "gif": str(v.gif), "sidecar": str(v.sidecar),
            "render_seconds": round(v.seconds, 3)}


# -- the demo workspace ----------------------------------------------------------------------------------------------

DEMO_VIDEO_BATCH = "demo-spin"


def demo_video(dataset_id: int, brand: str) -> dict[str, Any]:
    """The demo's spin video: the tiny SVD (``workspace/models/tiny-svd``, set as ``models.video`` in the workspace's
    workbench.toml) animating the catalog's first photo, 16 frames at 8 fps, recorded for review under the brand."""
    from sqlalchemy import select

    from workbench.auth import system_actor
    from workbench.data.tables import Item
    from workbench.models.sources import DEMO_MARKER
    from workbench.models.tiny import save_tiny_svd
    from workbench.settings import reload_settings, workspace_settings_file

    settings = get_settings()
    folder = settings.path("models", "tiny-svd")
    if not (folder / DEMO_MARKER).is_file():
        save_tiny_svd(folder)
    toml = workspace_settings_file()
    if toml.is_file() and "\nvideo = " not in toml.read_text():  # the demo's [models] section is the file's last
        toml.write_text(toml.read_text().rstrip("\n") + f'\nvideo = "{folder}"\n')
        settings = reload_settings()
    with session_scope() as s:
        path = s.scalar(select(Item.path).where(Item.dataset_id == int(dataset_id), Item.excluded.is_(False))
                        .order_by(Item.id).limit(1))
    if path is None:
        raise GenerationError(f"dataset {dataset_id} has no photo to animate")
    pipe = load_video_pipeline(str(folder), device="cpu")
    params = VideoParams(frames=16, fps=8, width=64, height=64, steps=2, min_guidance=1.0, max_guidance=1.0)
    v = generate_video(system_actor("mia", role="marketer"), pipe, params,
                       image=settings.path("datasets", str(dataset_id), path), brand=brand, batch=DEMO_VIDEO_BATCH)
    return {"generation_id": v.generation_id, "mp4": str(v.mp4), "render_seconds": round(v.seconds, 2)}
