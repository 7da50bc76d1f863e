"""Trained models in the worker: read a ``model.pt`` safely, rebuild it with the zoo, keep a few warm.

The file format and its safe reading (``weights_only=True``, nothing in a file ever runs) live in
``worker.engine.checkpoint``; this module adds the stricter checks inference needs, the rebuild and the
eval preprocessing of one picture. Warm models are kept by ``worker.serving.cache``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2.functional import pil_to_tensor

from worker.data import eval_transform
from worker.engine.checkpoint import load_model_file
from worker.zoo import build_model, load_weights


class ModelFileError(ValueError):
    """A model file that is readable but not usable; the message names the field or key at fault."""


@dataclass
class LoadedModel:
    """A rebuilt model in eval mode with what inference needs to feed it and name its outputs."""

    model: nn.Module
    architecture: str
    task: str
    class_names: list[str]
    input_size: int
    normalize: dict[str, list[float]]
    options: dict[str, Any]
    path: Path
    inference: dict[str, Any] = field(default_factory=dict)  # segmentation: mode, crop_size, stride, ...
    # Grad-CAM registers hooks on the shared module: one user of a warm model at a time.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def check_model_dict(data: Mapping[str, Any], name: str = "model.pt") -> None:
    """Types and shapes ``load_model_file`` does not check; ``ModelFileError`` names the bad field."""
    names = data["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{name}: class_names must be a non-empty list of strings")
    size = data["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ModelFileError(f"{name}: input_size must be a positive integer, got {size!r}")
    state = data["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{name}: state_dict must map names to tensors")
    norm = data["normalize"]
    for key in ("mean", "std"):
        values = norm.get(key) if isinstance(norm, Mapping) else None
        if not isinstance(values, list | tuple) or len(values) != 3:
            raise ModelFileError(f"{name}: normalize.{key} must be three numbers")
    if not isinstance(data["options"], Mapping):
        raise ModelFileError(f"{name}: options must be a mapping")


def model_from_dict(data: Mapping[str, Any], path: Path | str = "model.pt") -> LoadedModel:
    """Rebuild a model dict with the zoo, in eval mode on the CPU.

    A missing or unexpected key is an error: a studio model file must fit its own architecture exactly
    (``load_weights`` alone would quietly re-initialise a head of the wrong size)."""
    name = Path(path).name
    check_model_dict(data, name)
    names = list(data["class_names"])
    try:
        model = build_model(str(data["architecture"]), len(names), dict(data["options"]))
        missing, unexpected = load_weights(model, data["state_dict"])
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{name}: {exc}") from exc
    if missing or unexpected:
        raise ModelFileError(
            f"{name}: weights do not match {data['architecture']} with {len(names)} classes: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    # Inference never needs weight gradients; Grad-CAM takes its gradients through the input instead,
    # which skips the weight-gradient half of the backward pass and keeps no .grad on a warm model.
    model.eval().requires_grad_(False)
    norm = data["normalize"]
    return LoadedModel(
        model=model,
        architecture=str(data["architecture"]),
        task=str(data["task"]),
        class_names=names,
        input_size=int(data["input_size"]),
        normalize={"mean": [float(v) for v in norm["mean"]], "std": [float(v) for v in norm["std"]]},
        options=dict(data["options"]),
        path=Path(path),
        inference=dict(data.get("inference") or {}),
    )


def load_model(checkpoint_path: Path | str) -> LoadedModel:
    """Read (``weights_only``), validate and rebuild a ``model.pt``; raises ``UnsafeCheckpoint`` or
    ``ValueError`` saying why a file is refused."""
    return model_from_dict(load_model_file(checkpoint_path), checkpoint_path)


# ------------------------------------------------------------------------------------------- images


def preprocess(image: Image.Image, input_size: int, normalize: Mapping[str, Any]) -> torch.Tensor:
    """One picture as the model's ``[1, 3, S, S]`` input, exactly as evaluation transforms it.

    The picture becomes a uint8 tensor first because evaluation decodes files to uint8 tensors
    (``worker.data.read_image``): resizing a tensor and a PIL image antialias slightly differently."""
    pixels = pil_to_tensor(image.convert("RGB"))
    tensor: torch.Tensor = eval_transform(input_size, normalize["mean"], normalize["std"])(pixels)
    return tensor.unsqueeze(0)
