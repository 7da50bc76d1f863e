"""Checkpoint and model files: what they hold, and how they are written and read safely.

Every file here is written with ``torch.save`` through ``backend.files.atomic_write`` (temp file, fsync,
``os.replace``) and read with ``torch.load(path, weights_only=True)`` only: tensors, numbers, strings,
lists, tuples and dicts; no pickled code. A file that needs more is refused with ``UnsafeCheckpoint``.

The model file (``model.pt``: what predict, CAM, export and ``load_from`` read) — the contract
---------------------------------------------------------------------------------------------------
::

    {
        "format": "studio-model/1",
        "architecture": str,            # a catalog name: worker.zoo.build_model(architecture, ...)
        "task": str,                    # "classification"
        "class_names": list[str],       # output index i is class_names[i]; len() is num_classes
        "input_size": int,              # square side the model was trained at
        "normalize": {"mean": [r, g, b], "std": [r, g, b]},  # on 0..1 RGB, after resize
        "options": dict,                # catalog options, e.g. {"dropout": 0.0}
        "inference": dict,              # segmentation only: {mode, crop_size, stride, flip, scale}
        "state_dict": {str: Tensor},    # model.state_dict(), CPU tensors
    }

To rebuild it: ``m = build_model(f["architecture"], len(f["class_names"]), f["options"])`` then
``m.load_state_dict(f["state_dict"])``; ``load_model_file`` does the reading and the checks.
Eval preprocessing (``worker.data.eval_transform``): resize the short side to ``input_size / 0.875``,
centre-crop ``input_size``, scale to 0..1, normalise with ``normalize``.

The training checkpoint (``last.pt``, ``best.pt`` in the job's work folder) — for resume
--------------------------------------------------------------------------------------
::

    {
        "format": "studio-train/1",
        "model": state_dict, "optimizer": state_dict, "scheduler": state_dict | None,
        "scaler": state_dict | None,
        "epoch": int,        # epochs completed; training resumes at this epoch
        "iteration": int,    # batches completed, over all epochs: the metric step
        "best_score": float | None,
        "rng": {"python": {...}, "numpy": {...}, "torch": ByteTensor, "cuda": [ByteTensor, ...]},
        "extra": dict,       # JSON-able: metrics so far, and what the handler wants back
    }
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.files import atomic_write

MODEL_FORMAT = "studio-model/1"
TRAIN_FORMAT = "studio-train/1"


class UnsafeCheckpoint(ValueError):
    """A checkpoint that would run code (or is not a checkpoint at all) if loaded without weights_only."""


def save_file(path: Path, obj: Mapping[str, Any]) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (durably: checkpoints must survive a crash)."""
    atomic_write(path, lambda fh: torch.save(dict(obj), fh))


def load_file(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a studio file with ``weights_only=True``; ``UnsafeCheckpoint`` explains a refused file."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(Path(path).name, str(exc)) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnsafeCheckpoint(f"{Path(path).name}: not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise UnsafeCheckpoint(f"{Path(path).name}: a checkpoint is a dict, this file holds a {kind}")
    return obj


def _refusal(name: str, error: str) -> UnsafeCheckpoint:
    """Name what torch's weights-only unpickler stopped at: a Python global (code) or a corrupt stream."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    code = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln), None)
    if code is not None:
        return UnsafeCheckpoint(
            f"{name}: refused, it holds Python objects or code, not only weights ({code}); the studio "
            "loads checkpoints with torch.load(weights_only=True) only"
        )
    detail = next((ln for ln in reversed(lines) if not ln.startswith("Check the documentation")), "")
    return UnsafeCheckpoint(
        f"{name}: not a readable PyTorch checkpoint under torch.load(weights_only=True) ({detail})"
    )


# ---------------------------------------------------------------- RNG state as plain tensors and lists


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states in weights_only-loadable form."""
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": list(internal), "gauss": gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------- model files (the contract)


def model_file(
    *,
    state_dict: Mapping[str, torch.Tensor],
    architecture: str,
    task: str,
    class_names: list[str],
    input_size: int,
    mean: list[float] | tuple[float, ...],
    std: list[float] | tuple[float, ...],
    options: Mapping[str, Any],
    inference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    extra = {"inference": dict(inference)} if inference is not None else {}
    return {
        "format": MODEL_FORMAT,
        "architecture": architecture,
        "task": task,
        "class_names": list(class_names),
        "input_size": int(input_size),
        "normalize": {"mean": [float(x) for x in mean], "std": [float(x) for x in std]},
        "options": dict(options),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        **extra,
    }


def save_model_file(path: Path, **fields: Any) -> None:
    """Write ``model.pt`` (see the module docstring); keyword arguments as ``model_file``."""
    save_file(path, model_file(**fields))


def load_model_file(path: Path | str) -> dict[str, Any]:
    """Read and check a ``model.pt``; ValueError names what is missing or wrong."""
    obj = load_file(path)
    if obj.get("format") != MODEL_FORMAT:
        raise ValueError(f"{Path(path).name}: not a studio model file (format {obj.get('format')!r})")
    for key in ("architecture", "task", "class_names", "input_size", "normalize", "options", "state_dict"):
        if key not in obj:
            raise ValueError(f"{Path(path).name}: model file lacks {key!r}")
    return obj


def weights_from_file(path: Path | str) -> dict[str, torch.Tensor]:
    """The model weights in any file the studio accepts: a model file, a training checkpoint, or a bare
    state dict (optionally under "state_dict" / "model", as other tools save them)."""
    obj = load_file(path)
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    weights = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not weights:
        raise ValueError(f"{Path(path).name}: holds no weight tensors")
    return weights
