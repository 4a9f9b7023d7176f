"""Held-out denoising loss: did training learn something that carries over to images it never saw?

The loss of predicting the added noise, on held-out images, with *fixed* noise and timesteps (seeded), so the number
for step 0 (the base model) and for a trained LoRA differ only by the weights. Lower is better.

    base = heldout_loss(model_ref, examples, resolution=64)
    tuned = heldout_loss(model_ref, examples, resolution=64, lora_dir=run / "lora")
"""
from __future__ import annotations

from pathlib import Path

from workbench.train.config import TrainConfig
from workbench.train.data import Example, load_example


def heldout_loss(model_ref: str, examples: list[Example], resolution: int, lora_dir: str | Path | None = None,
                 seed: int = 1234, repeats: int = 4, timesteps: tuple[int, ...] | None = None) -> float:
    """Mean MSE between predicted and true noise over ``examples`` x ``repeats`` fixed (noise, timestep) draws."""
    import torch
    import torch.nn.functional as F

    from workbench.train.script import encode_prompts, load_models

    cfg = TrainConfig(pretrained_model_name_or_path=model_ref, resolution=resolution, center_crop=True)
    m = load_models(model_ref, None, cfg)
    unet, vae = m["unet"], m["vae"]
    if lora_dir is not None:  # the way a user loads it: the pipeline's load_lora_weights (adapter metadata kept)
        from workbench.train.validation import _pipeline

        pipe = _pipeline(m, unet, [m["text_encoder"], m["text_encoder_2"]], "cpu", None)
        pipe.load_lora_weights(str(lora_dir), adapter_name="heldout")
    for mod in (unet, vae, m["text_encoder"], m["text_encoder_2"]):
        mod.eval()
    sched = m["noise_scheduler"]
    gen = torch.Generator("cpu").manual_seed(seed)
    losses = []
    with torch.no_grad():
        for i, ex in enumerate(examples):
            pixels, osz, crop = load_example(ex, cfg, epoch=0, index=i)
            latents = vae.encode(pixels[None]).latent_dist.mean * vae.config.scaling_factor
            emb, pooled = encode_prompts([m["text_encoder"], m["text_encoder_2"]],
                                         [m["tokenizer"], m["tokenizer_2"]], [ex.caption])
            time_ids = torch.tensor([[*osz, *crop, resolution, resolution]], dtype=latents.dtype)
            for r in range(repeats):
                noise = torch.randn(latents.shape, generator=gen)
                t = torch.tensor([timesteps[(i * repeats + r) % len(timesteps)]] if timesteps else
                                 [int(torch.randint(0, sched.config.num_train_timesteps, (1,), generator=gen))])
                noisy = sched.add_noise(latents, noise, t)
                pred = unet(noisy, t, emb, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
                losses.append(F.mse_loss(pred.float(), noise.float()).item())
    return sum(losses) / len(losses)
