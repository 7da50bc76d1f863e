"""TorchScript and ONNX exports of a model, each verified against PyTorch before it counts.

An export is only kept when the file, loaded back (``torch.jit.load`` / onnxruntime), gives the same
logits as the PyTorch model on a random batch: max abs difference at most ``TOLERANCE``. The check runs
at batch 3 while the export is traced at batch 2, so it also proves the batch axis is dynamic.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

TOLERANCE = 1e-4
EXPORT_BATCH = 2  # not 1: torch.export specialises a size-1 axis and the batch would not stay dynamic
CHECK_BATCH = 3  # neither the export batch nor 1, so a passing check proves the batch axis is dynamic
ExportFormat = Literal["torchscript", "onnx"]


class ExportMismatch(RuntimeError):
    """The exported file does not reproduce the PyTorch outputs."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: ExportFormat
    max_abs_diff: float
    size_bytes: int
    seconds: float


def _sample(input_size: int, batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, input_size, input_size, generator=generator)


def max_abs_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    ta = torch.as_tensor(a, dtype=torch.float32)
    tb = torch.as_tensor(b, dtype=torch.float32)
    if ta.shape != tb.shape:
        raise ExportMismatch(f"exported output has shape {tuple(ta.shape)}, PyTorch gives {tuple(tb.shape)}")
    return float((ta - tb).abs().max())


def check_close(diff: float, what: str, tolerance: float = TOLERANCE) -> None:
    """Raise ``ExportMismatch`` naming the difference when it is over ``tolerance`` (or not a number)."""
    if not diff <= tolerance:  # written so that NaN fails too
        raise ExportMismatch(
            f"{what} export differs from PyTorch: max abs difference {diff:.3g} > tolerance {tolerance:g}"
        )


@contextlib.contextmanager
def _temp_beside(target: Path) -> Iterator[Path]:
    """A temp path in ``target``'s folder, removed unless it was moved into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out: torch.Tensor = model(x)
    return out.float()


def export_torchscript(
    model: nn.Module,
    input_size: int,
    target: Path,
    *,
    compare: Callable[[torch.Tensor, torch.Tensor], float] = max_abs_diff,
) -> ExportResult:
    """Trace ``model`` (eval mode) to ``target``; the saved file is loaded back and checked."""
    started = time.monotonic()
    model.eval()
    x = _sample(input_size, CHECK_BATCH)
    with _temp_beside(target) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            # jit.trace is deprecated in favour of torch.export, but TorchScript is what users ask for here.
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, _sample(input_size, EXPORT_BATCH, seed=1), check_trace=False)
        traced.save(str(tmp))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the same deprecation, for jit.load
            loaded = torch.jit.load(str(tmp), map_location="cpu")
        with torch.no_grad():
            got = loaded(x)
        diff = compare(got, _reference(model, x))
        check_close(diff, "TorchScript")
        os.replace(tmp, target)
    return ExportResult(target, "torchscript", diff, target.stat().st_size, time.monotonic() - started)


def export_onnx(
    model: nn.Module,
    input_size: int,
    target: Path,
    *,
    compare: Callable[[np.ndarray, torch.Tensor], float] = max_abs_diff,
    opset: int | None = None,
) -> ExportResult:
    """Export ``model`` to ONNX (input ``input``, output ``logits``, dynamic batch axis) at ``target``;
    onnxruntime runs the written file and its logits are checked against PyTorch."""
    import onnxruntime as ort

    started = time.monotonic()
    model.eval()
    x = _sample(input_size, CHECK_BATCH)
    with _temp_beside(target) as tmp:
        batch = torch.export.Dim("batch", min=1, max=4096)
        # The exporter reports each step on stdout; a job's log needs none of it.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (_sample(input_size, EXPORT_BATCH, seed=1),),
                str(tmp),
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                external_data=False,  # one self-contained file to download
                dynamo=True,
                verbose=False,
            )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input": x.numpy()})[0]
        diff = compare(got, _reference(model, x))
        check_close(diff, "ONNX")
        os.replace(tmp, target)
    return ExportResult(target, "onnx", diff, target.stat().st_size, time.monotonic() - started)


EXPORTERS: dict[str, Callable[..., ExportResult]] = {"torchscript": export_torchscript, "onnx": export_onnx}
