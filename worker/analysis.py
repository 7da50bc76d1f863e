"""Model complexity: parameter count and FLOPs of one forward pass (``torch.utils.flop_counter``).

FLOPs follow ``FlopCounterMode``'s convention: a multiply-add is two FLOPs (a ``Linear(i, o)`` on one
sample is ``2 * i * o``), and only the ops it has formulas for count (matmuls, convolutions, attention);
bias adds, norms and activations are left out, as in the published numbers for these architectures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from backend.specs.catalog import get_entry, list_models
from backend.specs.stats import CatalogStats, EntryStats
from backend.tasks import TASKS
from worker.zoo import build_model, list_buildable


def count_flops(model: nn.Module, input_size: int, batch: int = 1) -> int:
    """FLOPs of ``model`` (eval mode, no grad) on a ``(batch, 3, S, S)`` input."""
    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.zeros(batch, 3, input_size, input_size, device=device)
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def model_complexity(model: nn.Module, input_size: int) -> tuple[int, int]:
    """``(params, flops)`` at ``input_size``, batch 1: what ``TrainedModel.params`` / ``flops`` hold."""
    params = sum(p.numel() for p in model.parameters())
    return params, count_flops(model, input_size)


def _shapes_only(name: str, classes: int) -> nn.Module:
    """The model on the meta device: FLOPs and parameters need shapes, not numbers, so nothing is
    allocated or computed. Builders that read values while they construct fall back to the CPU.

    Detectors are built on the CPU: their forward pass looks at values (proposal scores, NMS), so on the
    meta device it cannot run; their FLOPs are those of a real pass over a blank image, and depend on how
    many proposals survive (convolutions and the heads count, NMS and RoIAlign do not)."""
    if TASKS[get_entry(name).task].model_outputs == "detections":
        # No parameter needs a gradient to be counted; without them the counter's module tracker sets no
        # backward hooks, which transformers' Deformable DETR trips over.
        return build_model(name, classes).requires_grad_(False)
    try:
        with torch.device("meta"):
            return build_model(name, classes)
    except Exception:  # e.g. a drop-path schedule read with .item() during construction
        return build_model(name, classes)


def entry_stats(name: str) -> EntryStats:
    """Params and FLOPs of catalog entry ``name`` at its default input size with a 1000-way head."""
    entry = get_entry(name)
    # Each task's head at its benchmark's classes: a segmentation head's output is classes x H x W, so it
    # is counted at VOC's 21 classes, not ImageNet's 1000.
    classes = TASKS[entry.task].stats_classes
    params, flops = model_complexity(_shapes_only(name, classes), entry.default_input_size)
    return EntryStats(input_size=entry.default_input_size, params=params, flops=flops, num_classes=classes)


@dataclass
class CatalogAnalysis:
    stats: CatalogStats
    counted: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # by name: why it could not be counted


def analyze_catalog(
    names: Iterable[str] | None = None,
    *,
    previous: CatalogStats | None = None,
    on_entry: Callable[[int, int, str], None] | None = None,
) -> CatalogAnalysis:
    """Count the given entries (default: every entry this worker can build), merged over ``previous``.

    One entry that cannot be counted (its library missing on this worker) is recorded in ``errors`` and
    costs the others nothing. ``on_entry(done, total, name)`` is called after each."""
    buildable = set(list_buildable(None))
    wanted = list(names) if names is not None else [e.name for e in list_models() if e.name in buildable]
    out = CatalogAnalysis(CatalogStats(entries=dict(previous.entries) if previous else {}))
    for i, name in enumerate(wanted):
        if name not in buildable:
            out.errors[name] = "not buildable on this worker (unknown name, other task, or library missing)"
        else:
            try:
                out.stats.entries[name] = entry_stats(name)
                out.counted.append(name)
            except Exception as exc:  # recorded per entry; the file still gets every other number
                out.errors[name] = f"{type(exc).__name__}: {exc}"
        if on_entry is not None:
            on_entry(i + 1, len(wanted), name)
    return out
