"""`workbench generate run|quantize|batch|video|delete-batch`: generate images with provenance, prebuild INT8
weights, make a spin video of an image, or delete a batch (to the trash).

    workbench generate run --prompt "a navy t-shirt" --n 4
    workbench generate run --product AUR-1001 --brand aurelo     # its prompt and LoRA; the SKU in provenance + DB
    workbench generate video --generation 42 --frames 16 --fps 8  # an approved image, 2 s (workbench.generate.video)

The CLI generates as ``workbench.auth.operator.cli_actor("marketer")``: the named account (``workbench --as NAME``)
once the workspace has accounts, else the operator with the marketer's role."""
from __future__ import annotations

import typer

app = typer.Typer(help="Generate images (SDXL + LoRAs, optional INT8) with full provenance.", no_args_is_help=True)


def _actor():
    from workbench.auth.operator import cli_actor_or_exit

    return cli_actor_or_exit("marketer")


@app.command("delete-batch")
def delete_batch(name: str = typer.Argument(..., help="The batch's name (as on the Review page's batch filter)."),
                 yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete a generation batch (to the trash: `workbench trash restore` brings it back within the undo window)."""
    from workbench.generate.deletion import batch_summary, delete_batch as delete
    from workbench.generate.pipeline import GenerationError
    from workbench.trash import TrashError, window_text

    try:
        summary = batch_summary(name)
        if not yes:
            typer.confirm(f"delete batch {name!r} ({summary.warning()})? It can be restored for {window_text()}",
                          abort=True)
        info = delete(_actor(), name)
    except (GenerationError, TrashError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"batch {name!r} is in the trash (entry {info.id}); undo with `workbench trash restore {info.id}` "
               f"before {info.expires_at:%Y-%m-%d %H:%M} UTC")


def _spec(model, vae, lora, scheduler, dtype, quantization, device, **speed):
    """``speed``: the speed-path fields of PipelineSpec (attention, channels_last, fuse_qkv, compile, vae_dtype)."""
    from workbench.generate.pipeline import PipelineSpec, parse_lora_arg
    from workbench.settings import get_settings

    loras = [parse_lora_arg(item) for item in lora or []]  # a bad scale: GenerationError naming it
    s = get_settings()
    return PipelineSpec(model=model or s.models.sdxl_base, vae=vae, loras=tuple(loras), scheduler=scheduler,
                        dtype=dtype, quantization=quantization,
                        device=device or s.resolved_device(), **speed)


QUANT_HELP = ("none, int8 (optimum-quanto), fp8 (GPU), bnb8 (GPU), torchao-int8, torchao-int8-dynamic, "
              "torchao-fp8-dynamic (GPU, compute capability 8.9+).")
ATTENTION_OPT = typer.Option("sdpa", help="Attention: sdpa (torch scaled_dot_product_attention) or eager.")
CHANNELS_LAST_OPT = typer.Option(False, "--channels-last", help="NHWC memory layout for the UNet and VAE.")
FUSE_QKV_OPT = typer.Option(False, "--fuse-qkv", help="Fused q/k/v attention projections (LoRAs are fused first).")
COMPILE_OPT = typer.Option("off", help="torch.compile of the UNet: off, regional (its repeated transformer blocks, "
                                       "short compile) or full; compiles at the first image, cached in the workspace.")
VAE_DTYPE_OPT = typer.Option("auto", help="VAE precision for the decode: auto (the pipeline's), fp32, bf16, or fp16 "
                                          "(needs the fp16-fix VAE, --vae madebyollin/sdxl-vae-fp16-fix).")


@app.command()
def run(
    prompt: str = typer.Option(None, help="The prompt (with --product: default the product's prompt)."),
    product: str = typer.Option(None, help="SKU to generate for: its prompt, its LoRA (newest finished, scale 1.0), "
                                           "the SKU in provenance, and the fidelity check against its photos."),
    negative: str = typer.Option("", help="Negative prompt."),
    model: str = typer.Option(None, help="Model reference (default: settings.models.sdxl_base)."),
    vae: str = typer.Option(None, help="VAE reference (default: the model's own)."),
    lora: list[str] = typer.Option(None, help="LoRA folder or file, optionally PATH:SCALE; repeat for several."),
    scheduler: str = typer.Option("euler", help="euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc."),
    dtype: str = typer.Option("fp32", help="fp32, fp16 (GPU), bf16."),
    quantization: str = typer.Option("none", help=QUANT_HELP),
    device: str = typer.Option(None, help="cpu or cuda (default: settings.device)."),
    attention: str = ATTENTION_OPT,
    channels_last: bool = CHANNELS_LAST_OPT,
    fuse_qkv: bool = FUSE_QKV_OPT,
    compile: str = COMPILE_OPT,
    vae_dtype: str = VAE_DTYPE_OPT,
    n: int = typer.Option(1, help="Number of images (seeds seed, seed+1, ...)."),
    seed: int = typer.Option(0),
    steps: int = typer.Option(30),
    guidance: float = typer.Option(5.0),
    size: int = typer.Option(1024, help="Width and height in pixels."),
    batch: str = typer.Option("cli", help="Batch name (folder under workspace/generations)."),
    brand: str = typer.Option("", help="Brand profile the prompt is for (recorded; its CLIP gate and trigger). With "
                                       "--product: default the one named like the product's brand."),
    gate: bool = typer.Option(None, "--gate/--no-gate",
                              help="Run the CLIP gate (default: on when the brand profile has a gate section)."),
    threshold: float = typer.Option(None, help="Override the brand's CLIP threshold (gate)."),
    attempts: int = typer.Option(None, help="Override the brand's attempts per image (gate)."),
) -> None:
    """Generate N images for one prompt (or for a product); each PNG carries its parameters and provenance."""
    from dataclasses import replace

    from workbench.generate.guard import brand_profile
    from workbench.generate.pipeline import GenerationError, build_pipeline
    from workbench.generate.sample import GenerationParams, generate
    from workbench.models.sources import ModelUnavailable

    if not prompt and not product:
        typer.echo("give --prompt, or --product SKU to generate for a product", err=True)
        raise typer.Exit(2)
    checks = []
    try:
        spec = _spec(model, vae, lora, scheduler, dtype, quantization, device, attention=attention,
                     channels_last=channels_last, fuse_qkv=fuse_qkv, compile=compile, vae_dtype=vae_dtype)
        pp = None
        if product:
            from workbench.generate.product import product_prompt

            pp = _product_prompt(product_prompt, product, brand or None)
            if pp.lora and pp.lora.path not in {x.path for x in spec.loras}:
                spec = replace(spec, loras=(*spec.loras, pp.lora))
        params = GenerationParams(prompt=prompt or pp.prompt, negative_prompt=negative or (pp.negative if pp else ""),
                                  width=size, height=size, steps=steps, guidance=guidance, seed=seed, num_images=n,
                                  brand=pp.brand if pp else brand, template=pp.template if pp else "")
        profile = brand_profile(params.brand)
        if params.brand and profile is None:
            typer.echo(f"--brand {params.brand!r}: no such brand profile; see `workbench prompts list`", err=True)
            raise typer.Exit(2)
        # A product's images go through its fidelity gate; the CLIP gate is for prompts.
        gated = not product and (gate if gate is not None else bool(profile and profile.gate_defined))
        assembled = build_pipeline(spec)
        if product:
            from workbench.generate.product import generate_for_product

            out = generate_for_product(_actor(), assembled, product, params, batch, brand=pp.brand or None)
            images, checks = out.images, out.checks
        elif gated:
            images = []
            for guarded in _gated(assembled, params, batch, threshold, attempts):
                for a in guarded.attempts:
                    typer.echo(f"seed {a.seed} attempt {a.attempt} CLIP {a.clip_score:.3f}"
                               f"{' kept' if a.kept else ''}: {a.path}")
        else:
            images = generate(_actor(), assembled, params, batch=batch)
    except (GenerationError, ModelUnavailable) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if assembled.demo_model:
        typer.echo("note: this is an offline demo model: its images are for trying the workbench only")
    if pp is not None:
        typer.echo(f"product {pp.sku}: {pp.prompt}" + (f" (LoRA {pp.lora.name}, token {pp.token})" if pp.lora else ""))
    verdicts = {c.generation_id: c for c in checks}
    for img in images:
        c = verdicts.get(img.generation_id)
        suffix = "" if c is None else {True: " · fidelity passed", False: f" · held for review: {c.reason}",
                                       None: f" · fidelity {c.reason}"}[c.passed]
        typer.echo(f"seed {img.seed}: {img.path}{suffix}")


def _gated(assembled, params, batch, threshold, attempts):
    from workbench.generate.guard import ClipScorer, gate_for, generate_guarded
    from workbench.settings import get_settings

    gate = gate_for(params.brand, threshold, attempts)
    typer.echo(f"CLIP gate: threshold {gate.policy.threshold}, {gate.policy.max_attempts} attempt(s) ({gate.source})")
    scorer = ClipScorer.from_ref(gate.scorer or get_settings().models.clip_scorer, assembled.spec.device)
    return generate_guarded(_actor(), assembled, params, scorer, gate.policy, batch=batch, trigger=gate.trigger)


def _product_prompt(build, sku: str, brand: str | None):
    from workbench.generate.pipeline import GenerationError
    from workbench.products import ProductError
    from workbench.prompts import PromptError

    try:
        return build(sku, brand=brand)
    except (ProductError, PromptError) as exc:
        raise GenerationError(str(exc)) from None


@app.command()
def quantize(
    model: str = typer.Option(None, help="Model reference (default: settings.models.sdxl_base)."),
    vae: str = typer.Option(None),
    lora: list[str] = typer.Option(None, help="LoRA PATH or PATH:SCALE, fused before quantizing."),
    mode: str = typer.Option("int8", help="int8 or fp8 (GPU)."),
    device: str = typer.Option(None),
) -> None:
    """Prebuild the quantized weights for a model + LoRA set, so the first generation loads fast."""
    from workbench.generate.pipeline import GenerationError, build_pipeline
    from workbench.models.sources import ModelUnavailable

    try:
        assembled = build_pipeline(_spec(model, vae, lora, "euler", "fp32", mode, device or "cpu"))
    except (GenerationError, ModelUnavailable) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    state = "already built" if assembled.quantized_from_cache else "built"
    typer.echo(f"{mode} weights {state}: {assembled.quantized_dir}")


@app.command()
def batch(
    prompt_batch: int = typer.Option(..., help="Id of a prompt batch saved on the Prompts page (`workbench prompts`)."),
    name: str = typer.Option(None, help="Output batch name (default: prompts-<id>); rerun with it to resume."),
    model: str = typer.Option(None, help="Model reference (default: settings.models.sdxl_base)."),
    lora: list[str] = typer.Option(None, help="LoRA PATH or PATH:SCALE; repeat for several."),
    scheduler: str = typer.Option("euler"),
    quantization: str = typer.Option("none", help=QUANT_HELP),
    device: str = typer.Option(None),
    attention: str = ATTENTION_OPT,
    channels_last: bool = CHANNELS_LAST_OPT,
    fuse_qkv: bool = FUSE_QKV_OPT,
    compile: str = COMPILE_OPT,
    vae_dtype: str = VAE_DTYPE_OPT,
    n: int = typer.Option(1, help="Images per prompt."),
    seed: int = typer.Option(0),
    steps: int = typer.Option(30),
    size: int = typer.Option(1024),
    gate: bool = typer.Option(None, "--gate/--no-gate", help="Run every image through the CLIP gate (default: on "
                              "when the batch's brand profile has a gate section)."),
    threshold: float = typer.Option(None, help="Override the brand's CLIP cosine below which an image is remade."),
    attempts: int = typer.Option(None, help="Override the brand's attempts per image (gate)."),
) -> None:
    """Queue a batch job for a saved prompt batch (a background worker is started when none is alive). With the gate,
    each prompt gets its brand profile's threshold, attempts and trigger token unless --threshold/--attempts say
    otherwise."""
    from workbench.generate.batch import BatchConfig, enqueue_batch
    from workbench.generate.guard import brand_profile
    from workbench.generate.pipeline import GenerationError
    from workbench.prompts.store import get_batch
    from workbench.prompts.yamlio import PromptError

    try:
        spec = _spec(model, None, lora, scheduler, "fp32", quantization, device, attention=attention,
                     channels_last=channels_last, fuse_qkv=fuse_qkv, compile=compile, vae_dtype=vae_dtype)
        profile = brand_profile(get_batch(prompt_batch).brand)
    except (GenerationError, PromptError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    gated = gate if gate is not None else bool(profile and profile.gate_defined)
    overrides = {k: v for k, v in (("threshold", threshold), ("max_attempts", attempts)) if v is not None}
    config = BatchConfig(spec=spec, prompt_batch_id=prompt_batch, batch=name or f"prompts-{prompt_batch}",
                         params={"width": size, "height": size, "steps": steps, "seed": seed, "num_images": n},
                         gate=overrides if gated else None)
    job_id = enqueue_batch(_actor(), config, title=f"generate {config.batch}")
    if gated:
        typer.echo("CLIP gate on: " + (", ".join(f"{k} {v}" for k, v in overrides.items()) or
                                       "each prompt's brand profile's threshold and attempts") + " (--no-gate to skip)")
    typer.echo(f"queued job {job_id}: watch it with `workbench jobs show {job_id}`")


@app.command()
def video(
    image: str = typer.Option(None, help="An image file to animate (not recorded in the review queue's sources)."),
    generation: int = typer.Option(None, help="An approved generated image's id (its brand, prompt and products)."),
    frames: int = typer.Option(16, help="Frames (16+; frames / fps must be 2-3 s)."),
    fps: int = typer.Option(8, help="Frames per second."),
    width: int = typer.Option(1024), height: int = typer.Option(576),
    steps: int = typer.Option(25), seed: int = typer.Option(0),
    motion: int = typer.Option(127, help="SVD's motion bucket: more = more motion."),
    decode_chunk_size: int = typer.Option(8, help="Frames decoded at once (lower it to save memory)."),
    model: str = typer.Option(None, help="Image-to-video model (default: settings.models.video)."),
    dtype: str = typer.Option("fp32", help="fp32 | fp16 | bf16 (fp16 on a GPU)."),
) -> None:
    """A 2-3 s spin video (MP4 + GIF + JSON sidecar) of an image, recorded as a generation for review."""
    from workbench.generate.pipeline import GenerationError
    from workbench.generate.video import VideoParams, generate_video, load_video_pipeline
    from workbench.models.sources import ModelUnavailable

    if (image is None) == (generation is None):
        raise typer.BadParameter("give either --image PATH or --generation ID")
    params = VideoParams(frames=frames, fps=fps, width=width, height=height, steps=steps, seed=seed,
                         motion_bucket_id=motion, decode_chunk_size=decode_chunk_size)
    try:
        params.check()
        pipe = load_video_pipeline(model, dtype=dtype)
        v = generate_video(_actor(), pipe, params, generation_id=generation, image=image)
    except (GenerationError, ModelUnavailable) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if v.provenance.get("demo_model"):
        typer.echo("note: this is an offline demo model: its video is for trying the workbench only")
    typer.echo(f"video {v.generation_id}: {v.mp4} ({params.frames} frames, {params.seconds:g} s, "
               f"{v.seconds:.1f} s to make)\n  gif: {v.gif}\n  provenance: {v.sidecar}")


@app.command()
def scene(
    product: str = typer.Option(..., help="SKU: its photo and stored cut-out (made and stored on first use)."),
    prompt: str = typer.Option("", help="The scene to generate around it (default: the product's prompt)."),
    scene_preset: str = typer.Option("", "--scene", help="Scene preset from the prompt library (studio-white, "
                                                          "flat-lay, urban-street, golden-hour, ...)."),
    negative: str = typer.Option("", help="Negative prompt (added to the preset's)."),
    model: str = typer.Option(None, help="Model reference (default: settings.models.sdxl_base)."),
    lora: list[str] = typer.Option(None, help="LoRA PATH or PATH:SCALE; repeat for several."),
    scheduler: str = typer.Option("euler"),
    quantization: str = typer.Option("none", help="none, int8, fp8 (GPU)."),
    device: str = typer.Option(None),
    n: int = typer.Option(1, help="Number of scenes (seeds seed, seed+1, ...)."),
    seed: int = typer.Option(0),
    steps: int = typer.Option(30),
    guidance: float = typer.Option(5.0),
    size: int = typer.Option(1024, help="Width and height in pixels."),
    scale: float = typer.Option(None, help="Product long side as a share of the canvas (default: the photo's "
                                           "framing)."),
    x: float = typer.Option(0.5, help="Product centre, share of the width."),
    y: float = typer.Option(0.5, help="Product centre, share of the height."),
    shadow: float = typer.Option(0.45, help="Contact shadow opacity (0: none)."),
    item: int = typer.Option(None, help="Which photo of the product (item id; default its first)."),
    reference_scale: float = typer.Option(None, help="Condition on the product photo with the IP-Adapter "
                                                     "(settings.models.ip_adapter) at this scale."),
    brand: str = typer.Option(None, help="Brand profile (default: the one named like the product's brand)."),
    batch: str = typer.Option("scenes"),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the product-fidelity gate on each scene."),
    gate: bool = typer.Option(None, "--gate/--no-gate", help="Run the CLIP gate on each scene (default: on when the "
                                                             "brand profile has a gate section)."),
    mask_model: str = typer.Option("", help="Remake the stored cut-out with a model: 'segmenter' "
                                            "(settings.models.segmenter) or 'cutout' (settings.models.cutout, "
                                            "BiRefNet: its repo code runs, so it needs --trust-remote-code)."),
    trust_remote_code: bool = typer.Option(False, help="Allow the cut-out model's own Python code to run."),
) -> None:
    """Generate scenes around a product's own photo: product pixels kept exactly, the rest generated (SDXL
    inpainting with the same model, LoRAs, scheduler and quantization as `generate run`)."""
    from workbench.generate.pipeline import GenerationError, build_pipeline
    from workbench.generate.scenes.compose import Placement
    from workbench.generate.scenes.scene import SceneRequest, generate_scene, scene_gate, scene_pipeline
    from workbench.models.sources import ModelUnavailable
    from workbench.products import ProductError, get_product
    from workbench.settings import get_settings

    try:
        get_product(product)
        req = SceneRequest(sku=product, prompt=prompt, scene=scene_preset, negative=negative, width=size, height=size,
                           steps=steps, guidance=guidance, seed=seed, num_images=n, shadow=shadow, item_id=item,
                           placement=Placement(scale=scale, x=x, y=y), brand=brand)
        req.check()
        spec = _spec(model, None, lora, scheduler, "fp32", quantization, device)
        segmenter = None
        if mask_model:
            if mask_model not in ("segmenter", "cutout"):
                raise GenerationError(f"--mask-model {mask_model!r}: 'segmenter' or 'cutout'")
            from workbench.generate.scenes.cutout import load_cutout_model

            segmenter = load_cutout_model(getattr(get_settings().models, mask_model), spec.device,
                                          trust_remote_code=trust_remote_code)
        clip_gate = scene_gate(product, brand) if gate is not False else None
        if gate and clip_gate is None:
            from workbench.generate.guard import gate_for

            clip_gate = gate_for(brand or "")
        sp = scene_pipeline(build_pipeline(spec), ip_adapter=get_settings().models.ip_adapter
                            if reference_scale is not None else None, reference_scale=reference_scale or 0.0)
        scorer = None
        if clip_gate is not None:
            from workbench.generate.guard import ClipScorer

            typer.echo(f"CLIP gate: threshold {clip_gate.policy.threshold}, {clip_gate.policy.max_attempts} "
                       f"attempt(s) ({clip_gate.source})")
            scorer = ClipScorer.from_ref(get_settings().models.clip_scorer, spec.device)
        images = generate_scene(_actor(), sp, req, batch, check=check, scorer=scorer, gate=clip_gate,
                                segmenter=segmenter, remake_mask=bool(mask_model))
    except (GenerationError, ModelUnavailable, ProductError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if sp.assembled.demo_model:
        typer.echo("note: this is an offline demo model: its images are for trying the workbench only")
    for img in images:
        f = img.fidelity
        verdict = "" if f is None else {True: " · fidelity passed", False: f" · held for review: {f.reason}",
                                        None: f" · fidelity {f.reason}"}[f.passed]
        score = "" if img.clip_score is None else f" · CLIP {img.clip_score:.3f}{'' if img.kept else ' (not kept)'}"
        typer.echo(f"{product} seed {img.seed}: {img.path}{score}{verdict}")


@app.command()
def logo(
    image: str = typer.Option(..., help="The image (PNG/JPEG) to put the logo on."),
    corners: str = typer.Option(None, help="Four corners x1,y1,x2,y2,x3,y3,x4,y4 in pixels: top-left, top-right, "
                                           "bottom-right, bottom-left of where the logo goes. Default: the product's "
                                           "logo region (a product scene's, or --product's)."),
    product: str = typer.Option(None, help="SKU whose recorded logo region to use when no --corners are given (the "
                                           "image has the framing of its photos; a product scene knows its own)."),
    svg: str = typer.Option(None, help="The logo SVG (default: the brand profile's <brand>.logo.svg)."),
    brand: str = typer.Option("", help="Brand profile: its logo SVG and the text OCR must read (logo_text)."),
    text: str = typer.Option(None, help="The text OCR must read (default: the brand's logo_text)."),
    colour: str = typer.Option(None, help="Render the logo in one colour, #RRGGBB (default: its own colours)."),
    out: str = typer.Option(None, help="Output PNG (default: <image>.logo.png beside the image)."),
) -> None:
    """Place a logo from SVG on an image (perspective warp to four corners, blended with the garment's shading) and
    read it back with the OCR logo check. Hostile SVGs (external references, entities, huge sizes) are refused.
    Without --corners the product's logo region is used (`workbench products logo-region`)."""
    from pathlib import Path

    from PIL import Image

    from workbench.evaluate.placement import brand_logo, place_and_check
    from workbench.generate.pipeline import GenerationError
    from workbench.generate.sample import read_png_metadata
    from workbench.generate.scenes.logo import LogoError, image_frame, parse_corners, region_corners

    try:
        with Image.open(image) as im:
            base = im.convert("RGB")
        if corners:
            pts = parse_corners(corners)
        else:
            prov = read_png_metadata(Path(image)).provenance if image.lower().endswith(".png") else {}
            frame = image_frame(base, provenance=prov, sku=product)
            if frame is None:
                raise LogoError("give --corners, or --product SKU whose photo has a logo region "
                                "(`workbench products logo-region SKU --corners ...`)")
            pts = region_corners(frame)
            if pts is None:
                raise LogoError(f"{frame.sku} has no logo region for this image's photo: give --corners, or record "
                                f"one (`workbench products logo-region {frame.sku} --corners ...`)")
            typer.echo(f"corners from {frame.sku}'s logo region ({frame.how}): "
                       + ",".join(f"{x:.1f},{y:.1f}" for x, y in pts))
        svg_text, expected = brand_logo(brand, svg_path=svg, text=text)
        result = place_and_check(base, svg_text, pts, expected, colour=colour)
    except (LogoError, GenerationError, OSError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    target = Path(out) if out else Path(image).with_suffix(".logo.png")
    result.image.save(target)
    c = result.check
    typer.echo(f"{target}: OCR read {c.text!r}; {'PASS' if c.passed else 'FAIL'} for {c.expected!r} "
               f"(score {c.score:.0f}, {c.backend})")
    if not c.passed:
        raise typer.Exit(1)
