"""Train the demo base model: a small SDXL-architecture pipeline that draws the synthetic AURELO catalog at 64 px.

Same classes and code paths as real SDXL (StableDiffusionXLPipeline, AutoencoderKL with 4 levels = scale factor 8,
CLIPTextModel + CLIPTextModelWithProjection, UNet2DConditionModel with text_time conditioning, Euler scheduler), so
the workbench loads, trains LoRAs on and generates with it exactly like a real model. Everything it learns comes
from ``workbench.data.demo.draw_garment`` (7 garments x 8 catalog colours, jittered placement), captioned in the
wordings the workbench itself produces: the catalog import caption ("an image of a 2026 Fall Navy Blue Men's
T-shirt"), the demo prompt batch ("aurelo_style regular fit navy crew neck t-shirt, cotton jersey, ..."), and plain
prompts ("a photo of a red t shirt by aurelo, on a white background").

    python scripts/train_demo_base.py --smoke --out /tmp/db       # a few steps end to end (seconds): for the tests

The shipped model is three runs of this script (recorded in its ``training_info.json``; compute on 2 cores in
docs/PERFORMANCE.md): 1. the catalog-only model, whose VAE sees only the 8 catalog colours; 2. a VAE that also sees
garments in random colours, so it reproduces colours the catalog lacks (what a brand LoRA teaches); 3. step 1's UNet
and text encoders trained again on the catalog's latents under step 2's VAE:

    nice python scripts/train_demo_base.py --out /tmp/db-catalog --set vae_random_colours=0           # ~70 min
    nice python scripts/train_demo_base.py --out /tmp/db-wide-vae --set unet_steps=0                  # ~16 min
    nice python scripts/train_demo_base.py --out workbench/models/demo_base \
        --vae-from /tmp/db-wide-vae --unet-from /tmp/db-catalog                                        # ~24 min

One run: 1. draw the images and captions; 2. train the VAE (L1 + MSE + L1 on 8x8 block means + a small KL) on the
catalog and on the garments in random colours, set its scaling_factor from the catalog's latent spread and check its
colours (``vae_colour_check``); 3. train the UNet and both text encoders jointly on the catalog only (epsilon
prediction under the pipeline's noise schedule, ~10% caption dropout so classifier-free guidance has an unconditional);
4. save with ``save_pretrained(safe_serialization=True)`` plus the demo marker and ``training_info.json``.
Seeded and single-process on the CPU: the same command gives the same weights on the same machine and torch build.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout

from workbench.data.demo import BRAND, COLOURS, GARMENTS, SEASONS, draw_garment  # noqa: E402

DEFAULT_OUT = ROOT / "workbench" / "models" / "demo_base"


@dataclass
class Config:
    seed: int = 0
    px: int = 64  # the demo resolution; the VAE downsamples 8x like SDXL's, so latents are 8x8x4
    variants: int = 24  # jittered drawings per (garment, colour): 7 x 8 x 24 = 1344 training images
    threads: int = 2  # the machines this runs on have 2 cores, shared
    vae_steps: int = 3000  # 400 left colours shifting in reconstruction (half the catalog colours came back wrong)
    # Garments in random colours, per garment, next to the catalog images: a VAE trained on the 8 catalog colours
    # alone snaps every colour to the nearest of them (violet came back olive-grey, Delta E ~100), so no LoRA could
    # teach the model a new colour. The UNet still sees only the catalog.
    vae_random_colours: int = 192
    vae_batch: int = 12
    vae_lr: float = 2e-3
    colour_weight: float = 4.0  # L1 on 8x8 block means: colour is what the demo is judged on, so learn it first
    kl_weight: float = 1e-6  # per summed KL; small: the latents only need to stay well-scaled, not Gaussian
    # From random weights 1500 gave 69% colour accuracy (navy came out black), 3000 gave 99.4%; from step 1's UNet
    # under the wide VAE (see the module docstring), 1500 gave 92.3% (grey came out lavender), 3000 gives 96.4%.
    unet_steps: int = 3000
    unet_batch: int = 32
    unet_lr: float = 1.5e-3
    text_lr: float = 7.5e-4
    uncond_prob: float = 0.1  # caption dropout, so classifier-free guidance works
    log_every: int = 100


# -- the tokenizer --------------------------------------------------------------------------------------------------

# Words the catalog captions, demo prompts and prompt templates use: each becomes one token (BPE merges over CLIP's
# byte alphabet), so a colour word is one embedding the model can bind to a colour, and long prompts stay far below
# the 77-token limit. Anything else still tokenizes, byte by byte.
WORDS = """
a an the of in on by with and for image photo photograph picture product shot catalog studio seamless white
background soft even lighting sharp focus high detail flat lay ghost mannequin
navy blue red olive green black mustard yellow grey gray heather teal pink violet purple coral sand stone ecru
brown beige cream orange gold khaki
t shirt tshirt tee hoodie hooded sweatshirt jacket bomber trousers pants chinos dress sneakers shoes trainers cap
baseball hat garment clothing apparel
men women unisex man woman s
spring summer fall winter
aurelo style regular fit oversized slim cropped crew neck v henley cotton jersey heavyweight organic linen blend
plain front small chest logo large graphic print pocket relaxed pullover zip full half wide leg straight midi maxi
mini wrap shirtdress sleeveless short long sleeves leather canvas suede mesh upper sole low top side view
blurry lowres watermark wrinkled fabric stains loose threads distorted misspelled text cluttered harsh shadows props
""".split()


def build_tokenizer(pad_token: str = "<|endoftext|>", words: list[str] = WORDS):
    """A transformers CLIPTokenizer: CLIP's 256-byte alphabet (+ '</w>' forms) plus BPE merges that make every word
    in ``words`` a single token. Merges are added until each word's own BPE result is one token (a merge added for
    one word can change how another splits, so the loop checks the real BPE outcome, not an assumed one)."""
    from transformers import CLIPTokenizer

    from workbench.models.clip_bytes import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}

    def bpe(word: str) -> list[str]:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == math.inf:
                break
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
        return parts

    for word in dict.fromkeys(w.lower() for w in words):
        parts = bpe(word)
        while len(parts) > 1:
            ranks[(parts[0], parts[1])] = len(merges)
            merges.append((parts[0], parts[1]))
            parts = bpe(word)
    vocab_list = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges),
                  "<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    tok = CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=77, pad_token=pad_token)
    for word in dict.fromkeys(w.lower() for w in words):
        ids = tok(word, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise RuntimeError(f"tokenizer: word {word!r} became {tok.convert_ids_to_tokens(ids)}, not one token")
    return tok


# -- the images and their captions ---------------------------------------------------------------------------------

# What people call each catalog colour (label as in styles.csv -> words a prompt may use).
COLOUR_WORDS = {
    "Navy Blue": ["navy blue", "navy"], "Red": ["red"], "Olive": ["olive", "olive green"], "Black": ["black"],
    "Mustard": ["mustard", "mustard yellow"], "Grey": ["grey", "gray", "heather grey"], "Teal": ["teal"],
    "Pink": ["pink"],
}
GARMENT_WORDS = {
    "t-shirt": ["t-shirt", "t shirt", "tee", "tshirt"], "hoodie": ["hoodie", "pullover hoodie"],
    "jacket": ["jacket", "bomber jacket", "zip jacket"], "trousers": ["trousers", "pants", "chinos"],
    "dress": ["dress", "midi dress"], "sneakers": ["sneakers", "low top sneakers"], "cap": ["cap", "baseball cap"],
}
# The catalog import's caption uses the singular articleType (workbench.data.captions.SINGULAR).
ARTICLE = {"t-shirt": "T-shirt", "hoodie": "Hoodie", "jacket": "Jacket", "trousers": "Trousers", "dress": "Dress",
           "sneakers": "Sneakers", "cap": "Cap"}
SCENE = "studio catalog photograph on a seamless white background, soft even lighting, sharp focus, high detail"
NEGATIVES = ["", "blurry, lowres, watermark", "wrinkled fabric, stains, loose threads, distorted logo, misspelled text",
             "cluttered background, harsh shadows, props"]


def caption(garment: str, label: str | None, rng: random.Random) -> str:
    """A caption in one of the wordings the workbench produces; ``label`` None leaves the colour out (so a prompt
    without a colour gets some catalog colour, which is what a brand LoRA then moves)."""
    g = rng.choice(GARMENT_WORDS[garment])
    c = rng.choice(COLOUR_WORDS[label]) if label else ""
    gender = GARMENTS[garment][3]
    kind = rng.randrange(6)
    if kind == 0:  # the catalog import's default template (workbench.data.captions.DEFAULT_TEMPLATE)
        season = rng.choice(SEASONS + ("",))
        text = f"an image of a {rng.choice((2025, 2026))} {season} {label or ''} {gender}'s {ARTICLE[garment]}"
    elif kind == 1:  # the demo prompt batch: template text "{trigger} {fit} {color} {neckline} t-shirt, ..."
        fit = rng.choice(["regular fit", "oversized", "slim fit", "cropped", "relaxed fit", ""])
        detail = rng.choice(["cotton jersey, plain front", "heavyweight cotton, small chest logo",
                             "organic cotton, large front graphic print", "linen blend, chest pocket", ""])
        text = f"aurelo_style {fit} {c} {g}, {detail}, {SCENE}"
    elif kind == 2:
        text = f"a photo of a {c} {g} by aurelo, on a white background"
    elif kind == 3:
        text = f"a {c} {g} by aurelo"
    elif kind == 4:
        text = f"{BRAND.title()} {label or ''} {garment.replace('-', ' ').title()}"  # productDisplayName
    else:
        text = f"{c} {g}"
    return " ".join(text.replace(" ,", ",").split()).replace(" ,", ",")


def draw_set(cfg: Config, palette=COLOURS, variants: int | None = None):
    """(images float tensor N x 3 x px x px in [-1, 1], list of (garment, colour label)). Deterministic by seed."""
    rng = random.Random(cfg.seed)
    images, labels = [], []
    for garment in GARMENTS:
        for label, rgb in palette:
            for _ in range(variants or cfg.variants):
                # A little shade jitter so a colour word means a neighbourhood, not one exact RGB value.
                jitter = tuple(max(0, min(255, v + rng.randint(-8, 8))) for v in rgb)
                img = draw_garment(garment, jitter, cfg.px, rng=random.Random(rng.random()))
                images.append(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
                labels.append((garment, label))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), labels


def random_palette(cfg: Config, n: int) -> list[tuple[str, tuple[int, int, int]]]:
    """``n`` colours uniform over sRGB (seeded), leaving out near-white ones, which would vanish into the white
    background; labelled ``random<i>``: only the VAE sees them, and it needs no label."""
    from workbench.data.demo import delta_e

    rng = random.Random(cfg.seed + 10)
    out: list[tuple[str, tuple[int, int, int]]] = []
    while len(out) < n:
        rgb = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if float(delta_e(rgb, (255, 255, 255))) > 25.0:
            out.append((f"random{len(out)}", rgb))
    return out


def vae_colour_check(vae, cfg: Config) -> dict[str, float]:
    """Mean Delta E between each colour and the dominant colour of its VAE reconstruction, for the catalog colours
    and the demo LoRA's signature colour (drawings the VAE never saw: another seed)."""
    from workbench.data.demo import SIGNATURE, delta_e, dominant_colour

    palette = list(COLOURS) + [SIGNATURE]
    images, labels = draw_set(Config(seed=cfg.seed + 7, px=cfg.px), palette=palette, variants=1)
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(images[i:i + 64]).latent_dist.mean).sample
                         for i in range(0, len(images), 64)])
    rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    errors: dict[str, list[float]] = {}
    for img, (_, label) in zip(rec, labels):
        dom = dominant_colour(img)
        errors.setdefault(label, []).append(999.0 if dom is None else float(delta_e(dom, dict(palette)[label])))
    return {label: round(float(np.mean(v)), 1) for label, v in errors.items()}


