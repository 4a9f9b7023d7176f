"""The tiny kit: SDXL-architecture pipeline, CLIP, BLIP and an FID feature extractor at toy size, built in code.

Same classes and code paths as the real models (UNet2DConditionModel with text_time conditioning, two CLIP text
encoders, a 4-level AutoencoderKL, open_clip, BlipForImageTextRetrieval ...), seeded and deterministic, so tests and
the offline demo exercise the real loaders. Every folder written here carries a ``WORKBENCH_DEMO_MODEL.txt`` marker
and ``sources.is_demo_model`` tells UIs to label it: these weights are random (or demo-trained) and mean nothing.

    kit = make_tiny_kit(Path("/tmp/kit"))       # {"sdxl": ..., "open_clip": ..., "blip_itm": ..., ...}
    pipe = load_sdxl_pipeline(str(kit["sdxl"]))   # through workbench.models.sources, like a real model
"""
from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch
from torch import nn

from workbench.models.sources import DEMO_MARKER

TEXT_HIDDEN = 32  # both text encoders; the UNet's cross_attention_dim is their sum (64), as in SDXL (768 + 1280)
TIME_EMBED = 8  # addition_time_embed_dim; SDXL feeds 6 time ids + the pooled text embedding into the added embedding


def _mark(folder: Path, what: str) -> None:
    (folder / DEMO_MARKER).write_text(
        f"{what}: a tiny demo model built by workbench.models.tiny. Its weights are random or demo-trained; "
        "images and scores it produces are for trying the workbench, not for judging anything.\n")


# -- SDXL ----------------------------------------------------------------------------------------------------------

def _byte_vocab() -> dict[str, int]:
    from workbench.models.clip_bytes import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def tiny_clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """A CLIPTokenizer over single bytes (no merges): any text tokenizes, offline, with SDXL's 77-token limit."""
    from transformers import CLIPTokenizer

    vocab = _byte_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77,
                             pad_token=pad_token)


def build_tiny_sdxl(seed: int = 0, sample_px: int = 64, text_hidden_2: int = TEXT_HIDDEN):
    """A StableDiffusionXLPipeline with every SDXL component at toy size (random weights, seeded).
    ``text_hidden_2``: the second text encoder's width; a different one from the first's (as in SDXL, 768 vs 1280)
    lets diffusers' single-file loader tell the two encoders apart (``workbench.models.single_file``)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer()
    tokenizer_2 = tiny_clip_tokenizer(pad_token="!")
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text_cfg = dict(vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
                    bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"), eos_token_id=eos, pad_token_id=eos,
                    hidden_act="gelu")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**{**text_cfg, "hidden_size": text_hidden_2,
                                                                      "projection_dim": text_hidden_2}))
    unet = UNet2DConditionModel(
        sample_size=sample_px // 8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), transformer_layers_per_block=(1, 1), use_linear_projection=True,
        cross_attention_dim=TEXT_HIDDEN + text_hidden_2, addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED, projection_class_embeddings_input_dim=6 * TIME_EMBED + text_hidden_2,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
        sample_size=sample_px,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading", num_train_timesteps=1000)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)


def save_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    folder = Path(folder)
    build_tiny_sdxl(seed).save_pretrained(str(folder), safe_serialization=True)
    _mark(folder, "tiny SDXL-architecture pipeline")
    return folder


# -- open_clip -----------------------------------------------------------------------------------------------------

TINY_OPEN_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def save_tiny_open_clip(folder: Path, seed: int = 0) -> Path:
    """An open_clip folder (open_clip_config.json + open_clip_model.safetensors) with CLIP's real BPE tokenizer."""
    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY_OPEN_CLIP_CFG,
         "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}},
        indent=2))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}")  # no weights in the folder yet: random init
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    _mark(folder, "tiny open_clip model")
    return folder


# -- BLIP ----------------------------------------------------------------------------------------------------------

def _tiny_bert_tokenizer(folder: Path):
    """A WordPiece tokenizer over single characters: tiny, offline, and every lowercase text tokenizes."""
    from transformers import BertTokenizer

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    words = ["a", "an", "the", "of", "on", "in", "with", "photo", "white", "background", "shirt", "t", "jacket"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"] + words
    vocab += [c for c in chars if c not in vocab] + [f"##{c}" for c in string.ascii_lowercase + string.digits]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True, bos_token="[DEC]",
                        additional_special_tokens=["[ENC]"], model_max_length=64)
    return tok


def _tiny_blip_config(vocab_size: int, bos: int, sep: int):
    from transformers import BlipConfig

    text = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=32, bos_token_id=bos,
                pad_token_id=0, sep_token_id=sep, eos_token_id=sep)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8)
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=32, image_text_hidden_size=32)


def _save_blip(folder: Path, model_cls, seed: int, what: str) -> Path:
    from transformers import BlipImageProcessor, BlipProcessor

    folder = Path(folder)
    tok = _tiny_bert_tokenizer(folder / "_vocab")
    config = _tiny_blip_config(len(tok), tok.convert_tokens_to_ids("[DEC]"), tok.sep_token_id)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok)
    processor.save_pretrained(str(folder))
    for f in (folder / "_vocab").iterdir():
        f.unlink()
    (folder / "_vocab").rmdir()
    _mark(folder, what)
    return folder


def save_tiny_blip_itm(folder: Path, seed: int = 0) -> Path:
    from transformers import BlipForImageTextRetrieval

    return _save_blip(folder, BlipForImageTextRetrieval, seed, "tiny BLIP image-text matching model")


def save_tiny_blip_captioner(folder: Path, seed: int = 0) -> Path:
    from transformers import BlipForConditionalGeneration

    return _save_blip(folder, BlipForConditionalGeneration, seed, "tiny BLIP captioner")


