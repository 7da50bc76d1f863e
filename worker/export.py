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
    if is_detector(model):
        return export_detector(model, input_size, target, "torchscript")
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

    if is_detector(model):
        return export_detector(model, input_size, target, "onnx")
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


# ------------------------------------------------------------------------------------------ detectors

BOX_TOLERANCE = 1e-3  # detections are compared in pixels and scores, not logits
DETECTION_OUTPUTS = ("boxes", "labels", "scores", "masks")


class ExportUnsupported(RuntimeError):
    """The architecture cannot be exported to this format; the message says why."""


def is_detector(model: nn.Module) -> bool:
    """A network whose outputs are detections (boxes after non-maximum suppression), by its task."""
    from backend.tasks import TASKS

    spec = TASKS.get(str(getattr(model, "studio_task", "")))
    return spec is not None and spec.model_outputs == "detections"


def _detector_name(model: nn.Module) -> str:
    net = getattr(model, "net", model)
    names = {
        "FasterRCNN": "Faster R-CNN",
        "MaskRCNN": "Mask R-CNN",
        "RetinaNet": "RetinaNet",
        "DeformableDetrForObjectDetection": "Deformable DETR",
    }
    return names.get(type(net).__name__, type(net).__name__)


def _detector_image(size: int, seed: int) -> torch.Tensor:
    """A picture-like input in [0, 1]: smooth blobs on noise, so a trained detector finds something."""
    g = torch.Generator().manual_seed(seed)
    h, w = size, size + 8 * (seed + 1)  # another size than the export's: the spatial axes stay dynamic
    base = torch.rand(3, h // 8 + 1, w // 8 + 1, generator=g)
    image = nn.functional.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (0.8 * image + 0.2 * torch.rand(3, h, w, generator=g)).clamp(0, 1)


def _detections_diff(got: list[torch.Tensor | np.ndarray], ref: dict[str, torch.Tensor]) -> float:
    """Max abs difference over boxes, scores, labels (and masks); a different count is a mismatch."""
    keys = [k for k in DETECTION_OUTPUTS if k in ref]
    diff = 0.0
    for key, value in zip(keys, got, strict=False):
        diff = max(diff, max_abs_diff(value, ref[key]) if ref[key].numel() else 0.0)
    return diff


def export_detector(model: nn.Module, input_size: int, target: Path, fmt: ExportFormat) -> ExportResult:
    """A detector as TorchScript (scripted: ``model(images: list[Tensor]) -> (losses, detections)``) or
    ONNX (one image ``(3, H, W)`` in [0, 1] in; ``boxes``, ``labels``, ``scores`` and, for Mask R-CNN,
    ``masks`` out); checked on a picture of another size than the export's (boxes within 1e-3 px).

    Raises ``ExportUnsupported`` naming the architecture when the exporter cannot take it."""
    from worker.zoo.detection import DetrDetector

    if isinstance(model, DetrDetector):
        raise ExportUnsupported(
            f"Deformable DETR export to {_FORMAT_NAMES[fmt]} is not supported: the transformers model cannot "
            "be scripted, and its multi-scale deformable attention has no exporter support here; serve it "
            "from the studio (predict) instead"
        )
    started = time.monotonic()
    model.eval()
    model.sync_transform()  # type: ignore[operator]
    net: nn.Module = model.net  # type: ignore[assignment]
    name = _detector_name(model)
    check = _detector_image(max(32, input_size), seed=1)
    with torch.inference_mode():
        ref = model([check])[0]
    keys = [k for k in DETECTION_OUTPUTS if k in ref]
    with _temp_beside(target) as tmp:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                if fmt == "torchscript":
                    torch.jit.save(torch.jit.script(net), str(tmp))
                else:
                    dynamic = {"image": {1: "height", 2: "width"}, **{k: {0: "detections"} for k in keys}}
                    torch.onnx.export(
                        net,
                        ([_detector_image(max(32, input_size), seed=0)],),
                        str(tmp),
                        input_names=["image"],
                        output_names=keys,
                        dynamic_axes=dynamic,
                        opset_version=11,
                        dynamo=False,  # torch.export cannot take the data-dependent shapes of NMS
                    )
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportUnsupported(
                f"{name} export to {_FORMAT_NAMES[fmt]} is not supported: {reason}"
            ) from exc
        if fmt == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                loaded = torch.jit.load(str(tmp), map_location="cpu")
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "always returns (losses, detections)"
                _, detections = loaded([check])
            got: list[torch.Tensor | np.ndarray] = [detections[0][k] for k in keys]
        else:
            import onnxruntime as ort

            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = list(session.run(keys, {"image": check.numpy()}))
        diff = _detections_diff(got, ref)
        try:
            check_close(diff, f"{name} {_FORMAT_NAMES[fmt]}", BOX_TOLERANCE)
        except ExportMismatch as exc:
            raise ExportUnsupported(
                f"{name} export to {_FORMAT_NAMES[fmt]} is not supported: the exported graph does not "
                f"reproduce PyTorch's detections ({exc})"
            ) from exc
        os.replace(tmp, target)
    return ExportResult(target, fmt, diff, target.stat().st_size, time.monotonic() - started)


_FORMAT_NAMES = {"torchscript": "TorchScript", "onnx": "ONNX"}


EXPORTERS: dict[str, Callable[..., ExportResult]] = {"torchscript": export_torchscript, "onnx": export_onnx}
