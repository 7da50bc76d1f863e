"""The model import job: verify an uploaded checkpoint without running anything in it, then make it a
studio model (``model.pt``) or record why it cannot be one.

``POST /api/models`` stores the upload as ``DATA_DIR/models/<id>/checkpoint<suffix>`` with the row's
architecture, class names and input size from the form. Accepted: a studio model file, a training
checkpoint, or a bare state dict (``.pt``/``.pth`` read with ``weights_only=True``, or ``.safetensors``).
A pickle that needs code is refused by ``torch.load`` before any of it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.db.session import session_scope
from backend.db.tables import TrainedModel
from backend.jobs.kinds import ImportModelConfig
from backend.models.contract import model_dir
from backend.settings import get_settings
from backend.specs.catalog import get_entry
from backend.tasks import TASKS
from worker.analysis import model_complexity
from worker.context import JobContext
from worker.engine.checkpoint import MODEL_FORMAT, load_file, model_file, save_file, weights_from_file
from worker.jobs.common import owned_model
from worker.zoo import build_model, head_name, load_weights

MODEL_FILE = "model.pt"
DEFAULT_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # ImageNet's, as training


class ImportRefused(ValueError):
    """The upload cannot become a model; the message is what the user sees as the model's error."""


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Weights saved from ``DataParallel``/DDP carry ``module.`` on every key."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def read_upload(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The weights of an upload and, for a studio model file, its other fields."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file as load_safetensors

        try:
            return _strip_prefix(load_safetensors(str(path), device="cpu")), None
        except (SafetensorError, OSError) as exc:
            raise ImportRefused(f"{path.name}: not a readable safetensors file ({exc})") from exc
    data = load_file(path)  # weights_only: raises UnsafeCheckpoint (a ValueError) for code
    if data.get("format") == MODEL_FORMAT:
        state = data.get("state_dict")
        if not isinstance(state, dict):
            raise ImportRefused(f"{path.name}: a studio model file without a state_dict")
        return _strip_prefix(state), data
    try:
        return _strip_prefix(weights_from_file(path)), None
    except ValueError as exc:
        raise ImportRefused(str(exc)) from exc


def build_model_dict(
    row_arch: str,
    row_classes: list[str],
    row_size: int,
    task: str,
    state: dict[str, torch.Tensor],
    studio: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[str]]:
    """The ``studio-model/1`` dict for the upload, and notes on what was taken from where.

    The form's architecture and class names stand; a studio file must agree on the architecture and the
    number of classes, and brings its own input size, normalisation and options."""
    notes: list[str] = []
    size, normalize, options = row_size, DEFAULT_NORMALIZE, {}
    if studio is not None:
        if studio.get("architecture") != row_arch:
            raise ImportRefused(
                f"the file is a {studio.get('architecture')} model, the upload says {row_arch}"
            )
        names = studio.get("class_names")
        if isinstance(names, list) and len(names) != len(row_classes):
            raise ImportRefused(f"the file has {len(names)} classes, the upload names {len(row_classes)}")
        if isinstance(studio.get("input_size"), int) and studio["input_size"] != row_size:
            notes.append(f"input size {studio['input_size']} from the file (the form said {row_size})")
            size = int(studio["input_size"])
        normalize = studio.get("normalize") or normalize
        options = dict(studio.get("options") or {})
    return (
        model_file(
            state_dict=state,
            architecture=row_arch,
            task=task,
            class_names=row_classes,
            input_size=size,
            mean=normalize["mean"],
            std=normalize["std"],
            options=options,
        ),
        notes,
    )


