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
