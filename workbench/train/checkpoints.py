"""Training checkpoints without pickle: where they live, which one a run may resume from, saving and loading them.

A checkpoint is ``<run folder>/checkpoints/checkpoint-<step>/``::

    lora_<model>.safetensors           the LoRA tensors in peft's naming (what resume loads)
    pytorch_lora_weights.safetensors   the same LoRA in diffusers' format (usable from the Generate page)
    optimizer.safetensors + .json      the optimizer state: tensors, and the structure around them as JSON
    scheduler.json                     the learning-rate scheduler state
    scaler.json                        the fp16 gradient scaler state (fp16 on a GPU only)
    trainer_state.json                 step, loss, format, and the sha256 of every file above

Nothing here is ever unpickled. accelerate's ``save_state``/``load_state`` are not used: ``load_state`` reads a
registered object's ``custom_checkpoint_<i>.pkl`` with ``weights_only=False``, so a planted file ran code (issue #17).
RNG states are not saved: the script reseeds every generator from (seed, step, rank) at each step, so a resumed run is
exact without them. A pickle an attacker drops into a checkpoint folder is simply never opened.

Only a checkpoint of the run's own folder is resumed (``resolve_checkpoint``; symlinks resolved); the sha256 manifest
catches a changed or truncated file. It is an integrity check, not a signature: whoever can write the workspace can
rewrite the manifest too, but still cannot make the loader run code.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from workbench.files import write_json_atomic
from workbench.train import progress as progress_mod
from workbench.train.config import ConfigError

FORMAT = 2  # 1 (implicit): accelerate's save_state with pickles, no longer loaded
STATE_FILE = "trainer_state.json"
NAME = re.compile(r"checkpoint-(\d+)")


# -- which checkpoint -----------------------------------------------------------------------------------------------

def checkpoint_root(run_folder: Path) -> Path:
    return Path(run_folder) / "checkpoints"


def list_checkpoints(run_folder: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first. A symlink, or a folder that resolves elsewhere, is not one."""
    root = checkpoint_root(run_folder)
    if not root.is_dir():
        return []
    real_root = root.resolve()
    done = [p for p in root.iterdir() if NAME.fullmatch(p.name) and not p.is_symlink()
            and p.resolve().parent == real_root and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def discard_checkpoints_after(run_folder: Path, step: int) -> list[Path]:
    """Remove the checkpoints saved after ``step`` (and half-written ones): a run restarting at ``step`` would
    otherwise leave a later checkpoint of an abandoned branch for "latest" to pick. Returns the removed folders."""
    root = checkpoint_root(run_folder)
    gone = [p for p in list_checkpoints(run_folder) if int(p.name.split("-")[1]) > step]
    gone += [p for p in root.glob(".checkpoint-*.tmp")] if root.is_dir() else []
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return gone


def resolve_checkpoint(which: str, run_folders: Iterable[Path]) -> Path | None:
    """The checkpoint folder ``resume_from_checkpoint`` names, confined to the ``checkpoints/`` folder of one of
    ``run_folders`` (today: the run's own folder; a later caller may pass other runs the workbench launched).
    ``latest``: the newest checkpoint of the first folder, or None when it has none. ``checkpoint-<step>``: that
    checkpoint of the first folder. A path: allowed only when, with symlinks resolved, it is a checkpoint-<step>
    folder directly in one of their ``checkpoints/`` folders. Raises ConfigError naming the option otherwise."""
    folders = [Path(f) for f in run_folders]
    if which == "latest":
        found = list_checkpoints(folders[0]) if folders else []
        return found[-1] if found else None
    candidate = Path(which).expanduser()
    if folders and len(candidate.parts) == 1:
        candidate = checkpoint_root(folders[0]) / candidate
    real = candidate.resolve()
    allowed = [checkpoint_root(f).resolve() for f in folders]
    if not NAME.fullmatch(real.name) or real.parent not in allowed:
        where = " or ".join(str(checkpoint_root(f)) for f in folders) or "(a new run has none)"
        raise ConfigError(f"resume_from_checkpoint {which!r}: only a checkpoint of this run can be resumed from (a "
                          f"checkpoint-<step> folder in {where}; symlinks are resolved). Use 'latest', or continue "
                          "a stopped run with `workbench runs resume <run id>` / Resume on the Training page.")
    if not (real / STATE_FILE).is_file():
        raise ConfigError(f"resume_from_checkpoint {which!r} is not a checkpoint folder (no {STATE_FILE})")
    return real


# -- state dicts as JSON + safetensors --------------------------------------------------------------------------------

def _encode(obj: Any, tensors: dict[str, Any], where: str) -> Any:
    """A state dict as JSON: tensors go to ``tensors`` (saved as safetensors); tuples and non-string dict keys are
    tagged so they come back as they were. Anything else is an error, never a pickle."""
    import torch

    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, where) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors, where) for v in obj]
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, tensors, where), _encode(v, tensors, where)] for k, v in obj.items()]}
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} in a checkpoint (JSON and tensors only)")


def _decode(obj: Any, tensors: dict[str, Any], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"__tensor__"} and obj["__tensor__"] in tensors:
        return tensors[obj["__tensor__"]]
    if set(obj) == {"__tuple__"} and isinstance(obj["__tuple__"], list):
        return tuple(_decode(v, tensors, where) for v in obj["__tuple__"])
    if set(obj) == {"__dict__"} and isinstance(obj["__dict__"], list):
        return {_decode(k, tensors, where): _decode(v, tensors, where) for k, v in obj["__dict__"]}
    raise ConfigError(f"{where}: unexpected entry {json.dumps(obj)[:80]}; the checkpoint is damaged")


