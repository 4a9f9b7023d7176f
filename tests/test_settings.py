from pathlib import Path

import pytest
from pydantic import ValidationError

from workbench.settings import Settings, reload_settings


def test_defaults_point_at_the_workspace_and_sdxl(workspace):
    s = reload_settings()
    assert s.workspace_dir == workspace.resolve()
    assert s.db_url == f"sqlite:///{workspace.resolve() / 'workbench.db'}"
    assert s.redis_url is None
    assert s.models.sdxl_base == "stabilityai/stable-diffusion-xl-base-1.0"
    assert s.models.vae == "madebyollin/sdxl-vae-fp16-fix"


def test_environment_overrides_including_nested_model_refs(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", "postgresql+psycopg://u:p@db/workbench")
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    monkeypatch.setenv("WORKBENCH_MODELS__SDXL_BASE", str(tmp_path / "my-sdxl"))
    s = reload_settings()
    assert s.db_url == "postgresql+psycopg://u:p@db/workbench"
    assert s.resolved_device() == "cpu"
    assert s.models.sdxl_base == str(tmp_path / "my-sdxl")
    assert s.models.vae == "madebyollin/sdxl-vae-fp16-fix"  # untouched neighbours keep their defaults


def test_toml_file_is_read_and_env_wins_over_it(tmp_path, monkeypatch, workspace):
    (tmp_path / "workbench.toml").write_text(
        'workspace = "studio-ws"\nredis_url = "redis://localhost:6379/0"\n[models]\nclip_scorer = "org/clip"\n'
    )
    s = reload_settings()
    assert s.workspace_dir == workspace.resolve()  # WORKBENCH_WORKSPACE (set by the fixture) wins over the file
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.models.clip_scorer == "org/clip"
    monkeypatch.delenv("WORKBENCH_WORKSPACE")
    assert reload_settings().workspace == Path("studio-ws")


def test_config_path_from_env(tmp_path, monkeypatch):
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('num_processes = 4\n')
    monkeypatch.setenv("WORKBENCH_CONFIG", str(cfg))
    assert reload_settings().num_processes == 4


def test_unknown_key_in_toml_is_an_error_naming_it(tmp_path):
    (tmp_path / "workbench.toml").write_text('worksapce = "typo"\n')
    with pytest.raises(ValidationError, match="worksapce"):
        Settings()


def test_invalid_value_is_an_error_naming_the_field(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "tpu")
    with pytest.raises(ValidationError, match="device"):
        Settings()
