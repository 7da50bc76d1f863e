"""The estimate job: a run config's first training iterations timed on this worker, as the training lane
would run them (the task's own data, model, loss and step; the training lane's thread count), and one
validation batch timed in eval mode. Nothing is saved: no checkpoint, no model."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import Any

import torch
from sqlalchemy import func, select

from backend.db.session import session_scope
from backend.db.tables import Job, JobStatus
from backend.jobs.kinds import EstimateRunConfig
from backend.settings import get_settings
from backend.specs.config import parse_train_config
from backend.supervisor import cores
from worker.context import JobContext
from worker.engine.callbacks import Callback, CancelCheck
from worker.engine.loop import Trainer
from worker.optim import build_optimizer
from worker.tasks import get_runtime
from worker.training.recipe import load_dataset, no_loss, resolve_device, seed_everything, shutdown_loaders

WARMUP = 1  # the first iteration (allocations, cudnn's search, the loader's first batch) is not timed


def _rss_mb() -> float:
    """The process's resident memory now (Linux), in MiB; 0 where /proc is not there."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _training_running() -> bool:
    with session_scope() as session:
        n = session.scalar(
            select(func.count()).where(Job.queue == "training", Job.status == JobStatus.running)
        )
    return bool(n)


class _Timer(Callback):
    """Each iteration's time and data time after the warm-up; peak memory; stops the run once
    ``iterations`` are timed or ``max_seconds`` have gone by (at least one timed)."""

    order = 5

    def __init__(
        self, ctx: JobContext, iterations: int, max_seconds: float, device: torch.device, rss_base: float
    ) -> None:
        self.ctx, self.iterations, self.max_seconds, self.device = ctx, iterations, max_seconds, device
        self.times: list[float] = []
        self.data: list[float] = []
        self.rss_base = rss_base  # before the data and the model were made
        self.rss_peak = max(rss_base, _rss_mb())
        self.started = time.monotonic()
        self.stopping = False

    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        st = trainer.state
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.rss_peak = max(self.rss_peak, _rss_mb())
        if st.iteration > WARMUP and not self.stopping:
            self.times.append(st.batch_time)
            self.data.append(st.data_time)
        done = len(self.times)
        self.ctx.progress(0.1 + 0.8 * done / self.iterations, f"timed {done}/{self.iterations} iterations")
        if self.stopping:
            return
        if done >= self.iterations or (done and time.monotonic() - self.started > self.max_seconds):
            self.stopping = True
            st.max_iters = st.iteration + 1  # the loop ends after the next one (not timed)


@contextlib.contextmanager
def _threads(n: int) -> Any:
    """torch's thread count for the block: the training lane's, not this light worker's."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _eval_seconds(trainer: Trainer, plan: Any, batches: int = 2) -> float | None:
    """One evaluation over the val split, as the run's Evaluator makes it (forward, loss, metric update):
    the time of its first ``batches`` batches scaled to its length."""
    loader = plan.data.val_loader
    if loader is None or len(loader) == 0 or plan.metrics is None:
        return None
    plan.metrics.reset()
    t0 = time.perf_counter()
    trainer.evaluate(itertools.islice(loader, batches), plan.metrics.update, plan.infer)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    taken = min(batches, len(loader))
    return (time.perf_counter() - t0) / taken * len(loader)


def run_estimate(ctx: JobContext) -> dict[str, Any]:
    job = EstimateRunConfig.model_validate(ctx.config)
    config = parse_train_config(job.config)
    settings = get_settings()
    busy = _training_running()
    ds = load_dataset(config.data.dataset_id, ctx.owner_id)  # type: ignore[attr-defined]
    device = resolve_device(config.runtime.device)
    seed_everything(config.runtime.seed, False)
    ctx.progress(0.02, "preparing the data and the model", force=True)
    rss_base = _rss_mb()
    with _threads(settings.training_threads or cores()):
        plan = get_runtime(config.task).plan(ctx, config, ds, device)
        model = plan.model.to(device)
        if isinstance(plan.loss, torch.nn.Module):
            plan.loss.to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timer = _Timer(ctx, job.iterations, job.max_seconds, device, rss_base)
        trainer = Trainer(
            model,
            build_optimizer(model, config.schedule),
            plan.loss or no_loss,
            plan.data.train_loader,
            device=device,
            callbacks=[CancelCheck(ctx), timer],
            max_iters=WARMUP + job.iterations + 1,
            accumulate=config.schedule.accumulate,
            amp=config.runtime.mixed_precision,
            channels_last=config.runtime.channels_last,
            train_step=plan.train_step,
        )
        try:
            trainer.fit()
            ctx.progress(0.92, "timing an evaluation batch", force=True)
            eval_seconds = _eval_seconds(trainer, plan)
        finally:
            shutdown_loaders(plan.data.train_loader, plan.data.val_loader)
    if not timer.times:
        raise RuntimeError("no training iteration ran: the train split gives no batch")
    if device.type == "cuda":
        memory, note = torch.cuda.max_memory_allocated(device) / 2**20, "peak GPU memory (allocated)"
    else:
        memory, note = timer.rss_peak - timer.rss_base, "memory the run added to the process"
    return {
        "device": device.type,
        "seconds_per_iteration": sum(timer.times) / len(timer.times),
        "data_seconds_per_iteration": sum(timer.data) / len(timer.data),
        "timed_iterations": len(timer.times),
        "memory_mb": round(memory, 1),
        "memory_note": note,
        "iterations_per_epoch": len(plan.data.train_loader),
        "eval_seconds": eval_seconds,
        "busy": busy or _training_running(),
        "threads": settings.training_threads or cores(),
    }
