"""The ``generate`` job config has one owner: ``BatchConfig`` (from_dict refuses unknown keys and reads every config
older code stored), ``PipelineSpec.from_dict``, and one ``PATH:SCALE`` parser for the page and the CLI."""
import pytest

from workbench.generate.batch import BatchConfig, BatchPrompt
from workbench.generate.pipeline import GenerationError, LoraSpec, PipelineSpec, parse_lora_arg

# What the five callers wrote before BatchConfig (the page, the CLI, review feedback, prompt suites, the demo).
OLD_CONFIGS = [
    {"spec": {"model": "m", "vae": None, "loras": [{"path": "/l", "scale": 0.8, "name": ""}], "scheduler": "euler",
              "dtype": "fp32", "quantization": "none", "device": "cpu", "cpu_offload": False, "vae_tiling": False},
     "prompt_batch_id": 3, "batch": "prompts-3", "params": {"width": 64, "height": 64, "steps": 2}},
    {"spec": {"model": "m", "device": "cpu", "loras": []}, "prompt_batch_id": 3, "batch": "prompts-3",
     "params": {"width": 64, "height": 64, "steps": 2, "seed": 0, "num_images": 1},
     "gate": {"threshold": 0.25, "max_attempts": 3}},
    {"spec": {"model": "m", "vae": None, "scheduler": "euler", "dtype": "fp32", "quantization": "int8", "device": "cpu",
              "loras": [{"path": "/l", "scale": 0.8, "name": "nw"}]},
     "prompts": [{"text": "a tee", "negative": "blurry", "prompt_id": 4, "brand": "northwind"}],
     "params": {"width": 32, "height": 32, "steps": 4, "guidance": 5.0, "seed": 8, "num_images": 1},
     "batch": "ss26-r3", "replaces": 12, "gate": {"threshold": 0.25, "scorer": "clip"}},
    {"spec": {"model": "m", "device": "cpu", "loras": [{"path": "/runs/3/checkpoint-10", "scale": 1.0}]},
     "prompts": [{"text": "a tee"}], "batch": "suite-x-base",
     "params": {"width": 64, "height": 64, "steps": 2, "seed": 7, "num_images": 2}},
    {"spec": {"model": "m"}, "prompts": [{"text": "a tee"}], "num_processes": 2},
]


@pytest.mark.parametrize("old", OLD_CONFIGS)
def test_every_config_older_code_stored_reads_back_and_round_trips(old):
    cfg = BatchConfig.from_dict(old)
    assert BatchConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.spec.model == "m" and (cfg.prompts or cfg.prompt_batch_id)


def test_fields_and_defaults():
    cfg = BatchConfig.from_dict(OLD_CONFIGS[2])
    assert cfg.prompts == (BatchPrompt("a tee", "blurry", 4, "northwind"),)
    assert cfg.spec.loras == (LoraSpec("/l", 0.8, "nw"),) and cfg.spec.quantization == "int8"
    assert (cfg.batch, cfg.replaces, cfg.gate, cfg.num_processes) == ("ss26-r3", 12, OLD_CONFIGS[2]["gate"], 1)
    bare = BatchConfig.from_dict({"spec": {"model": "m"}, "prompts": [{"text": "x"}]})
    assert (bare.batch, bare.replaces, bare.gate, bare.params) == (None, None, None, {})
    assert bare.to_dict() == {"spec": PipelineSpec("m").to_dict(), "params": {},
                              "prompts": [{"text": "x", "negative": "", "prompt_id": None, "brand": ""}]}


@pytest.mark.parametrize("bad, named", [
    ({"spec": {"model": "m"}, "prompts": [{"text": "x"}], "prompt": "typo"}, "unknown batch setting.*prompt"),
    ({"spec": {"model": "m", "schedular": "euler"}}, "unknown pipeline setting.*schedular"),
    ({"spec": {"model": "m", "loras": [{"path": "/l", "weight": 1}]}}, "LoRA '/l': unknown key.*weight"),
    ({"spec": {"model": "m"}, "prompts": [{"text": "x", "negativ": ""}]}, "prompt 'x': unknown key.*negativ"),
    ({"spec": {"model": "m"}, "params": {"stepz": 3}}, "unknown generation setting.*stepz"),
    ({"spec": {"model": "m"}, "gate": {"treshold": 0.3}}, "gate: unknown key.*treshold"),
    ({"prompts": [{"text": "x"}]}, "no spec"),
])
def test_unknown_keys_are_an_error_naming_the_key(bad, named):
    with pytest.raises(GenerationError, match=named):
        BatchConfig.from_dict(bad)


def test_lora_names_are_written_only_when_set():
    spec = PipelineSpec("m", loras=(LoraSpec("/a", 0.5), LoraSpec("/b", 1.0, "b")))
    assert spec.to_dict()["loras"] == [{"path": "/a", "scale": 0.5}, {"path": "/b", "scale": 1.0, "name": "b"}]
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def test_parse_lora_arg_takes_path_or_path_scale_and_names_a_bad_scale():
    assert parse_lora_arg("runs/3/lora") == LoraSpec("runs/3/lora", 1.0)
    assert parse_lora_arg("runs/3/lora:0.8") == LoraSpec("runs/3/lora", 0.8)
    assert parse_lora_arg("runs/3/lora:-0.5") == LoraSpec("runs/3/lora", -0.5)
    assert parse_lora_arg("runs/3/lora:") == LoraSpec("runs/3/lora", 1.0)
    with pytest.raises(GenerationError, match="'runs/3/lora:big'.*scale 'big' is not a number"):
        parse_lora_arg("runs/3/lora:big")