def _write_state(folder: Path, name: str, state: dict) -> list[str]:
    """``name``.json (+ ``name``.safetensors when the state holds tensors); returns the file names written."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    encoded = _encode(state, tensors, name)
    (folder / f"{name}.json").write_text(json.dumps(encoded))
    if not tensors:
        return [f"{name}.json"]
    save_file(tensors, str(folder / f"{name}.safetensors"))
    return [f"{name}.json", f"{name}.safetensors"]


def _read_state(folder: Path, name: str, files: dict[str, str]) -> dict:
    from safetensors.torch import load_file

    tensor_file = f"{name}.safetensors"
    tensors = load_file(str(folder / tensor_file)) if tensor_file in files else {}
    return _decode(json.loads((folder / f"{name}.json").read_text()), tensors, f"{folder.name}/{name}.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- save and load ----------------------------------------------------------------------------------------------------

def save_checkpoint(accelerator, out: Path, step: int, loss: float, cfg, *, optimizer, lr_scheduler,
                    lora_tensors: Callable[[], dict[str, dict]], save_lora: Callable[[Path], None]) -> Path:
    """The run's state into checkpoint-<step> (JSON and safetensors), written under a temporary name and renamed, so
    a crash never leaves a half checkpoint that "latest" would pick. Under data parallelism every rank holds the same
    LoRA, optimizer and scheduler state: the main process writes them."""
    from safetensors.torch import save_file

    final = checkpoint_root(out) / f"checkpoint-{step}"
    tmp = checkpoint_root(out) / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        old = list_checkpoints(out)
        if cfg.checkpoints_total_limit is not None:
            for path in old[:max(0, len(old) + 1 - cfg.checkpoints_total_limit)]:
                shutil.rmtree(path, ignore_errors=True)
                progress_mod.forget_checkpoint(path)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files = []
        for name, sd in lora_tensors().items():
            save_file({k: v.detach().cpu().contiguous() for k, v in sd.items()}, str(tmp / f"lora_{name}.safetensors"))
            files.append(f"lora_{name}.safetensors")
        save_lora(tmp)
        files += _write_state(tmp, "optimizer", optimizer.state_dict())
        files += _write_state(tmp, "scheduler", lr_scheduler.state_dict())
        if accelerator.scaler is not None:
            files += _write_state(tmp, "scaler", accelerator.scaler.state_dict())
        manifest = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json_atomic(tmp / STATE_FILE, {"step": step, "loss": loss, "format": FORMAT,
                                                   "state_files": files, "sha256": manifest})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    accelerator.wait_for_everyone()
    return final


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    """trainer_state.json of a checkpoint, checked: our format, and every file it lists unchanged (sha256)."""
    try:
        state = json.loads((ckpt / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint {ckpt}: {STATE_FILE} is unreadable ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"checkpoint {ckpt} was written by an earlier workbench version, whose checkpoints hold "
                          "pickle files; those are no longer loaded (unpickling can run code). Start the run again "
                          "(or a new run) instead of resuming it.")
    manifest = state.get("sha256")
    if not isinstance(manifest, dict) or not isinstance(state.get("step"), int):
        raise ConfigError(f"checkpoint {ckpt}: {STATE_FILE} lacks its step or file list; the checkpoint is damaged")
    for name, digest in manifest.items():
        path = ckpt / str(name)
        if ("/" in str(name) or str(name).startswith(".") or path.is_symlink() or not path.is_file()
                or _sha256(path) != digest):
            raise ConfigError(f"checkpoint {ckpt}: {name} is missing or changed since it was saved (sha256 differs); "
                              "resume from an earlier checkpoint (delete this one) or start the run again")
    return state


def load_checkpoint(ckpt: Path, state: dict[str, Any] | None = None, *, optimizer, lr_scheduler, scaler,
                    adapted: dict[str, Any], unwrap: Callable) -> dict[str, Any]:
    """Restore the LoRA, optimizer, scheduler (and fp16 scaler) from a checkpoint written by ``save_checkpoint``;
    returns its trainer state (step, loss; ``state``: what ``read_trainer_state`` returned already). Reads JSON and
    safetensors only."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = state or read_trainer_state(ckpt)
    files = state["sha256"]
    missing = {"optimizer.json", "scheduler.json"} - set(files)
    if missing:
        raise ConfigError(f"checkpoint {ckpt}: {', '.join(sorted(missing))} missing from {STATE_FILE}; the checkpoint "
                          "is damaged: resume from an earlier one or start the run again")
    for name, mod in adapted.items():
        if mod is None:
            continue
        if f"lora_{name}.safetensors" not in files:
            raise ConfigError(f"checkpoint {ckpt} has no LoRA for {name}: it was saved by a run with other options "
                              "(train_text_encoder?); resume with the run's own options")
        set_peft_model_state_dict(unwrap(mod), load_file(str(ckpt / f"lora_{name}.safetensors")),
                                  adapter_name="default")
    optimizer.load_state_dict(_read_state(ckpt, "optimizer", files))
    lr_scheduler.load_state_dict(_read_state(ckpt, "scheduler", files))
    if scaler is not None and "scaler.json" in files:
        scaler.load_state_dict(_read_state(ckpt, "scaler", files))
    return state
