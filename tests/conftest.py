"""Test set-up: offline, caches in a temp dir, one fresh workspace per test."""
import os
import tempfile

# Before anything imports huggingface_hub/torch: no network, no writes to the real home.
_HOME = tempfile.mkdtemp(prefix="workbench-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
for var in ("HOME", "XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME"):
    os.environ[var] = os.path.join(_HOME, var.lower())
    os.makedirs(os.environ[var], exist_ok=True)
os.environ.setdefault("OMP_NUM_THREADS", "2")
for var in list(os.environ):
    if var.startswith("WORKBENCH_"):
        del os.environ[var]

import pytest  # noqa: E402

from workbench import db  # noqa: E402
from workbench.settings import get_settings, reload_settings  # noqa: E402


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A fresh, empty workspace for every test (WORKBENCH_WORKSPACE), with settings and engines reset."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws))
    monkeypatch.setenv("WORKBENCH_STOP_GRACE_SECONDS", "1")
    monkeypatch.chdir(tmp_path)  # no stray workbench.toml from the repo
    db.reset_for_tests()
    reload_settings()
    yield ws
    db.reset_for_tests()
    get_settings.cache_clear()
