"""The generation speed path (workbench.generate.speed via PipelineSpec) on the tiny SDXL kit, CPU.

Each option must leave the image what it was, within a stated tolerance, and say no to what cannot work. Compiled
tests use torch.compile's ``aot_eager`` backend: it captures the same graphs (regional wrapping of the UNet's
transformer blocks, full-graph capture of the UNet) without inductor's C++ code generation, which took 160 s for
the tiny UNet on this 2-core machine under load (over the 15 s a test may take). Inductor runs in the GPU bench.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from workbench.generate import pipeline, speed
from workbench.generate.pipeline import GenerationError, LoraSpec, PipelineSpec, build_pipeline, check_spec
from workbench.models import tiny

PROMPT = "a red t-shirt on white"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(tiny.save_tiny_sdxl(tmp_path_factory.mktemp("kit") / "tiny-sdxl"))


def _image(assembled, seed=1) -> np.ndarray:
    """One 64x64 image, 1 step, guidance 5 (both UNet passes), as float pixels in 0..255 (before the PNG's
    rounding)."""
    g = torch.Generator().manual_seed(seed)
    out = assembled.pipe(PROMPT, negative_prompt="blurry", num_inference_steps=1, height=64, width=64,
                         guidance_scale=5.0, generator=g, output_type="np").images
    return out.astype(np.float64) * 255


@pytest.fixture(scope="module")
def reference(model):
    """The default pipeline's image: fp32, SDPA, nothing fused or compiled."""
    return _image(build_pipeline(PipelineSpec(model=model)))


@pytest.fixture(scope="module")
def lora_dir(model, tmp_path_factory):
    """A real LoRA (peft, non-zero B) on the tiny UNet, saved like the trainer saves it."""
    from helpers.train import save_random_lora

    return save_random_lora(model, tmp_path_factory.mktemp("lora"))


def test_defaults_keep_todays_pipeline_and_old_configs_still_read(model, reference):
    from diffusers.models.attention_processor import AttnProcessor2_0

    spec = PipelineSpec(model=model)
    assert (spec.attention, spec.channels_last, spec.fuse_qkv, spec.compile, spec.vae_dtype) == (
        "sdpa", False, False, "off", "auto")
    # a config stored before the speed fields existed (a batch job's spec) reads back with the defaults
    old = {"model": model, "vae": None, "loras": [], "scheduler": "euler", "dtype": "fp32", "quantization": "int8",
           "device": "cpu", "cpu_offload": False, "vae_tiling": False}
    assert PipelineSpec.from_dict(old) == PipelineSpec(model=model, quantization="int8")
    fast = PipelineSpec(model=model, fuse_qkv=True, compile="regional", channels_last=True, vae_dtype="bf16",
                        quantization="torchao-int8-dynamic")
    assert PipelineSpec.from_dict(json.loads(json.dumps(fast.to_dict()))) == fast
    # the quantized-weights key of a spec without the new options is the one already cached on disk
    import hashlib

    blob = json.dumps([model, None, [], "int8", "fp32"], sort_keys=True)
    assert PipelineSpec.from_dict(old).quant_key() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert PipelineSpec(model=model, quantization="int8", fuse_qkv=True).quant_key() != spec.quant_key()
    pipe = build_pipeline(spec).pipe
    assert {type(p) for p in pipe.unet.attn_processors.values()} == {AttnProcessor2_0}
    assert speed.compiled_regions(pipe.unet) == 0 and pipe.unet.conv_in.weight.is_contiguous()
    assert _image(build_pipeline(spec)).tobytes() == reference.tobytes()  # deterministic: the reference holds


def test_eager_attention_equals_sdpa(model, reference):
    from diffusers.models.attention_processor import AttnProcessor

    assembled = build_pipeline(PipelineSpec(model=model, attention="eager"))
    assert {type(p) for p in assembled.pipe.unet.attn_processors.values()} == {AttnProcessor}
    # stated tolerance: 0.05 of a level (of 255) anywhere; the two differ only by float round-off
    assert np.abs(_image(assembled) - reference).max() < 0.05