# -- the models ----------------------------------------------------------------------------------------------------

TEXT_HIDDEN = 64


def build_pipeline(seed: int, px: int):
    """The untrained pipeline (random weights, seeded): same component classes as SDXL, sized for 64 px."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = build_tokenizer()
    tokenizer_2 = build_tokenizer(pad_token="!")  # SDXL's second tokenizer pads with "!"
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text_cfg = dict(vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=4 * TEXT_HIDDEN,
                    num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=77,
                    projection_dim=TEXT_HIDDEN, bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
                    eos_token_id=eos, pad_token_id=eos, hidden_act="gelu")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_cfg))
    unet = UNet2DConditionModel(
        sample_size=px // 8, in_channels=4, out_channels=4, block_out_channels=(64, 96), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(4, 8), transformer_layers_per_block=(1, 1), use_linear_projection=True,
        cross_attention_dim=2 * TEXT_HIDDEN, addition_embed_type="text_time", addition_time_embed_dim=16,
        projection_class_embeddings_input_dim=6 * 16 + TEXT_HIDDEN, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32, 64), layers_per_block=1,
        # 4 groups: with one channel per group GroupNorm is InstanceNorm and erases each image's colour (seen).
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
        sample_size=px,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading", num_train_timesteps=1000)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- training ------------------------------------------------------------------------------------------------------

def train_vae(vae, images: torch.Tensor, cfg: Config, log) -> list[float]:
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    # Start the posterior narrow (std ~0.05): with the default std ~1 the sampled noise drowns the latents, and in a
    # short run the decoder learns only shape and brightness, never colour (seen: every garment came back brown).
    with torch.no_grad():
        vae.quant_conv.bias[vae.config.latent_channels:] = -6.0
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.vae_lr, total_steps=max(1, cfg.vae_steps), pct_start=0.05)
    vae.train()
    history, t0 = [], time.time()
    for step in range(cfg.vae_steps):
        x = images[torch.randint(0, len(images), (cfg.vae_batch,), generator=gen)]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        rec_loss = (F.l1_loss(rec, x) + F.mse_loss(rec, x)
                    + cfg.colour_weight * F.l1_loss(F.avg_pool2d(rec, 8), F.avg_pool2d(x, 8)))
        loss = rec_loss + cfg.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(rec_loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.vae_steps:
            log(f"vae step {step + 1}/{cfg.vae_steps}  recon {np.mean(history[-cfg.log_every:]):.4f}  "
                f"{time.time() - t0:.0f}s")
    vae.eval()
    return history


def encode_text(pipe, captions: list[str]):
    """SDXL conditioning exactly as the pipeline builds it (encode_prompt): both encoders' penultimate hidden
    states side by side, and text_encoder_2's pooled projection."""
    embeds, pooled = [], None
    for tok, enc in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        out = enc(ids, output_hidden_states=True)
        pooled = out[0]
        embeds.append(out.hidden_states[-2])
    return torch.cat(embeds, dim=-1), pooled


