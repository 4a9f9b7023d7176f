"""Hostile training inputs (issue #17, item 1): pickles that create a marker file when unpickled, and checkpoint
folders that carry them. Importable by any test (and by the shared hostile-input corpus)::

    from hostile.train import crafted_pickle, plant_pickles, hostile_checkpoint

A test plants them, runs the code under test, and asserts the marker file does not exist: nothing was unpickled.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

# The files accelerate's save_state writes (and its load_state reads with pickle): what an attacker would replace.
PICKLE_NAMES = ("custom_checkpoint_0.pkl", "random_states_0.pkl", "random_states_1.pkl", "optimizer.bin",
                "scheduler.bin", "scaler.pt")


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears. (A real attack would call os.system.)"""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_pickle(path: str | Path, marker: str | Path) -> Path:
    """Write a file that creates ``marker`` when loaded with pickle or ``torch.load(weights_only=False)``: a torch
    zip archive (what torch.save writes) holding the payload. ``weights_only=True`` refuses it."""
    import torch

    path = Path(path)
    torch.save({"state": _Payload(Path(marker))}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return path


def plant_pickles(folder: str | Path, marker: str | Path, names=PICKLE_NAMES) -> list[Path]:
    """Overwrite (or add) every pickle file accelerate would read in ``folder`` with a crafted one."""
    return [crafted_pickle(Path(folder) / name, marker) for name in names]


def hostile_checkpoint(folder: str | Path, marker: str | Path, step: int = 1) -> Path:
    """A folder that passes for a checkpoint (trainer_state.json) and holds only crafted pickles."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(json.dumps({"step": step, "loss": 0.1}))
    plant_pickles(folder, marker)
    return folder