def test_fused_qkv_equals_unfused_without_keeping_two_copies(model, reference):
    from diffusers.models.attention_processor import FusedAttnProcessor2_0

    assembled = build_pipeline(PipelineSpec(model=model, fuse_qkv=True))
    unet = assembled.pipe.unet
    assert {type(p) for p in unet.attn_processors.values()} == {FusedAttnProcessor2_0}
    names = set(unet.state_dict())
    assert any(n.endswith("attn1.to_qkv.weight") for n in names) and any(n.endswith("attn2.to_kv.weight")
                                                                        for n in names)
    assert not any(n.endswith(("attn1.to_q.weight", "attn1.to_k.weight", "attn2.to_k.weight")) for n in names)
    plain = build_pipeline(PipelineSpec(model=model)).pipe.unet
    # diffusers alone keeps to_q/to_k/to_v beside to_qkv; the replaced layers hold nothing: same parameter count
    assert sum(p.numel() for p in unet.parameters()) == sum(p.numel() for p in plain.parameters())
    assert any("fused QKV" in n for n in assembled.notes)
    # stated tolerance: 0.05 of a level anywhere (one matmul instead of three: float round-off only)
    assert np.abs(_image(assembled) - reference).max() < 0.05


def test_fused_qkv_keeps_the_lora(model, reference, lora_dir):
    """A LoRA on to_q/to_k/to_v would not reach to_qkv: it is fused into the weights first."""
    lora = (LoraSpec(str(lora_dir), 1.0),)
    unfused = _image(build_pipeline(PipelineSpec(model=model, loras=lora)))
    fused = build_pipeline(PipelineSpec(model=model, loras=lora, fuse_qkv=True))
    assert any("fused 1 LoRA(s) before fusing QKV" in n for n in fused.notes)
    assert np.abs(unfused - reference).mean() > 1.0  # the LoRA shows
    assert np.abs(_image(fused) - unfused).max() < 0.05  # and survives fusing, within round-off


def test_channels_last_equals_contiguous(model, reference):
    assembled = build_pipeline(PipelineSpec(model=model, channels_last=True))
    weight = assembled.pipe.unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert assembled.pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    # stated tolerance: 0.05 of a level anywhere (another convolution kernel order)
    assert np.abs(_image(assembled) - reference).max() < 0.05


def test_vae_in_bf16_decodes_a_fp32_pipeline_close_to_fp32(model, reference):
    assembled = build_pipeline(PipelineSpec(model=model, vae_dtype="bf16"))
    assert assembled.pipe.vae.dtype == torch.bfloat16 and assembled.pipe.unet.dtype == torch.float32
    assert any("VAE decodes in bf16" in n for n in assembled.notes)
    diff = np.abs(_image(assembled) - reference)
    # stated tolerance: bf16 keeps 8 bits of mantissa: mean under 1.5 levels, max under 12
    assert diff.mean() < 1.5 and diff.max() < 12


def test_vae_fp16_needs_the_fp16_fix_vae():
    """An SDXL VAE with force_upcast (it overflows in fp16) is refused in fp16; one that says it does not need
    the upcast (the fp16-fix VAE's config) is accepted."""
    from diffusers import AutoencoderKL

    class Pipe:
        vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4, force_upcast=True)

    for pipeline_dtype in ("fp16", "bf16"):  # in an fp16 pipeline diffusers would upcast it: refused too
        with pytest.raises(speed.SpeedError, match="fp16-fix VAE.*madebyollin/sdxl-vae-fp16-fix"):
            speed.set_vae_dtype(Pipe, "fp16", pipeline_dtype)
    assert Pipe.vae.dtype == torch.float32
    Pipe.vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4, force_upcast=False)
    assert "fp16" in speed.set_vae_dtype(Pipe, "fp16", "fp32") and Pipe.vae.dtype == torch.float16


