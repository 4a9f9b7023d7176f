"""What the GPU benches record about the machine they ran on (shared by bench/generate_sdxl.py and
bench/train_sdxl_lora.py, which run as scripts with bench/ on sys.path)."""
from __future__ import annotations

import subprocess


def driver_version() -> str:
    """The NVIDIA driver's version from nvidia-smi, or "" where there is none."""
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
