"""The one training loop. Everything task-specific or optional (logging, evaluation, checkpoints,
cancellation, progress) is a callback; the loop only moves batches through model, loss and optimizer.

Counting: an *iteration* is one batch; ``state.iteration`` (batches done over all epochs) is the metric
step, so a resumed run writes the same steps again, and the database drops the repeats. The schedule is
stepped once per optimizer step (every ``accumulate`` batches, and at the end of each epoch)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from worker.engine.callbacks import Callback
from worker.engine.checkpoint import TRAIN_FORMAT, rng_state, set_rng_state


@dataclass
class TrainState:
    """Where the run is. ``epoch`` counts completed epochs; ``iteration`` completed batches."""

    max_epochs: int | None = None
    max_iters: int | None = None
    iters_per_epoch: int = 0
    epoch: int = 0
    iteration: int = 0
    start_epoch: int = 0  # where this process started (after a resume)
    start_iteration: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    batch_time: float = 0.0
    data_time: float = 0.0
    finished: bool = False

    @property
    def total_iters(self) -> int:
        if self.max_iters is not None:
            return self.max_iters
        return (self.max_epochs or 0) * self.iters_per_epoch

    @property
    def total_epochs(self) -> int:
        if self.max_epochs is not None:
            return self.max_epochs
        return -(-(self.max_iters or 0) // max(1, self.iters_per_epoch))


class Trainer:
    """Trains ``model`` on ``train_loader`` for ``max_epochs`` epochs or ``max_iters`` batches.

    ``amp`` autocasts on CUDA (bfloat16 where supported, else float16 with a gradient scaler);
    ``channels_last`` converts the model and each batch. ``epoch_seed``: when set, the train loader's
    generator is re-seeded with ``epoch_seed + epoch`` before each epoch, so a resumed epoch sees the same
    order as it would have without the interruption.

    ``train_step(model, images, targets)`` replaces ``loss_fn(model(images), targets)`` as a batch's
    training loss: detectors take their targets in the forward pass and compute their own losses. Batches
    may then be lists (of images, of target dicts); their tensors are moved to the device.
    ``loss_fn`` may return None in evaluation (no validation loss: a detector in eval mode has none)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train_loader: DataLoader[Any] | Iterable[Any],
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        device: torch.device | str = "cpu",
        callbacks: Sequence[Callback] = (),
        max_epochs: int | None = None,
        max_iters: int | None = None,
        grad_clip: float | None = None,
        accumulate: int = 1,
        amp: bool = False,
        channels_last: bool = False,
        epoch_seed: int | None = None,
        train_step: Callable[[nn.Module, Any, Any], torch.Tensor] | None = None,
    ) -> None:
        if (max_epochs is None) == (max_iters is None):
            raise ValueError("give max_epochs or max_iters, not both and not neither")
        self.device = torch.device(device)
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.scheduler = scheduler
        self.grad_clip = grad_clip
        self.accumulate = max(1, accumulate)
        self.channels_last = channels_last
        self.epoch_seed = epoch_seed
        self.train_step = train_step
        self.amp = amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        # A scaler only for float16: bfloat16 has float32's range and needs none.
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler("cuda") if self.amp and self.amp_dtype == torch.float16 else None
        )
        self.callbacks = sorted(callbacks, key=lambda c: c.order)
        # Per-batch hooks are called on the hot path: keep only callbacks that override them.
        self._batch_hooks = [c for c in self.callbacks if type(c).on_batch_end is not Callback.on_batch_end]
        self._eval_hooks = [
            c for c in self.callbacks if type(c).on_eval_batch_end is not Callback.on_eval_batch_end
        ]
        self.state = TrainState(
            max_epochs=max_epochs, max_iters=max_iters, iters_per_epoch=_len(train_loader)
        )
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ hooks

    def fire(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> TrainState:
        st = self.state
        st.start_epoch, st.start_iteration = st.epoch, st.iteration
        st.finished = self._done()
        self.model.train()
        self.fire("on_train_start")
        while not st.finished:
            self.fire("on_epoch_start")
            if self.epoch_seed is not None and isinstance(self.train_loader, DataLoader):
                gen = self.train_loader.generator
                if gen is not None:
                    gen.manual_seed(self.epoch_seed + st.epoch)
            self.train_epoch()
            st.epoch += 1
            st.finished = self._done()
            self.fire("on_epoch_end")
        self.fire("on_train_end")
        return st

    def _done(self) -> bool:
        st = self.state
        if st.max_iters is not None:
            return st.iteration >= st.max_iters
        return st.epoch >= (st.max_epochs or 0)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _to_device(self, images: Any, targets: Any) -> tuple[Any, Any]:
        non_blocking = self.device.type == "cuda"
        if not isinstance(images, torch.Tensor):  # lists of images and target dicts (detection)
            return _move(images, self.device, non_blocking), _move(targets, self.device, non_blocking)
        images = images.to(self.device, non_blocking=non_blocking)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # Labels or masks as one tensor, or a task's own maps and outlines (text: a dict of both)
        return images, _move(targets, self.device, non_blocking)

    def train_epoch(self) -> None:
        st = self.state
        n = _len(self.train_loader)
        model, opt, acc = self.model, self.optimizer, self.accumulate
        opt.zero_grad(set_to_none=True)
        t_last = time.perf_counter()
        for i, (images, targets) in enumerate(self.train_loader):
            t_data = time.perf_counter()
            images, targets = self._to_device(images, targets)
            with self._autocast():
                if self.train_step is not None:
                    loss = self.train_step(model, images, targets)
                else:
                    loss = self.loss_fn(model(images), targets)
            scaled = loss / acc if acc > 1 else loss
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()  # type: ignore[no-untyped-call]
            else:
                scaled.backward()  # type: ignore[no-untyped-call]
            last_of_run = st.max_iters is not None and st.iteration + 1 >= st.max_iters
            if (i + 1) % acc == 0 or i + 1 == n or last_of_run:
                self._optimizer_step()
            st.iteration += 1
            now = time.perf_counter()
            st.data_time, st.batch_time, t_last = t_data - t_last, now - t_last, now
            for cb in self._batch_hooks:
                cb.on_batch_end(self, loss.detach())
            if last_of_run:
                break

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        loader: Iterable[Any],
        update: Callable[[torch.Tensor, torch.Tensor], None],
        infer: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> float:
        """Run the model over ``loader`` in eval mode, handing each batch's outputs and targets to
        ``update``; returns the mean loss. Restores train mode. ``infer(model, images, targets)`` replaces
        the plain forward pass (segmentation: sliding windows, logits at the label's size)."""
        was_training = self.model.training
        self.model.eval()
        total, count, no_loss = 0.0, 0, False
        try:
            with torch.inference_mode():
                for images, targets in loader:
                    images, targets = self._to_device(images, targets)
                    with self._autocast():
                        outputs = self.model(images) if infer is None else infer(self.model, images, targets)
                        loss = self.loss_fn(outputs, targets)
                    update(outputs.float() if isinstance(outputs, torch.Tensor) else outputs, targets)
                    if loss is None:
                        no_loss = True
                    else:
                        size = images.shape[0] if isinstance(images, torch.Tensor) else len(images)
                        total += float(loss) * size
                        count += size
                    for cb in self._eval_hooks:
                        cb.on_eval_batch_end(self)
        finally:
            self.model.train(was_training)
        return math.nan if no_loss and not count else total / max(1, count)

    # ------------------------------------------------------------------ checkpoints

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything a resume needs, in ``weights_only``-loadable form (see ``worker.engine.checkpoint``)."""
        st = self.state
        return {
            "format": TRAIN_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": st.epoch,
            "iteration": st.iteration,
            "best_score": st.best_score,
            "rng": rng_state(),
            "extra": {
                "best_epoch": st.best_epoch,
                "last_metrics": st.last_metrics,
                "history": st.history,
                **(extra or {}),
            },
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        if ckpt.get("format") != TRAIN_FORMAT:
            raise ValueError(f"not a training checkpoint (format {ckpt.get('format')!r})")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        st = self.state
        st.epoch, st.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        st.best_score = ckpt.get("best_score")
        extra = ckpt.get("extra") or {}
        st.best_epoch = extra.get("best_epoch")
        st.last_metrics = dict(extra.get("last_metrics") or {})
        st.history = list(extra.get("history") or [])
        if ckpt.get("rng") is not None:
            set_rng_state(ckpt["rng"])


def _move(value: Any, device: torch.device, non_blocking: bool) -> Any:
    """``value`` with every tensor in it (through lists, tuples and dicts) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {k: _move(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_move(v, device, non_blocking) for v in value)
    return value


def _len(loader: Any) -> int:
    try:
        return len(loader)
    except TypeError:
        return 0
