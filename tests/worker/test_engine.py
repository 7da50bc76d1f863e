"""The training engine on tiny models and in-memory data: steps, checkpoints, exact resume, cancel,
accumulation, schedules, losses, transforms and metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from backend.specs.sections import ScheduleSpec, step_models
from backend.tasks.classification import AugmentStep, LossSpec, augment_step
from worker.context import JobCancelled
from worker.data import MixCollate, eval_transform, train_transform
from worker.engine.callbacks import (
    CancelCheck,
    Checkpointer,
    Evaluator,
    MetricsLogger,
    ProgressReporter,
)
from worker.engine.checkpoint import load_file
from worker.engine.loop import Trainer
from worker.losses import build_loss
from worker.optim import build_optimizer, build_scheduler, lr_factor
from worker.tasks.classification.metrics import ClassificationMetrics


class StubContext:
    """What callbacks report to, kept in memory; ``cancel_at`` makes ``check()`` raise at that call."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.metrics: list[tuple[int, str, float]] = []
        self.messages: list[tuple[float, str | None]] = []
        self.checks = 0
        self.flushes = 0
        self.cancel_at = cancel_at

    def check(self) -> None:
        self.checks += 1
        if self.cancel_at is not None and self.checks >= self.cancel_at:
            raise JobCancelled("cancelled")

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        self.messages.append((fraction, message))

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        self.metrics.extend((step, k, float(v)) for k, v in values.items())

    def flush(self) -> None:
        self.flushes += 1

    def steps(self, name: str) -> list[int]:
        return [s for s, n, _ in self.metrics if n == name]


def _data(n: int = 96, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + (x[:, 1].mean((1, 2)) > 0).long()  # 3 classes
    return TensorDataset(x, y)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8, 3),
    )


def _trainer(
    tmp: Path, ctx: StubContext, epochs: int = 4, seed: int = 0, **kw: Any
) -> tuple[Trainer, Checkpointer]:
    model = _model(seed)
    spec = ScheduleSpec(lr=0.05, optimizer="sgd", policy="cosine", warmup_iters=3, epochs=epochs)
    loader = DataLoader(_data(), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(_data(48, seed=1), batch_size=16)
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, spec, epochs * len(loader), len(loader))
    ckpt = Checkpointer(ctx, tmp, interval=1, best_metric="accuracy/top1")
    callbacks = [
        ProgressReporter(ctx, interval_seconds=0),
        ckpt,
        Evaluator(ctx, val, ClassificationMetrics(["a", "b", "c"])),
        MetricsLogger(ctx, log_interval=4),
        CancelCheck(ctx),
    ]
    loss = build_loss(LossSpec(), 3)
    trainer = Trainer(
        model,
        opt,
        loss,
        loader,
        scheduler=sched,
        callbacks=callbacks,
        max_epochs=epochs,
        epoch_seed=seed,
        **kw,
    )
    return trainer, ckpt


