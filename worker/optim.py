"""Optimizer and learning-rate schedule from ``ScheduleSpec``.

The schedule is a ``LambdaLR`` stepped once per optimizer step (not per epoch), with an optional linear
warm-up in front; its state dict holds only numbers, so it checkpoints with ``weights_only``."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim import SGD, Adam, AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from backend.specs.sections import ScheduleSpec


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on weights only: biases and norm scales (1-D tensors) are not decayed."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, spec: ScheduleSpec) -> Optimizer:
    groups = param_groups(model, spec.weight_decay)
    if spec.optimizer == "sgd":
        return SGD(groups, lr=spec.lr, momentum=spec.momentum)
    if spec.optimizer == "adam":
        return Adam(groups, lr=spec.lr)
    if spec.optimizer == "adamw":
        return AdamW(groups, lr=spec.lr)
    raise ValueError(f"schedule.optimizer: unknown optimizer {spec.optimizer!r}")


def lr_factor(spec: ScheduleSpec, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The multiplier of the base lr after ``step`` optimizer steps (0-based), warm-up included."""
    total = max(1, total_steps)
    warm = min(spec.warmup_iters, total - 1) if spec.policy != "one_cycle" else 0
    per_epoch = max(1, steps_per_epoch)

    def main(step: int) -> float:
        t = min(1.0, max(0.0, (step - warm) / max(1, total - warm)))
        if spec.policy == "constant":
            return 1.0
        if spec.policy == "step":
            return float(spec.gamma ** (step // (spec.step_size * per_epoch)))
        if spec.policy == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * t))
        if spec.policy == "poly":
            return float((1.0 - t) ** spec.power)
        # one_cycle (as torch's OneCycleLR, cosine both ways): up from lr/25 over the warm-up
        # (or 30 % of the run), then down to lr/1e4.
        rise = spec.warmup_iters if spec.warmup_iters > 0 else max(1, int(0.3 * total))
        rise = min(rise, total - 1) if total > 1 else 1
        start, end = 1.0 / 25.0, 1.0 / 1e4
        if step < rise:
            return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * step / rise))
        u = min(1.0, (step - rise) / max(1, total - rise))
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * u))

    def factor(step: int) -> float:
        if step < warm:
            return spec.warmup_ratio + (1.0 - spec.warmup_ratio) * step / warm
        return main(step)

    return factor


def build_scheduler(
    optimizer: Optimizer, spec: ScheduleSpec, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-optimizer-step schedule over ``total_steps`` steps."""
    return LambdaLR(optimizer, lr_factor(spec, total_steps, steps_per_epoch))