def test_regionally_compiled_unet_equals_eager(model, reference, monkeypatch):
    monkeypatch.setattr(pipeline, "COMPILE_BACKEND", "aot_eager")
    assembled = build_pipeline(PipelineSpec(model=model, compile="regional"))
    unet = assembled.pipe.unet
    blocks = [m for m in unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    # each repeated transformer block wrapped, the UNet itself not
    assert blocks and all(b._compiled_call_impl is not None for b in blocks)
    assert unet._compiled_call_impl is None and speed.compiled_regions(unet) == len(blocks)
    assert any("compile_cache" in n for n in assembled.notes)
    torch._dynamo.reset()
    # stated tolerance: 0.05 of a level anywhere (aot_eager runs the captured graphs with eager kernels)
    assert np.abs(_image(assembled) - reference).max() < 0.05


def test_full_compile_wraps_the_whole_unet(model, monkeypatch):
    """Wrapping only: capturing the whole tiny UNet costs ~45 s on this CPU; the GPU bench runs it."""
    monkeypatch.setattr(pipeline, "COMPILE_BACKEND", "aot_eager")
    unet = build_pipeline(PipelineSpec(model=model, compile="full")).pipe.unet
    assert unet._compiled_call_impl is not None and speed.compiled_regions(unet) == 1


@pytest.mark.parametrize("mode, mean_tol", [("torchao-int8", 3.0), ("torchao-int8-dynamic", 3.0)])
def test_torchao_int8_is_close_to_fp32(model, reference, mode, mean_tol):
    from torch import nn

    assembled = build_pipeline(PipelineSpec(model=model, quantization=mode))
    for part in ("unet", "text_encoder", "text_encoder_2"):
        linears = [m for m in getattr(assembled.pipe, part).modules() if isinstance(m, nn.Linear)]
        # torchao swaps each Linear's weight for its quantized tensor subclass (int8 data + scales)
        assert linears and all(type(m.weight) is not nn.Parameter and "Int8" in type(m.weight).__name__
                               for m in linears), part
    assert not any(type(m.weight) is not nn.Parameter for m in assembled.pipe.vae.modules()
                   if isinstance(m, nn.Linear))  # the VAE stays as it was
    # stated tolerance, as for optimum-quanto's INT8: mean absolute difference under 3 of 255 levels
    assert np.abs(_image(assembled) - reference).mean() < mean_tol


def test_everything_together_with_a_compiled_torchao_unet(model, reference, monkeypatch):
    """The bench's fastest candidate: fused QKV + dynamic int8 + channels_last + regional compile."""
    monkeypatch.setattr(pipeline, "COMPILE_BACKEND", "aot_eager")
    spec = PipelineSpec(model=model, quantization="torchao-int8-dynamic", fuse_qkv=True, channels_last=True,
                        compile="regional")
    diff = np.abs(_image(build_pipeline(spec)) - reference)
    torch._dynamo.reset()
    assert diff.mean() < 3.0


@pytest.mark.parametrize("kw, message", [
    (dict(quantization="torchao-fp8-dynamic"), "needs a CUDA GPU"),
    (dict(quantization="torchao-int8", cpu_offload=True, device="cuda"), "cannot be combined with CPU offload"),
    (dict(fuse_qkv=True, attention="eager"), "fuse_qkv runs the fused projections with SDPA"),
    (dict(vae_dtype="fp16"), "vae_dtype 'fp16' is not supported on the CPU"),
    (dict(compile="max"), "compile 'max' is not one of off, regional, full"),
    (dict(attention="flash"), "attention 'flash' is not one of sdpa, eager"),
    (dict(vae_dtype="fp8"), "vae_dtype 'fp8' is not one of"),
])
def test_combinations_that_cannot_work_are_refused(kw, message):
    with pytest.raises(GenerationError, match=message):
        check_spec(PipelineSpec(model="x/y", **kw))


def test_fp8_is_refused_off_a_capable_gpu():
    ok, why = speed.fp8_supported("cpu")
    assert not ok and "compute capability 8.9+" in why


def test_quanto_int8_with_fused_qkv_is_cached_and_reloads_exactly(model, workspace):
    spec = PipelineSpec(model=model, quantization="int8", fuse_qkv=True)
    first, second = build_pipeline(spec), build_pipeline(spec)
    assert not first.quantized_from_cache and second.quantized_from_cache
    a, b = first.pipe.unet.state_dict(), second.pipe.unet.state_dict()
    assert any(n.endswith("attn1.to_qkv.weight._data") for n in b)
    assert not any(n.endswith("attn1.to_q.weight._data") for n in b)  # the fused-away layers hold nothing
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_compile_cache_goes_to_the_workspace_unless_the_user_chose_one(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what torch sets when nobody chose
    assert speed.use_compile_cache(tmp_path / "cc") == str(tmp_path / "cc")
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cc") and (tmp_path / "cc").is_dir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert speed.use_compile_cache(tmp_path / "cc") == str(tmp_path / "mine")


def test_the_speed_module_imports_light():
    """The GPU bench imports it on a machine without the app's dependencies: no torch, settings or database."""
    code = ("import sys, workbench.generate.speed; "
            "print(sorted(m for m in ('torch', 'pydantic', 'pydantic_settings', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_measured_table_says_not_measured_until_a_gpu_run_fills_it():
    assert speed.measured()["rows"] == {}  # the shipped table: nothing invented
    assert "not measured on a GPU yet" in speed.describe_measured("bf16", "none")
    table = {"device": "GPU X", "rows": {"bf16-b1": {"dtype": "bf16", "quantization": "none", "compile": False,
                                                      "fuse_qkv": False, "batch": 1, "s_per_image": 2.5,
                                                      "peak_GiB": 9.0}}}  # a made-up table for the reader only
    assert speed.measured_row("bf16", "none", table=table)[0] == "bf16-b1"
    assert speed.describe_measured("bf16", "none", table=table) == (
        "measured on GPU X: 2.50 s/image at 1024², 30 steps, peak 9.0 GiB (bf16-b1)")
    assert "was not measured on GPU X" in speed.describe_measured("bf16", "int8", table=table)
    assert speed.measured_row("bf16", "none", batch=4, table=table) is None


def test_cli_passes_the_speed_options(model, workspace):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.generate.sample import read_png_metadata

    runner = CliRunner()
    refused = runner.invoke(app, ["generate", "run", "--prompt", "x", "--model", model, "--device", "cpu",
                                  "--fuse-qkv", "--attention", "eager"])
    assert refused.exit_code == 2 and "fuse_qkv runs the fused projections with SDPA" in refused.output
    ok = runner.invoke(app, ["generate", "run", "--prompt", "a navy hoodie", "--model", model, "--device", "cpu",
                             "--steps", "1", "--size", "64", "--fuse-qkv", "--channels-last", "--vae-dtype", "bf16",
                             "--quantization", "torchao-int8"])
    assert ok.exit_code == 0, ok.output
    path = next(line.split(": ", 1)[1] for line in ok.output.splitlines() if line.startswith("seed "))
    assert read_png_metadata(__import__("pathlib").Path(path)).provenance["quantization"] == "torchao-int8"


def test_generate_page_says_the_gpu_speed_is_not_measured_yet(model, workspace, monkeypatch):
    from pathlib import Path

    from helpers.review import make_users, page_as
    from workbench import auth
    from workbench.settings import reload_settings

    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    make_users()
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", model)
    reload_settings()
    at = page_as(str(Path(__file__).resolve().parents[1] / "pages" / "4_Generate.py"), timeout=120).run()
    assert not at.exception
    assert any("GPU speed and peak memory: not measured on a GPU yet" in c.value for c in at.caption)