def test_fit_logs_at_global_iterations_and_checkpoints(tmp_path: Path) -> None:
    ctx = StubContext()
    trainer, ckpt = _trainer(tmp_path, ctx, epochs=3)
    state = trainer.fit()
    assert (state.epoch, state.iteration, trainer.state.iters_per_epoch) == (3, 18, 6)
    assert ctx.steps("train/loss") == [4, 6, 8, 12, 16, 18]  # every 4th, plus each epoch's short tail
    assert ctx.steps("val/accuracy/top1") == [6, 12, 18]
    assert ctx.checks >= 18 + 1  # every iteration (and eval batch) asked whether to stop
    assert ckpt.last_path.exists() and ckpt.best_path.exists()
    last = load_file(ckpt.last_path)
    assert (last["epoch"], last["iteration"], last["format"]) == (3, 18, "studio-train/1")
    assert last["best_score"] == max(h["accuracy/top1"] for h in state.history)
    assert set(last["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert ctx.messages[-1][0] == 1.0 and "epoch 3/3" in (ctx.messages[-1][1] or "")
    losses = [v for _, n, v in ctx.metrics if n == "train/loss"]
    assert losses[-1] < losses[0]


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    whole, _ = _trainer(tmp_path / "whole", StubContext(), epochs=4)
    whole.fit()

    class StopAfter(Checkpointer):
        """Dies right after the epoch-2 checkpoint, as a SIGKILL would (nothing else runs)."""

        def on_epoch_end(self, trainer: Trainer) -> None:
            super().on_epoch_end(trainer)
            if trainer.state.epoch == 2:
                raise KeyboardInterrupt

    ctx = StubContext()
    first, ckpt = _trainer(tmp_path / "run", ctx, epochs=4)
    first.callbacks = [StopAfter(ctx, ckpt.folder) if c is ckpt else c for c in first.callbacks]
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    torch.manual_seed(123)  # a new process has other RNG state: the checkpoint must restore it

    ctx2 = StubContext()
    second, ckpt2 = _trainer(tmp_path / "run", ctx2, epochs=4, seed=0)
    second.load_state_dict(load_file(ckpt2.last_path))
    assert (second.state.epoch, second.state.iteration) == (2, 12)
    second.fit()
    assert ctx2.steps("val/accuracy/top1") == [18, 24]  # the same steps an uninterrupted run logs
    for (k, a), b in zip(whole.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert second.state.history == whole.state.history


def test_cancel_stops_mid_epoch(tmp_path: Path) -> None:
    ctx = StubContext(cancel_at=4)
    trainer, _ = _trainer(tmp_path, ctx)
    with pytest.raises(JobCancelled):
        trainer.fit()
    assert trainer.state.iteration == 3 and trainer.state.epoch == 0


def test_accumulation_equals_a_big_batch(tmp_path: Path) -> None:
    data = _data(32)

    def run(batch: int, accumulate: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(data, batch_size=batch)
        Trainer(model, opt, nn.CrossEntropyLoss(), loader, max_iters=32 // batch, accumulate=accumulate).fit()
        return model[1].weight.detach().clone()

    assert torch.allclose(run(32, 1), run(8, 4), atol=1e-6)


def test_iterations_stop_mid_epoch_and_grad_clip(tmp_path: Path) -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loader = DataLoader(_data(), batch_size=16)
    ctx = StubContext()
    trainer = Trainer(
        model,
        opt,
        nn.CrossEntropyLoss(),
        loader,
        callbacks=[MetricsLogger(ctx, 1)],
        max_iters=8,
        grad_clip=0.1,
    )
    state = trainer.fit()
    assert (state.iteration, state.epoch) == (8, 2) and ctx.steps("train/loss") == list(range(1, 9))


def test_schedules() -> None:
    spec = ScheduleSpec(lr=1.0, policy="cosine", warmup_iters=10, warmup_ratio=0.1, epochs=1)
    f = lr_factor(spec, 110, 11)
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0, abs=1e-9)
    step = lr_factor(ScheduleSpec(policy="step", step_size=2, gamma=0.5, epochs=1), 100, 10)
    assert (step(19), step(20), step(45)) == (1.0, 0.5, 0.25)
    poly = lr_factor(ScheduleSpec(policy="poly", power=1.0, epochs=1), 100, 10)
    assert poly(50) == pytest.approx(0.5)
    cycle = lr_factor(ScheduleSpec(policy="one_cycle", epochs=1), 100, 10)
    assert cycle(0) == pytest.approx(1 / 25) and cycle(30) == pytest.approx(1.0) and cycle(100) < 1e-3
    assert lr_factor(ScheduleSpec(policy="constant", epochs=1), 10, 1)(7) == 1.0
    model = _model()
    for name in ("sgd", "adam", "adamw"):
        opt = build_optimizer(model, ScheduleSpec(optimizer=name, weight_decay=0.1, epochs=1))
        assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # no decay on biases / norms


def test_losses() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    one_hot = torch.nn.functional.one_hot(target, 4).float()
    ce = build_loss(LossSpec(), 4)
    ref = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(ce(logits, target), ref) and torch.allclose(ce(logits, one_hot), ref)
    smooth = build_loss(LossSpec(label_smoothing=0.1), 4)
    assert torch.allclose(smooth(logits, target), smooth(logits, one_hot), atol=1e-6)
    focal0 = build_loss(LossSpec(name="focal", focal_gamma=0.0), 4)
    assert torch.allclose(focal0(logits, target), ref, atol=1e-6)
    focal = build_loss(LossSpec(name="focal", focal_gamma=2.0), 4)
    assert focal(logits, target) < ref  # easy examples are down-weighted
    l1 = build_loss(LossSpec(name="l1"), 4)
    assert torch.allclose(l1(logits, target), (logits.softmax(1) - one_hot).abs().sum(1).mean())
    weighted = build_loss(LossSpec(class_weights=[1, 2, 3, 4]), 4)
    w_ref = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor([1.0, 2, 3, 4]))
    assert torch.allclose(weighted(logits, target), w_ref)
    with pytest.raises(ValueError, match="class_weights"):
        build_loss(LossSpec(class_weights=[1, 2]), 4)


def test_transforms_and_mixing() -> None:
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    steps = [augment_step(n) for n in step_models(AugmentStep)]
    for step in steps:
        out = train_transform([step], 32, (0.5,) * 3, (0.5,) * 3)(image)
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32, step.name
        assert type(out) is torch.Tensor
    from PIL import Image

    pil = Image.new("RGB", (50, 30), (255, 0, 0))
    out = eval_transform(32, (0.0,) * 3, (1.0,) * 3)(pil)
    assert out.shape == (3, 32, 32) and out[0].min() == 1.0 and out[1].max() == 0.0
    batch = [(torch.rand(3, 8, 8), i % 3) for i in range(6)]
    images, targets = MixCollate(3, mixup_alpha=0.4, cutmix_alpha=1.0)(batch)
    assert images.shape == (6, 3, 8, 8) and targets.shape == (6, 3)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    images, targets = MixCollate(3, 0.0, 0.0)(batch)
    assert targets.tolist() == [0, 1, 2, 0, 1, 2]


def test_classification_metrics() -> None:
    m = ClassificationMetrics(["a", "b", "c"])
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0], [0, 0, 3.0]])
    m.update(logits, torch.tensor([0, 1, 2, 2]))
    out = m.compute()
    assert out["accuracy/top1"] == 0.75 and "accuracy/top5" not in out
    assert out["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert out["per_class"]["c"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert math.isclose(out["recall/macro"], (1 + 1 + 0.5) / 3, rel_tol=1e-6)
    five = ClassificationMetrics([str(i) for i in range(5)])
    five.update(torch.randn(8, 5), torch.randint(0, 5, (8,)))
    assert five.compute()["accuracy/top5"] == 1.0


def test_eta_leaves_validation_out_until_one_is_timed_then_counts_those_to_come(tmp_path: Path) -> None:
    """Before the first validation the message says its ETA is training alone; after it, the ETA adds the
    timed validation once for each still due (every ``eval_interval``-th epoch, and the last)."""
    from types import SimpleNamespace

    from worker.engine.callbacks import evaluations_left

    def left(epoch: int, total: int, interval: int) -> int:
        return evaluations_left(SimpleNamespace(epoch=epoch, total_epochs=total), interval)

    assert [left(0, 10, 3), left(3, 10, 3), left(9, 10, 3), left(10, 10, 3)] == [4, 3, 1, 0]
    assert [left(0, 3, 1), left(2, 3, 1), left(0, 3, 0)] == [3, 1, 0]

    ctx = StubContext()
    trainer, _ = _trainer(tmp_path, ctx, epochs=3)
    reporter = next(c for c in trainer.callbacks if isinstance(c, ProgressReporter))
    reporter.eval_interval = 1
    trainer.fit()
    etas = [(m or "") for _, m in ctx.messages if "ETA" in (m or "")]
    first_epoch = [m for m in etas if m.startswith("epoch 1/3")]
    later = [m for m in etas if m.startswith("epoch 3/3")]
    assert first_epoch and all(m.endswith("before validation") for m in first_epoch), etas
    assert later and not any("before validation" in m for m in later), etas
