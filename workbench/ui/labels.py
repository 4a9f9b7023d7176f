"""Plain labels for the keys the library uses (metric ids, metric groups, training options, table columns), so pages
show "CLIP cosine (image ↔ prompt)" or "Learning rate", never ``clip_cosine`` or ``learning_rate``.

    label("clip_score_100")   # "CLIPScore (0-100)"
    label("eval_fid")         # "FID (Fréchet Inception Distance), evaluated"
    label("some_new_key")     # "Some new key": an unknown key still reads as words
"""
from __future__ import annotations

from workbench.evaluate import METRIC_CARDS

# Short names for chart titles and per-image columns (the metric cards hold the long titles).
SHORT = {"fid": "FID", "kid": "KID", "clip_cosine": "CLIP cosine", "clip_score_100": "CLIPScore (0-100)",
         "blip_itm": "BLIP match", "lpips_ref": "LPIPS to photo", "ssim_ref": "SSIM to photo",
         "psnr_ref": "PSNR to photo", "lpips_diversity": "LPIPS diversity", "brand_consistency": "Brand consistency",
         "pickscore": "PickScore", "ocr_pass": "Logo check", "ocr_score": "Logo match (OCR)"}
GROUPS = {"fid_kid": "FID and KID (the set vs the reference photos)", "clip": "CLIP (image ↔ prompt)",
          "blip": "BLIP image-text match", "paired": "Closeness to the product photo (LPIPS, SSIM, PSNR)",
          "diversity": "Diversity (LPIPS among a prompt's images)", "brand": "Brand consistency",
          "preference": "Preference (PickScore)", "ocr": "Logo check (OCR)"}
WORDS = {
    # table columns
    "run": "Run", "status": "Status", "step": "Step", "final_loss": "Final loss", "minutes": "Minutes",
    "image_set": "Image set", "generation_id": "Image", "prompt": "Prompt", "ocr_read": "Logo text read",
    "evaluation": "Evaluation", "name": "Name",
    # job and training-step metrics
    "loss": "Loss", "lr": "Learning rate", "s_per_step": "s/step", "eta_s": "Time left (s)",
    "gpu_mem_gb": "GPU memory (GiB)", "epoch": "Epoch",
    # training options a sweep varies
    "rank": "Rank", "lora_alpha": "LoRA alpha", "learning_rate": "Learning rate", "train_batch_size": "Batch size",
    "gradient_accumulation_steps": "Gradient accumulation", "gradient_checkpointing": "Gradient checkpointing",
    "max_train_steps": "Steps", "mixed_precision": "Mixed precision", "resolution": "Resolution",
    "use_8bit_adam": "8-bit Adam", "train_text_encoder": "Train text encoders", "snr_gamma": "SNR gamma",
    "lr_scheduler": "LR schedule", "lr_warmup_steps": "Warm-up steps", "seed": "Seed", "noise_offset": "Noise offset",
}


def label(key: str, short: bool = False) -> str:
    """The plain label of a library key (metric, metric group, option, column)."""
    if key.startswith("eval_"):
        return f"{label(key[5:], short)} (evaluation)"
    if short and key in SHORT:
        return SHORT[key]
    if key in METRIC_CARDS:
        return METRIC_CARDS[key].title
    for table in (GROUPS, WORDS, SHORT):
        if key in table:
            return table[key]
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
