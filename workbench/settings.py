"""One Settings object for the whole workbench.

Sources, highest priority first: keyword arguments, environment variables (prefix ``WORKBENCH_``, nested fields with
``__``, e.g. ``WORKBENCH_MODELS__SDXL_BASE``), a TOML file (``workbench.toml`` in the working directory, or the path in
``WORKBENCH_CONFIG``), the workspace's own ``<workspace>/workbench.toml`` (written by ``workbench demo`` to point the
models at the demo kit), then the defaults below. Unknown keys in the TOML files are an error, not ignored.

    from workbench.settings import get_settings
    s = get_settings()
    s.workspace, s.database_url, s.models.sdxl_base
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class ModelRefs(BaseModel):
    """Which model each capability uses. A reference is a hub id (``org/name`` or ``org/name@revision``), a local
    diffusers/transformers folder, a single ``.safetensors`` file, or one of the ``scheme:name`` forms for assets that
    do not live on the hub (``torchvision:alexnet``, ``torch-fidelity:inception-v3-compat``, ``rapidocr``,
    ``easyocr:en``)."""

    model_config = ConfigDict(extra="forbid")

    # Generation and training
    sdxl_base: str = "stabilityai/stable-diffusion-xl-base-1.0"
    vae: str = "madebyollin/sdxl-vae-fp16-fix"  # the fp16-safe VAE: the stock SDXL VAE overflows to NaN in fp16
    # Scoring and captioning
    clip_scorer: str = "laion/CLIP-ViT-L-14-laion2B-s32B-b82K"  # open_clip hub model (open_clip_config.json)
    blip_itm: str = "Salesforce/blip-itm-large-coco"  # BlipForImageTextRetrieval: image-text matching probability
    blip_captioner: str = "Salesforce/blip-image-captioning-large"
    # Metrics
    fid_inception: str = "torch-fidelity:inception-v3-compat"  # the weights FID was defined with
    lpips_backbone: str = "torchvision:alexnet"
    preference: str = "yuvalkirstain/PickScore_v1"  # optional PickScore (CLIPModel + processor)
    # Product fidelity (workbench.fidelity) and FD-DINOv2
    dinov2: str = "facebook/dinov2-base"  # Dinov2Model: DINO similarity of garment crops, FD-DINOv2 features
    segmenter: str = "mattmdjaga/segformer_b2_clothes"  # garment masks where matting fails (SegFormer, no repo code)
    # Spin videos (image to video): Stable Video Diffusion XT, 25 frames at 1024x576 (workbench.generate.video)
    video: str = "stabilityai/stable-video-diffusion-img2vid-xt"
    # Product scenes (workbench.generate.scenes)
    cutout: str = "ZhengPeng7/BiRefNet"  # dichotomous cut-outs; its architecture is repo code: run only when trusted
    ip_adapter: str = "h94/IP-Adapter"  # sdxl_models/ip-adapter_sdxl.safetensors + sdxl_models/image_encoder
    # Logo legibility
    ocr_backend: str = "rapidocr"  # ships its ONNX models, works offline; "easyocr:en" needs `workbench models pull`


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    # Where a team's work lives: database, datasets, runs, generations, exports.
    workspace: Path = Path("workspace")
    # Any SQLAlchemy URL; empty means a SQLite file inside the workspace (WAL mode).
    database_url: str | None = None
    # When set, jobs go through Redis (several GPU machines can share one queue); otherwise SQLite in the workspace.
    redis_url: str | None = None
    # "auto" picks cuda when present, else cpu.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Processes `accelerate launch` starts for training (one per GPU).
    num_processes: int = Field(default=1, ge=1)
    # Seconds a stopping job gets between SIGTERM and SIGKILL.
    stop_grace_seconds: float = Field(default=20.0, gt=0)
    # How often a job consumer looks for running jobs of its machine whose process is gone (and fails them).
    reconcile_seconds: float = Field(default=30.0, gt=0)
    # Every job consumer and every running job's process writes a heartbeat this often. A running job on another
    # machine whose heartbeat stays unchanged for 3 intervals is marked failed by any other consumer (so within
    # 4 intervals of its machine dying); a silent consumer is marked lost (workbench.jobs.heartbeat).
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # Whether this machine's consumer takes jobs that require a GPU (training and generation on CUDA); unset: when
    # a CUDA device is present. A consumer without one never takes them (they wait on their own queue).
    worker_gpu: bool | None = None
    # Job kinds only consumers with a GPU take, whatever the queueing machine's device (a team whose app server has
    # no GPU: ["train_lora", "generate"]). Training queued where device = "cuda", and generation whose pipeline
    # asks for a CUDA device, require one anyway.
    gpu_job_kinds: list[str] = Field(default_factory=list)
    # A local consumer started automatically by queueing a job exits after this many seconds without a job (0: it
    # never does); one started as a service (`workbench worker`) keeps running.
    worker_idle_exit_seconds: float = Field(default=600.0, ge=0)
    # Queueing a job starts a local job consumer when none is alive. Turn off where consumers run as services
    # (`workbench worker` on each GPU machine), or in tests that only look at the queued row.
    auto_worker: bool = True
    # Start model jobs as forks of a process with torch/diffusers already imported (about 1 s instead of ~20 s to
    # the first step). "auto": on machines without a CUDA device (see workbench.jobs.spawn).
    jobs_preload: Literal["auto", "on", "off"] = "auto"
    # Who the CLI acts as once the workspace has real accounts (workbench.auth.operator): an account's name (also
    # `workbench --as NAME`), else the OS login when an account has that name. `cli_as_system`: operator scripts act
    # as ``cli:<login>`` with the role each command needs, whatever accounts exist.
    cli_user: str | None = None
    cli_as_system: bool = False
    models: ModelRefs = Field(default_factory=ModelRefs)
    # A browser sign-in (a session cookie, workbench.auth.sessions) ends after this many hours without a page run,
    # and after session_max_days however busy; signing out ends it at once, in every tab.
    session_idle_hours: float = Field(default=8.0, gt=0)
    session_max_days: float = Field(default=7.0, gt=0)
    # A deleted dataset, training run or generation batch waits in the trash this many hours (its rows hidden, its
    # files under workspace/trash/) and can be restored; then a purge removes it for good (workbench.trash).
    trash_undo_hours: float = Field(default=24.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("WORKBENCH_CONFIG", "workbench.toml"))
        sources = [init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path)]
        workspace_toml = workspace_settings_file(toml_path)
        if workspace_toml.resolve() != toml_path.resolve():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=workspace_toml))
        return tuple(sources)

    # -- derived paths -------------------------------------------------------------------------------------------
    @property
    def workspace_dir(self) -> Path:
        return self.workspace.expanduser().resolve()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace_dir / 'workbench.db'}"

    def path(self, *parts: str) -> Path:
        """A folder or file inside the workspace, e.g. ``settings.path("runs", "12")``."""
        return self.workspace_dir.joinpath(*parts)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch  # deferred: torch is slow to import and pages must stay light

        return "cuda" if torch.cuda.is_available() else "cpu"


def workspace_settings_file(toml_path: Path | None = None) -> Path:
    """``<workspace>/workbench.toml``; the workspace is found the way Settings finds it (env, then the TOML file)."""
    workspace = os.environ.get("WORKBENCH_WORKSPACE")
    if not workspace:
        toml_path = toml_path or Path(os.environ.get("WORKBENCH_CONFIG", "workbench.toml"))
        workspace = "workspace"
        if toml_path.is_file():
            import tomllib

            with toml_path.open("rb") as f:
                workspace = str(tomllib.load(f).get("workspace", workspace))
    return Path(workspace).expanduser() / "workbench.toml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (after the environment or workbench.toml changed) and read them again."""
    get_settings.cache_clear()
    return get_settings()