# -- FID feature extractor -----------------------------------------------------------------------------------------

class TinyFeatureExtractor(nn.Module):
    """A small conv net mapping uint8 images (N, 3, H, W) to ``num_features`` features, for torchmetrics' FID/KID
    ``feature=`` argument. Stands in for Inception in tests; its FID values are not comparable with real FID."""

    def __init__(self, num_features: int = 64, input_px: int = 64):
        super().__init__()
        self.num_features = num_features
        self.input_px = input_px
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, num_features, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = nn.functional.interpolate(x, size=(self.input_px, self.input_px), mode="bilinear", align_corners=False)
        return self.net(x).double()

    def save_pretrained(self, folder: Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"kind": "tiny_feature_extractor",
                                                        "num_features": self.num_features,
                                                        "input_px": self.input_px}))
        save_file(self.state_dict(), str(folder / "model.safetensors"))
        _mark(folder, "tiny FID feature extractor")
        return folder

    @classmethod
    def from_pretrained(cls, folder: Path) -> TinyFeatureExtractor:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        model = cls(cfg["num_features"], cfg["input_px"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()


def save_tiny_feature_extractor(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return TinyFeatureExtractor().save_pretrained(folder)


# -- DINOv2 and the garment segmenter (product fidelity) ------------------------------------------------------------

def save_tiny_dinov2(folder: Path, seed: int = 0) -> Path:
    """A Dinov2Model (hidden 32, 2 layers, 56 px input, patch 14) and its image processor, loaded by
    ``workbench.models.dinov2.load_dinov2`` like facebook/dinov2-base."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = Path(folder)
    torch.manual_seed(seed)
    model = Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                     image_size=56, patch_size=14)).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    BitImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 56, "width": 56}, do_convert_rgb=True,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(str(folder))
    _mark(folder, "tiny DINOv2 model")
    return folder


def save_tiny_segmenter(folder: Path, seed: int = 0) -> Path:
    """A 2-class SegFormer (background, garment) at 64 px with random weights: the semantic path of
    ``workbench.models.segmenter.load_segmenter``, like mattmdjaga/segformer_b2_clothes."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    folder = Path(folder)
    torch.manual_seed(seed)
    config = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                             patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
                             decoder_hidden_size=16, num_labels=2, id2label={0: "background", 1: "garment"},
                             label2id={"background": 0, "garment": 1})
    SegformerForSemanticSegmentation(config).eval().save_pretrained(str(folder), safe_serialization=True)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(str(folder))
    _mark(folder, "tiny garment segmenter")
    return folder


# -- the whole kit -------------------------------------------------------------------------------------------------

KIT = {
    "sdxl": save_tiny_sdxl,
    "open_clip": save_tiny_open_clip,
    "blip_itm": save_tiny_blip_itm,
    "blip_captioner": save_tiny_blip_captioner,
    "feature_extractor": save_tiny_feature_extractor,
    "dinov2": save_tiny_dinov2,
    "segmenter": save_tiny_segmenter,
}

# Which Settings.models field each kit folder can stand in for.
KIT_SETTINGS = {"sdxl": ("sdxl_base", "vae"), "open_clip": ("clip_scorer",), "blip_itm": ("blip_itm",),
                "blip_captioner": ("blip_captioner",), "feature_extractor": ("fid_inception",),
                "dinov2": ("dinov2",), "segmenter": ("segmenter",)}


def make_tiny_kit(root: Path, seed: int = 0) -> dict[str, Path]:
    """Build and save every tiny model under ``root`` (reused when already there). Returns name -> folder."""
    root = Path(root)
    paths = {}
    for name, save in KIT.items():
        folder = root / f"tiny-{name.replace('_', '-')}"
        if not (folder / DEMO_MARKER).is_file():
            save(folder, seed)
        paths[name] = folder
    return paths


def kit_model_settings(kit: dict[str, Path]) -> dict[str, str]:
    """Settings.models overrides that point every capability at the tiny kit (the demo workspace uses this)."""
    return {field: str(kit[name]) for name, fields in KIT_SETTINGS.items() for field in fields}


# -- Stable Video Diffusion (spin videos) -----------------------------------------------------------------------------
# Not in KIT (the fast tests that build the kit do not need it): ``save_tiny_svd`` for the demo, ``build_tiny_svd``
# for tests.

def build_tiny_svd(seed: int = 0, num_frames: int = 16):
    """A StableVideoDiffusionPipeline with every component at toy size (random weights, seeded): a spatio-temporal
    UNet (8 latent channels in: noise + the conditioning image's latents), a temporal-decoder VAE, a CLIP vision
    encoder whose projection (32) is the UNet's cross-attention width, SVD's Euler scheduler (v-prediction, Karras
    sigmas). Frames come out at the requested size (multiples of 8; 64x64 in tests)."""
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=(2, 4), addition_time_embed_dim=8, projection_class_embeddings_input_dim=24,  # 3 ids x 8
        num_frames=num_frames)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                                       latent_channels=4, layers_per_block=1)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=2, image_size=224, patch_size=32,
        intermediate_size=37))
    scheduler = EulerDiscreteScheduler(  # stable-video-diffusion-img2vid-xt's scheduler_config.json
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        prediction_type="v_prediction", interpolation_type="linear", use_karras_sigmas=True, sigma_min=0.002,
        sigma_max=700.0, timestep_type="continuous", steps_offset=1, timestep_spacing="leading")
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))


def save_tiny_svd(folder: Path, seed: int = 0) -> Path:
    folder = Path(folder)
    build_tiny_svd(seed).save_pretrained(str(folder), safe_serialization=True)
    _mark(folder, "tiny Stable Video Diffusion pipeline")
    return folder
