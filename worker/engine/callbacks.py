"""Callbacks: everything the training loop does besides training. Each hook gets the ``Trainer``.

The loop calls them in ``order`` (lower first): cancel check, metrics, evaluation, checkpoints, progress.
Evaluation precedes checkpointing, so ``last.pt`` written at an epoch's end holds that epoch's best score.

The ``RunContext`` they report to is a ``worker.context.JobContext`` in a worker; anything with the same
four methods (a stub in benchmarks) works."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from worker.engine.checkpoint import save_file

if TYPE_CHECKING:
    from worker.engine.loop import Trainer


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat scalars of a metrics dict (what goes to ``log_metrics``)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k != "samples"}


class RunContext(Protocol):
    def check(self) -> None: ...
    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None: ...
    def log_metrics(self, step: int, values: Mapping[str, float]) -> None: ...
    def flush(self) -> None: ...


class MetricAccumulator(Protocol):
    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None: ...
    def compute(self) -> dict[str, Any]: ...
    def reset(self) -> None: ...


class Callback:
    """Base class: override the hooks you need. ``on_batch_end`` / ``on_eval_batch_end`` are only
    called on callbacks that override them (they are on the hot path)."""

    order: int = 50

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None: ...
    def on_eval_batch_end(self, trainer: Trainer) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    """Drop NaN / inf (a diverged loss): metric rows are NOT NULL, and SQLite stores NaN as NULL."""
    return {k: v for k, v in values.items() if math.isfinite(v)}


def _due(trainer: Trainer, interval: int) -> bool:
    """At the end of every ``interval``-th epoch, and always at the end of the run."""
    return trainer.state.finished or trainer.state.epoch % interval == 0


class CancelCheck(Callback):
    """``ctx.check()`` every iteration (and every eval batch): cancel and lease loss stop the run there."""

    order = 0

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def on_train_start(self, trainer: Trainer) -> None:
        self.ctx.check()

    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        self.ctx.check()

    def on_eval_batch_end(self, trainer: Trainer) -> None:
        self.ctx.check()


def memory_mb(device: torch.device) -> float:
    """Peak memory: allocated CUDA memory on a GPU, the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class MetricsLogger(Callback):
    """Every ``log_interval`` iterations: mean loss, lr, time per iteration, data time, memory, at step =
    iteration. Losses stay on the device until then (no per-batch sync)."""

    order = 10

    def __init__(self, ctx: RunContext, log_interval: int = 10, prefix: str = "train/") -> None:
        self.ctx = ctx
        self.interval = max(1, log_interval)
        self.prefix = prefix
        self._losses: list[torch.Tensor] = []
        self._time = 0.0
        self._data = 0.0

    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        st = trainer.state
        self._losses.append(loss)
        self._time += st.batch_time
        self._data += st.data_time
        if st.iteration % self.interval == 0:
            self._write(trainer)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self._losses:  # a short window at the end of the epoch
            self._write(trainer)
        self.ctx.log_metrics(trainer.state.iteration, {f"{self.prefix}epoch": trainer.state.epoch})

    def _write(self, trainer: Trainer) -> None:
        n = len(self._losses)
        loss = float(torch.stack(self._losses).float().mean())
        p = self.prefix
        self.ctx.log_metrics(
            trainer.state.iteration,
            _finite(
                {
                    f"{p}loss": loss,
                    f"{p}lr": trainer.current_lr(),
                    f"{p}time": self._time / n,
                    f"{p}data_time": self._data / n,
                    f"{p}memory_mb": memory_mb(trainer.device),
                }
            ),
        )
        self._losses.clear()
        self._time = self._data = 0.0