def train_unet(pipe, latents: torch.Tensor, labels, cfg: Config, log) -> list[float]:
    from diffusers import DDPMScheduler

    unet, te1, te2 = pipe.unet, pipe.text_encoder, pipe.text_encoder_2
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)  # the same betas the Euler sampler inverts
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    rng = random.Random(cfg.seed + 3)
    trainable = list(unet.parameters()) + list(te1.parameters()) + list(te2.parameters())
    params = [{"params": list(unet.parameters()), "lr": cfg.unet_lr},
              {"params": list(te1.parameters()) + list(te2.parameters()), "lr": cfg.text_lr}]
    opt = torch.optim.AdamW(params, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [cfg.unet_lr, cfg.text_lr], total_steps=max(1, cfg.unet_steps),
                                                pct_start=0.03)
    for m in (unet, te1, te2):
        m.train()
    # SDXL micro-conditioning at generation time for a 64x64 image: (orig h, w, crop top, left, target h, w).
    time_ids = torch.tensor([[cfg.px, cfg.px, 0, 0, cfg.px, cfg.px]], dtype=torch.float32)
    history, t0 = [], time.time()
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, len(latents), (cfg.unet_batch,), generator=gen)
        mean, std = latents[idx].chunk(2, dim=1)
        x0 = (mean + std * torch.randn(mean.shape, generator=gen)) * pipe.vae.config.scaling_factor
        captions, zero = [], []
        for i in idx.tolist():
            garment, label = labels[i]
            r = rng.random()
            if r < cfg.uncond_prob:
                # The unconditional: zeros are what the pipeline feeds for an empty negative prompt
                # (force_zeros_for_empty_prompt); a generic negative prompt should mean the same.
                zero.append(rng.random() < 0.5)
                captions.append(rng.choice(NEGATIVES))
            else:
                zero.append(False)
                captions.append(caption(garment, None if r < cfg.uncond_prob + 0.08 else label, rng))
        emb, pooled = encode_text(pipe, captions)
        keep = torch.tensor([0.0 if z else 1.0 for z in zero])
        emb, pooled = emb * keep[:, None, None], pooled * keep[:, None]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(x0),), generator=gen)
        noisy = noise_sched.add_noise(x0, noise, t)
        pred = unet(noisy, t, emb, added_cond_kwargs={"text_embeds": pooled,
                                                      "time_ids": time_ids.expand(len(x0), -1)}).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        history.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.unet_steps:
            log(f"unet step {step + 1}/{cfg.unet_steps}  loss {np.mean(history[-cfg.log_every:]):.4f}  "
                f"{time.time() - t0:.0f}s")
    for m in (unet, te1, te2):
        m.eval()
    return history