def check_weights(data: dict[str, Any]) -> nn.Module:
    """Rebuild the model and load ``data``'s weights: every key must fit, and one forward pass must give
    a finite ``(1, classes)`` output. Returns the model in eval mode."""
    arch, n = data["architecture"], len(data["class_names"])
    try:
        model = build_model(arch, n, data["options"])
    except ValueError as exc:
        raise ImportRefused(str(exc)) from exc
    state = dict(data["state_dict"])
    own = model.state_dict()
    head = head_name(model)
    if f"{head}.weight" in state and state[f"{head}.weight"].shape != own[f"{head}.weight"].shape:
        got = state[f"{head}.weight"].shape[0]
        raise ImportRefused(f"the checkpoint's head ({head}) has {got} outputs, the upload names {n} classes")
    # Checkpoints from before PyTorch 0.4.1 lack BatchNorm's counter; it only matters to momentum=None.
    for key, value in own.items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    try:
        missing, unexpected = load_weights(model, state)
    except ValueError as exc:  # a shape mismatch outside the head: another architecture's weights
        raise ImportRefused(str(exc)) from exc
    if missing or unexpected:
        raise ImportRefused(
            f"the weights do not fit {arch}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    data["state_dict"] = state
    model.eval()
    size = int(data["input_size"])
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, size, size))
    problem = _output_problem(out, n, data.get("task") or get_entry(arch).task)
    if problem:
        raise ImportRefused(f"at input size {size}, {problem}")
    return model


def _output_problem(out: Any, n: int, task: str) -> str | None:
    """What is wrong with one forward pass's output for the task, if anything: a detector answers a list
    of boxes, scores and labels per picture; any other model a tensor whose first two sides are (1, n)
    (class scores, a class map, a text map)."""
    spec = TASKS.get(str(task))
    if spec is not None and spec.model_outputs == "detections":
        if not isinstance(out, list) or len(out) != 1 or not isinstance(out[0], dict):
            return f"the detector gives {type(out).__name__}, expected one dict of detections per picture"
        missing = [k for k in ("boxes", "scores", "labels") if k not in out[0]]
        if missing:
            return f"the detector's answer has no {', '.join(missing)}"
        if not all(bool(torch.isfinite(out[0][k].float()).all()) for k in ("boxes", "scores")):
            return "the detector's boxes or scores are not finite"
        return None
    if not isinstance(out, torch.Tensor):
        return f"the model gives {type(out).__name__}, expected a tensor"
    if tuple(out.shape[:2]) != (1, n) or not bool(torch.isfinite(out).all()):
        return (
            f"the model gives {tuple(out.shape)} outputs, expected (1, {n}{', ...' if out.dim() > 2 else ''})"
        )
    return None


def _set_row(model_id: int, **values: Any) -> None:
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)


def run_import_model(ctx: JobContext) -> dict[str, Any]:
    """Verify the upload; on success write ``model.pt`` and mark the model ready with its params and
    FLOPs, else mark it failed with the reason (and fail the job with the same reason)."""
    cfg = ImportModelConfig.model_validate(ctx.config)
    row = owned_model(ctx, cfg.model_id)
    target = model_dir(get_settings().data_dir, row.id) / MODEL_FILE
    if row.status == "ready":  # a re-delivery after the import landed
        return {"model_id": row.id, "checkpoint_path": row.checkpoint_path}
    if not row.checkpoint_path:
        raise ImportRefused(f"model {row.id} has no uploaded checkpoint")
    upload = Path(row.checkpoint_path)
    try:
        ctx.progress(0.1, "reading the checkpoint (weights only)", force=True)
        state, studio = read_upload(upload)
        size = row.input_size or get_entry(row.architecture).default_input_size
        data, notes = build_model_dict(row.architecture, row.class_names, size, row.task, state, studio)
        ctx.progress(0.4, f"rebuilding {row.architecture}", force=True)
        model = check_weights(data)
        params, flops = model_complexity(model, int(data["input_size"]))
    except Exception as exc:  # the model row says why, whatever went wrong; the job fails with it too
        _set_row(row.id, status="failed", error=str(exc) or type(exc).__name__)
        raise
    save_file(target, data)
    _set_row(
        row.id,
        status="ready",
        error=None,
        checkpoint_path=str(target),
        input_size=int(data["input_size"]),
        params=params,
        flops=flops,
    )
    if upload.resolve() != target.resolve():
        upload.unlink(missing_ok=True)
    return {
        "model_id": row.id,
        "params": params,
        "flops": flops,
        "input_size": data["input_size"],
        "notes": notes,
    }