class Evaluator(Callback):
    """Every ``interval`` epochs (and at the end): metrics over ``loader`` → ``log_metrics`` as
    ``val/<name>`` (e.g. ``val/accuracy/top1``), ``state.last_metrics`` and ``state.history``, then
    ``on_validation_end`` on every callback."""

    order = 20

    def __init__(
        self,
        ctx: RunContext,
        loader: Any,
        metrics: MetricAccumulator,
        interval: int = 1,
        prefix: str = "val/",
        infer: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.ctx = ctx
        self.loader = loader
        self.metrics = metrics
        self.interval = max(1, interval)
        self.prefix = prefix
        self.infer = infer  # see Trainer.evaluate

    def on_epoch_end(self, trainer: Trainer) -> None:
        if _due(trainer, self.interval):
            self.run(trainer)

    def run(self, trainer: Trainer) -> dict[str, Any]:
        self.metrics.reset()
        loss = trainer.evaluate(self.loader, self.metrics.update, self.infer)
        results = {**self.metrics.compute(), "loss": loss}
        scalars = scalar_metrics(results)
        st = trainer.state
        self.ctx.log_metrics(st.iteration, _finite({f"{self.prefix}{k}": v for k, v in scalars.items()}))
        st.last_metrics = results
        st.history.append({"epoch": st.epoch, "iteration": st.iteration, **scalars})
        trainer.fire("on_validation_end", results)
        return results


class Checkpointer(Callback):
    """``last.pt`` every ``interval`` epochs (and at the end), ``best.pt`` whenever ``best_metric`` (higher
    is better) improves; both atomic. Pending metrics are flushed first, so a checkpoint never claims
    steps whose metrics were not written."""

    order = 30

    def __init__(
        self,
        ctx: RunContext,
        folder: Path,
        interval: int = 1,
        best_metric: str | None = "accuracy/top1",
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.folder = Path(folder)
        self.interval = max(1, interval)
        self.best_metric = best_metric
        self.extra = extra

    @property
    def last_path(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def _save(self, trainer: Trainer, path: Path) -> None:
        self.ctx.check()  # a worker that lost its lease must not overwrite the new holder's files
        self.ctx.flush()
        save_file(path, trainer.state_dict(self.extra() if self.extra else None))

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.best_metric is None or self.best_metric not in metrics:
            return
        score = float(metrics[self.best_metric])
        st = trainer.state
        if math.isfinite(score) and (st.best_score is None or score > st.best_score):
            st.best_score, st.best_epoch = score, st.epoch
            self._save(trainer, self.best_path)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if _due(trainer, self.interval):
            self._save(trainer, self.last_path)


def format_seconds(seconds: float) -> str:
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def evaluations_left(state: Any, interval: int) -> int:
    """Validations still to come after ``state``'s epoch: every ``interval``-th epoch and the last one."""
    if interval <= 0:
        return 0
    epoch, total = state.epoch, state.total_epochs
    due = sum(1 for e in range(epoch + 1, total + 1) if e % interval == 0)
    return due + (1 if total > epoch and total % interval != 0 else 0)


class ProgressReporter(Callback):
    """Progress fraction (iterations done / total) and a message with epoch, iteration and ETA, at most
    every ``interval_seconds`` (the context throttles too, this spares building messages).

    The ETA counts training and validation apart: the seconds per iteration of training alone times the
    iterations left, plus, once a validation has run, its seconds times the validations still due
    (``eval_interval``, the Evaluator's; 0 when the run validates nothing). Before the first validation
    the message says the ETA leaves it out."""

    order = 40

    def __init__(
        self,
        ctx: RunContext,
        interval_seconds: float = 0.5,
        span: tuple[float, float] = (0.0, 1.0),
        headline: str | None = None,
        eval_interval: int = 0,
    ) -> None:
        self.ctx = ctx
        self.interval = interval_seconds
        self.span = span  # the share of the job's progress bar that training fills
        self.headline = headline  # the validation figure the message quotes (the task's headline)
        self.eval_interval = eval_interval
        self._t0 = 0.0
        self._last = 0.0
        self._batch_end = 0.0  # when the last training batch ended: a validation starts from there
        self._val_seconds = 0.0
        self._validations = 0

    def on_train_start(self, trainer: Trainer) -> None:
        self._t0 = self._batch_end = time.monotonic()
        self._report(trainer, force=True)

    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        self._batch_end = time.monotonic()
        if self._batch_end - self._last >= self.interval:
            self._report(trainer)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._val_seconds += time.monotonic() - self._batch_end
        self._validations += 1

    def eta(self, trainer: Trainer) -> tuple[float, bool] | None:
        """Seconds left, and whether validation is in them; None before any iteration."""
        st = trainer.state
        done = st.iteration - st.start_iteration
        if done <= 0:
            return None
        train = max(0.0, time.monotonic() - self._t0 - self._val_seconds) / done
        left = train * max(0, st.total_iters - st.iteration)
        due = evaluations_left(st, self.eval_interval)
        if due and not self._validations:
            return left, False
        if self._validations:
            left += self._val_seconds / self._validations * due
        return left, True

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._report(trainer, force=True)

    def message(self, trainer: Trainer) -> str:
        st = trainer.state
        parts = [f"epoch {min(st.epoch + 1, st.total_epochs)}/{st.total_epochs}"]
        parts.append(f"iteration {st.iteration}/{st.total_iters}")
        value = st.last_metrics.get(self.headline) if self.headline else None
        if isinstance(value, int | float) and math.isfinite(value):
            parts.append(f"val {self.headline} {100 * float(value):.1f}%")
        eta = self.eta(trainer)
        if eta is not None:
            seconds, with_validation = eta
            parts.append(f"ETA {format_seconds(seconds)}" + ("" if with_validation else " before validation"))
        return ", ".join(parts)

    def _report(self, trainer: Trainer, force: bool = False) -> None:
        self._last = time.monotonic()
        st = trainer.state
        frac = st.iteration / st.total_iters if st.total_iters else 0.0
        lo, hi = self.span
        self.ctx.progress(lo + (hi - lo) * min(1.0, frac), self.message(trainer), force=force)


class LossPartsLogger(Callback):
    """Every ``interval`` iterations: the mean of each part of a task's loss (``train/loss_mask``...), from
    its train step's ``take_means()``."""

    order = 11

    def __init__(self, ctx: RunContext, step: Any, interval: int) -> None:
        self.ctx, self.step, self.interval = ctx, step, max(1, interval)

    def on_batch_end(self, trainer: Any, loss: torch.Tensor) -> None:
        if trainer.state.iteration % self.interval == 0:
            self._write(trainer)

    def on_epoch_end(self, trainer: Any) -> None:
        self._write(trainer)

    def _write(self, trainer: Any) -> None:
        means = {f"train/{k}": v for k, v in self.step.take_means().items() if math.isfinite(v)}
        if means:
            self.ctx.log_metrics(trainer.state.iteration, means)
