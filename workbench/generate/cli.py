"""`workbench generate run|quantize|batch`: generate images with provenance, or prebuild INT8 weights.

    workbench generate run --prompt "a navy t-shirt" --n 4
    workbench generate run --product AUR-1001 --brand aurelo     # its prompt and LoRA; the SKU in provenance + DB

The CLI generates as ``system_actor("cli", role="marketer")``: generating is the marketer's permission, and whoever runs
the CLI can open the workspace database anyway."""
from __future__ import annotations

import typer

app = typer.Typer(help="Generate images (SDXL + LoRAs, optional INT8) with full provenance.", no_args_is_help=True)


def _actor():
    from workbench.auth import system_actor

    return system_actor("cli", role="marketer")


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
    scorer = ClipScorer.from_ref(get_settings().models.clip_scorer, assembled.spec.device)
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
