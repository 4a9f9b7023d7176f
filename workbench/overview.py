"""What the Home page and `workbench info` show: workspace counts and what this machine can do.

Kept free of heavy imports (no torch): versions come from package metadata and the GPU from nvidia-smi, so the
Home page loads fast on a cold start.

Home needs no sign-in: what it shows to anyone but an admin is ``report.for_visitor()`` (counts, devices and which
capabilities work, no paths, database address or package versions: a map for an attacker) and tables passed
through ``redact_paths``.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace

from sqlalchemy import inspect, text

from workbench.db import init_db
from workbench.settings import Settings, get_settings

# label -> (table it needs, query). A capability whose table does not exist yet counts as None ("not set up").
# What waits in the trash (workbench.trash) is not counted.
_TRASHED = "(SELECT key FROM trash WHERE kind = '{}' AND status = 'deleted')"
COUNTS: dict[str, tuple[str, str]] = {
    "datasets": ("datasets", "SELECT COUNT(*) FROM datasets WHERE CAST(id AS VARCHAR(200)) NOT IN "
                 + _TRASHED.format("dataset")),
    "training runs": ("jobs", "SELECT COUNT(*) FROM jobs WHERE kind LIKE 'train%' AND CAST(id AS VARCHAR(200)) NOT IN "
                      + _TRASHED.format("run")),
    "generated images": ("generations", "SELECT COUNT(*) FROM generations WHERE batch NOT IN "
                         + _TRASHED.format("batch")),
    "pending reviews": ("generations", "SELECT COUNT(*) FROM generations WHERE review_status = 'pending' "
                        "AND batch NOT IN " + _TRASHED.format("batch")),
}

PACKAGES = ("streamlit", "diffusers", "transformers", "peft", "accelerate", "optimum-quanto", "bitsandbytes",
            "open_clip_torch", "torchmetrics")


def workspace_counts(settings: Settings | None = None) -> dict[str, int | None]:
    engine = init_db(settings)
    tables = set(inspect(engine).get_table_names())
    counts: dict[str, int | None] = {}
    with engine.connect() as conn:
        for label, (table, query) in COUNTS.items():
            counts[label] = int(conn.execute(text(query)).scalar_one()) if table in tables else None
    return counts


@dataclass
class GPU:
    name: str
    memory_gib: float


@dataclass
class CapabilityReport:
    workspace: str
    database: str
    torch_version: str
    gpus: list[GPU]
    packages: dict[str, str]
    ocr_backends: dict[str, str] = field(default_factory=dict)

    def for_visitor(self) -> CapabilityReport:
        """What anyone may see: no workspace path, database address or versions; OCR states without remedies (they
        name folders). The torch version becomes "installed" / "not installed"."""
        return replace(self, workspace="", database="", packages={},
                       torch_version="not installed" if self.torch_version == "not installed" else "installed",
                       ocr_backends={k: v.partition(":")[0] for k, v in self.ocr_backends.items()})

    @property
    def device(self) -> str:
        if not self.gpus:
            return "CPU only (no NVIDIA GPU found): training and full-size generation need a CUDA GPU"
        return "; ".join(f"{g.name} ({g.memory_gib:.0f} GiB)" for g in self.gpus)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def detect_gpus() -> list[GPU]:
    """NVIDIA GPUs via nvidia-smi (no torch import). Empty when there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, _, mem = line.rpartition(",")
        try:
            gpus.append(GPU(name.strip(), float(mem) / 1024))
        except ValueError:
            continue
    return gpus


def ocr_backends() -> dict[str, str]:
    """Which OCR engines can run here and what each needs."""
    found = {}
    found["rapidocr"] = ("available (ships its models)" if importlib.util.find_spec("rapidocr")
                         else "not installed: pip install rapidocr onnxruntime")
    if importlib.util.find_spec("easyocr") is None:
        found["easyocr"] = "not installed: pip install easyocr"
    else:
        from workbench.models.sources import availability

        a = availability("easyocr:en")
        found["easyocr"] = "available" if a.status == "available" else f"{a.status}: {a.remedy}"
    return found


# An absolute path: a slash not inside a word or a URL (``https://…``, ``a/b``), up to white space or a quote.
_PATH = re.compile(r"(?<![\w:/.~-])(?:~|/)[^\s`'\"),]+")


def redact_paths(text: str) -> str:
    """``text`` with every absolute path replaced by "(a folder on the server)", for visitors who are not admins."""
    return _PATH.sub("(a folder on the server)", text)


def capability_report(settings: Settings | None = None) -> CapabilityReport:
    from sqlalchemy.engine import make_url

    settings = settings or get_settings()
    db = (make_url(settings.db_url).render_as_string(hide_password=True) if settings.database_url
          else f"SQLite (WAL) {settings.path('workbench.db')}")
    return CapabilityReport(
        workspace=str(settings.workspace_dir),
        database=db,
        torch_version=_version("torch"),
        gpus=detect_gpus(),
        packages={p: _version(p) for p in PACKAGES},
        ocr_backends=ocr_backends(),
    )