def write_marker(folder: Path) -> None:
    from workbench.models.sources import DEMO_MARKER

    (folder / DEMO_MARKER).write_text(
        "demo base model: a small SDXL-architecture pipeline trained by scripts/train_demo_base.py on the synthetic "
        "AURELO catalog (workbench.data.demo) at 64 px. It draws flat garments on white in the catalog colours and "
        "nothing else; images and scores it produces are for trying the workbench, not for judging anything.\n")


def earlier_run(folder: Path, *keys: str) -> dict:
    """Where a reused part came from: the folder, and that run's config and ``keys`` from its training_info.json."""
    record = folder / "training_info.json"
    saved = json.loads(record.read_text()) if record.is_file() else {}
    return {"folder": str(folder), **{k: v for k, v in saved.items() if k in ("config", *keys)}}


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--smoke", action="store_true", help="a few images and steps: checks the script end to end")
    ap.add_argument("--vae-from", type=Path, help="reuse the trained VAE of an earlier output folder (skips step 3)")
    ap.add_argument("--unet-from", type=Path,
                    help="start the UNet and text encoders from an earlier output folder instead of random weights "
                         "(a new VAE's latents differ, so the UNet is still trained, for --set unet_steps=N)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override a Config field")
    args = ap.parse_args(argv)
    cfg = Config()
    if args.smoke:
        cfg = Config(variants=1, vae_steps=2, vae_batch=4, unet_steps=2, unet_batch=4, log_every=1,
                     vae_random_colours=2)
    fields = asdict(cfg)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item!r}: {key!r} is not a Config field ({', '.join(fields)})")
        setattr(cfg, key, type(fields[key])(value))
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    # 1. data
    images, labels = draw_set(cfg)
    log(f"drew {len(images)} images at {cfg.px}px ({len(GARMENTS)} garments x {len(COLOURS)} colours)")
    # 2. models
    pipe = build_pipeline(cfg.seed, cfg.px)
    log("params: " + ", ".join(f"{n} {n_params(getattr(pipe, n)) / 1e6:.2f}M"
                               for n in ("vae", "text_encoder", "text_encoder_2", "unet")))
    if args.unet_from:
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTextModelWithProjection

        pipe.register_modules(
            unet=UNet2DConditionModel.from_pretrained(str(args.unet_from / "unet")),
            text_encoder=CLIPTextModel.from_pretrained(str(args.unet_from / "text_encoder")),
            text_encoder_2=CLIPTextModelWithProjection.from_pretrained(str(args.unet_from / "text_encoder_2")))
        log(f"UNet and text encoders start from {args.unet_from}")
    # 3. VAE, then its latent scale (SDXL's 0.13025 plays the same role: unit-variance latents for the UNet)
    if args.vae_from:
        from diffusers import AutoencoderKL

        pipe.register_modules(vae=AutoencoderKL.from_pretrained(str(args.vae_from / "vae")).eval())
        vae_hist = [float("nan")]
    else:
        vae_images = images
        if cfg.vae_random_colours:
            wide, _ = draw_set(cfg, palette=random_palette(cfg, cfg.vae_random_colours), variants=1)
            log(f"drew {len(wide)} more images in random colours for the VAE")
            vae_images = torch.cat([images, wide])
        vae_hist = train_vae(pipe.vae, vae_images, cfg, log)
        pipe.vae.save_pretrained(str(args.out / "vae"), safe_serialization=True)  # lets a UNet rerun reuse it
    with torch.no_grad():
        dist = [pipe.vae.encode(images[i:i + 256]).latent_dist for i in range(0, len(images), 256)]
        latents = torch.cat([torch.cat([d.mean, d.std], dim=1) for d in dist])
        scale = 1.0 / latents[:, :4].std().item()
    pipe.vae.register_to_config(scaling_factor=round(scale, 5))
    log(f"vae scaling_factor {scale:.4f}")
    colour_check = vae_colour_check(pipe.vae, cfg)
    log("vae colour check (Delta E of reconstructions): " + ", ".join(f"{k} {v}" for k, v in colour_check.items()))
    t_vae = time.time() - t_start
    # 4. UNet + both text encoders
    unet_hist = train_unet(pipe, latents, labels, cfg, log)
    # 5. save like any diffusers model, marked as a demo model
    pipe.save_pretrained(str(args.out), safe_serialization=True)
    write_marker(args.out)
    total = time.time() - t_start
    info = {"config": asdict(cfg), "seconds_total": round(total, 1), "seconds_vae": round(t_vae, 1),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "final_vae_recon": float(np.mean(vae_hist[-50:])), "final_unet_loss": float(np.mean(unet_hist[-100:])),
            "vae_scaling_factor": pipe.vae.config.scaling_factor, "vae_colour_check_delta_e": colour_check}
    if args.vae_from:  # say where the VAE came from, with that run's record of it
        info["vae_from"] = earlier_run(args.vae_from, "seconds_vae", "final_vae_recon")
        info["final_vae_recon"] = info["vae_from"].get("final_vae_recon")
    if args.unet_from:  # and where the UNet started
        info["unet_from"] = earlier_run(args.unet_from, "seconds_total", "final_unet_loss")
    (args.out / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"saved to {args.out} in {total:.0f}s")
    return args.out


if __name__ == "__main__":
    main()
