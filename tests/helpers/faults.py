"""Fault injection for tests/test_faults*.py: a seeded random point to kill at, and a child process that SIGKILLs
itself there.

A fault test picks where to strike with ``rng = fault_rng("import")``: the seed is ``FAULTS_SEED`` when set
(to replay a failure), else a fresh one; it is printed (pytest shows it with a failure) and put in the test's
messages, so any run can be repeated exactly.

``run_killed(code, patch="module:attr", nth=k)`` runs ``code`` in a fresh Python process (the test's environment:
workspace, database URL) after wrapping ``module.attr`` so that its ``nth`` call SIGKILLs the process: before the
call runs (``when="before"``) or right after it returned (``"after"``). No handler, ``finally`` or atexit runs, as
with a power cut or the OOM killer. Returns the finished process (its returncode is -9 when the kill happened).
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

SEED_ENV = "FAULTS_SEED"  # not WORKBENCH_*: tests/conftest.py clears those

_PATCH = '''
import importlib, os, signal
def _arm(target, nth, when):
    module_name, attr = target.split(":")
    owner = importlib.import_module(module_name)
    for part in attr.split(".")[:-1]:
        owner = getattr(owner, part)
    name = attr.split(".")[-1]
    real, calls = getattr(owner, name), [0]
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = real(*args, **kwargs)
        if calls[0] == nth and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    setattr(owner, name, wrapped)
'''


def fault_seed() -> int:
    value = os.environ.get(SEED_ENV)
    return int(value) if value else random.SystemRandom().randrange(1, 2**31)


def fault_rng(what: str) -> tuple[random.Random, int]:
    """A seeded random generator for one test's kill points, and its seed (printed)."""
    seed = fault_seed()
    print(f"[faults] {what}: seed {seed} (replay with {SEED_ENV}={seed})", flush=True)
    return random.Random(seed), seed


def run_killed(code: str, patches: list[tuple[str, int, str]] | None = None, timeout: float = 120,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new process with each ``(target, nth, when)`` in ``patches`` armed to SIGKILL it."""
    arms = "".join(f"_arm({t!r}, {n}, {w!r})\n" for t, n, w in patches or [])
    script = _PATCH + arms + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def mount_small_disk(path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` (e.g. "128k") on ``path`` (created): a small disk that fills up. Returns None, or
    why it cannot be done here (not root, or no CAP_SYS_ADMIN, as in some containers)."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting a tmpfs needs root (and CAP_SYS_ADMIN)"
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"


def grow_small_disk(path, size: str) -> None:
    """Give the mounted tmpfs more room (its files stay): the operator freed space."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def unmount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def noise_png(path, side: int = 128, seed: int = 0):
    """A PNG of random pixels (it does not compress: ~3 x side² bytes), to fill a small disk quickly."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, format="PNG")
    return path
