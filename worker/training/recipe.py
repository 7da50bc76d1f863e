"""The one training recipe: a run config in, a ready ``TrainedModel`` (with its files and artifacts) out,
for every task. The task's runtime (``worker.tasks``) plans the data, model, loss and metrics; the rest is
here, the same for all: device and seeds, ``load_from``, optimizer and schedule, the callbacks, resume,
the weights kept, the model's record.

Resumable: a re-delivered job finds ``last.pt`` in its work folder and continues from that epoch; a job
whose model row is already ready (killed between saving and finishing) returns that model at once."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from sqlalchemy import delete, select

from backend.datasets.canonical import CanonicalDataset
from backend.datasets.service import load_canonical
from backend.db.session import session_scope
from backend.db.tables import Artifact, Dataset, TrainedModel
from backend.files import atomic_write_bytes
from backend.models.contract import ArtifactKind, model_dir
from backend.settings import get_settings
from backend.specs.config import parse_train_config, to_yaml
from backend.specs.sections import RuntimeSpec, TaskConfig
from backend.tasks import get_task
from worker.context import JobContext
from worker.engine.callbacks import (
    CancelCheck,
    Checkpointer,
    Evaluator,
    MetricsLogger,
    ProgressReporter,
    scalar_metrics,
)
from worker.engine.checkpoint import load_file, save_model_file, weights_from_file
from worker.engine.loop import Trainer
from worker.optim import build_optimizer, build_scheduler
from worker.tasks import get_runtime
from worker.training.worst import attach_items, attach_kept, attach_worst, keep_items, keep_rendered
from worker.zoo import count_params, load_weights

log = logging.getLogger(__name__)

# The share of the progress bar that training fills; saving the model takes the rest.
TRAIN_SPAN = (0.0, 0.97)


@dataclass
class DatasetInfo:
    id: int
    name: str
    root: Path
    canonical: CanonicalDataset


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("runtime.device: cuda was asked for, but this worker has no CUDA device")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def seed_everything(seed: int, deterministic: bool) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    else:
        torch.backends.cudnn.benchmark = True


def load_dataset(dataset_id: int, owner_id: int) -> DatasetInfo:
    """The owner's ready dataset version and its canonical form; errors name the field at fault."""
    with session_scope() as session:
        row = session.get(Dataset, dataset_id)
        if row is None or row.owner_id != owner_id:
            raise ValueError(f"data.dataset_id: dataset {dataset_id} not found")
        if row.status != "ready" or not row.path:
            raise ValueError(f"data.dataset_id: dataset {dataset_id} is {row.status}, not ready")
        canonical = load_canonical(row)
        return DatasetInfo(row.id, row.name, Path(row.path), canonical)


def start_weights(model: torch.nn.Module, model_id: int, owner_id: int, architecture: str) -> dict[str, Any]:
    """Apply ``load_from``: the owner's model's weights, a differing head re-initialised."""
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        if row is None or row.owner_id != owner_id:
            raise ValueError(f"model.load_from.model_id: model {model_id} not found")
        if row.architecture != architecture:
            raise ValueError(
                f"model.load_from.model_id: model {model_id} is a {row.architecture}, not a {architecture}"
            )
        if not row.checkpoint_path:
            raise ValueError(f"model.load_from.model_id: model {model_id} has no checkpoint")
        path = Path(row.checkpoint_path)
    missing, unexpected = load_weights(model, weights_from_file(path))
    return {"model_id": model_id, "missing": missing, "unexpected": unexpected}


def existing_model(job_id: int) -> TrainedModel | None:
    with session_scope() as session:
        row = session.scalars(select(TrainedModel).where(TrainedModel.job_id == job_id)).first()
        if row is not None:
            session.expunge(row)
        return row


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON columns (PostgreSQL's above all) refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def shutdown_loaders(*loaders: Any) -> None:
    """Stop persistent loader workers now rather than whenever the loader is collected: a worker process
    runs many jobs, and an exception's traceback can keep a loader alive."""
    for loader in loaders:
        it = getattr(loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
            loader._iterator = None


def count_flops(model: torch.nn.Module, input_size: int, device: torch.device) -> int | None:
    """FLOPs of one forward pass at ``input_size`` (a multiply-add counts 2); None if it cannot count."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    needs_grad = [p.requires_grad for p in model.parameters()]
    model.eval()
    # Counting needs no gradients; with none required the counter sets no backward hooks (which some
    # transformers models, Deformable DETR among them, trip over).
    model.requires_grad_(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, input_size, input_size, device=device))
        return int(counter.get_total_flops())
    except Exception as exc:  # a count is nice to have, never worth failing a finished run
        log.warning("could not count FLOPs: %s", exc)
        return None
    finally:
        model.train(was_training)
        for param, flag in zip(model.parameters(), needs_grad, strict=True):
            param.requires_grad_(flag)


def record_model(
    ctx: JobContext,
    config: TaskConfig,
    ds: DatasetInfo,
    class_names: list[str],
    weights: dict[str, torch.Tensor],
    summary: dict[str, Any],
    *,
    params: int,
    flops: int | None,
    best_checkpoint: Path,
    inference: dict[str, Any] | None = None,
) -> int:
    """Write ``model.pt`` (the contract in ``worker.engine.checkpoint``), the config and metrics files, and
    the model row with its artifacts. One row per job: a resumed job reuses the row it started."""
    settings = get_settings()
    with session_scope() as session:
        row = session.scalars(select(TrainedModel).where(TrainedModel.job_id == ctx.job_id)).first()
        if row is None:
            row = TrainedModel(
                owner_id=ctx.owner_id,
                name=(config.name or f"{config.model.architecture} on {ds.name}")[:200],
                task=config.task,
                architecture=config.model.architecture,
                job_id=ctx.job_id,
                dataset_id=ds.id,
                class_names=class_names,
                config=config.model_dump(mode="json"),
                status="saving",
                input_size=config.data.input_size,
            )
            session.add(row)
            session.flush()
        model_id = row.id
    folder = model_dir(settings.data_dir, model_id)
    folder.mkdir(parents=True, exist_ok=True)
    ctx.check()
    model_path = folder / "model.pt"
    save_model_file(
        model_path,
        state_dict=weights,
        architecture=config.model.architecture,
        task=config.task,
        class_names=class_names,
        input_size=config.data.input_size,
        mean=config.data.normalize_mean,
        std=config.data.normalize_std,
        options=config.model.options,
        inference=inference,
    )
    best_copy = folder / "best.pt"
    tmp = folder / ".best.pt.tmp"
    shutil.copyfile(best_checkpoint, tmp)
    os.replace(tmp, best_copy)
    config_path = folder / "config.yaml"
    atomic_write_bytes(config_path, to_yaml(config).encode())
    metrics_path = folder / "metrics.json"
    atomic_write_bytes(metrics_path, json.dumps(json_safe(summary), indent=1).encode())
    files = [
        (ArtifactKind.checkpoint.value, "best.pt", best_copy, "application/octet-stream"),
        ("config", "config.yaml", config_path, "application/yaml"),
        (ArtifactKind.report.value, "metrics.json", metrics_path, "application/json"),
    ]
    ctx.check()
    with session_scope() as session:
        row = session.get(TrainedModel, model_id)
        assert row is not None  # noqa: S101 - created above, nobody else deletes a saving model
        session.execute(delete(Artifact).where(Artifact.model_id == model_id))
        for kind, name, path, media in files:
            session.add(
                Artifact(
                    owner_id=ctx.owner_id,
                    job_id=ctx.job_id,
                    model_id=model_id,
                    kind=kind,
                    name=name,
                    path=str(path),
                    size_bytes=path.stat().st_size,
                    media_type=media,
                )
            )
        row.metrics = json_safe(summary)
        row.checkpoint_path = str(model_path)
        row.params = params
        row.flops = flops
        row.status = "ready"
    return model_id


def run_summary(fitted: Fitted, rt: RuntimeSpec, data: Any, **extra: Any) -> dict[str, Any]:
    """What every run records in its model's metrics: the final and best evaluations, the history and
    the counts; ``extra`` adds the task's own entries."""
    state = fitted.state
    return {
        "final": fitted.final_metrics,
        "best": {
            "metric": rt.best_metric,
            "score": state.best_score,
            "epoch": state.best_epoch,
            **fitted.best_metrics,
        },
        **extra,
        "history": state.history,
        "epochs": state.epoch,
        "iterations": state.iteration,
        "train_images": len(data.train),
        "val_images": len(data.val) if data.val is not None else 0,
    }


def run_result(
    fitted: Fitted,
    rt: RuntimeSpec,
    model_id: int,
    started: float,
    device: torch.device,
    notes: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """A train job's result (JSON-safe): the model, how far it ran, its scores; ``extra`` the task's."""
    state = fitted.state
    result: dict[str, Any] = {
        "model_id": model_id,
        "epochs": state.epoch,
        "iterations": state.iteration,
        "resumed_from_epoch": fitted.resumed_from,
        "final": fitted.final_metrics,
        "best": {"metric": rt.best_metric, "score": state.best_score, "epoch": state.best_epoch},
        **extra,
        "seconds": round(time.monotonic() - started, 3),
        "device": str(device),
    }
    if notes:
        result["load_from"] = notes
    return json_safe(result)  # type: ignore[no-any-return]


class Fitted(NamedTuple):
    """What a finished fit leaves: the loop state, where it resumed, and the weights and metrics to keep."""

    state: Any
    resumed_from: int | None
    weights: dict[str, Any]
    final_metrics: dict[str, Any]
    best_metrics: dict[str, Any]
    checkpoint: Path  # best.pt, or last.pt when there was no validation split


def fit(
    ctx: JobContext,
    model: torch.nn.Module,
    optimizer: Any,
    loss_fn: Any,
    scheduler: Any,
    device: torch.device,
    data: Any,
    callbacks: list[Any],
    sched: Any,
    rt: Any,
    train_step: Any = None,
) -> Fitted:
    """Run the one Trainer for any task: resume from ``last.pt`` when a worker died mid-run, train, and
    pick the weights to keep (the best checkpoint's, or the last ones without a validation split).
    ``train_step``: see ``Trainer`` (detectors compute their own losses)."""
    trainer = Trainer(
        model,
        optimizer,
        loss_fn,
        data.train_loader,
        scheduler=scheduler,
        device=device,
        callbacks=callbacks,
        max_epochs=sched.epochs if sched.iterations is None else None,
        max_iters=sched.iterations,
        grad_clip=sched.grad_clip,
        accumulate=sched.accumulate,
        amp=rt.mixed_precision,
        channels_last=rt.channels_last,
        epoch_seed=rt.seed,
        train_step=train_step,
    )
    last = ctx.work_dir / "last.pt"
    resumed_from: int | None = None
    if last.exists():
        trainer.load_state_dict(load_file(last, map_location=device))
        resumed_from = trainer.state.epoch
        ctx.progress(
            trainer.state.iteration / max(1, trainer.state.total_iters) * TRAIN_SPAN[1],
            f"resumed from epoch {resumed_from} (iteration {trainer.state.iteration})",
            force=True,
        )
    try:
        state = trainer.fit()
    finally:
        shutdown_loaders(data.train_loader, data.val_loader)

    ctx.check()
    ctx.flush()
    ctx.progress(TRAIN_SPAN[1], "saving the model", force=True)
    best_path = ctx.work_dir / "best.pt"
    final_metrics = scalar_metrics(state.last_metrics) if state.last_metrics else {}
    if best_path.exists():
        best = load_file(best_path)
        weights = best["model"]
        best_metrics = dict((best.get("extra") or {}).get("last_metrics") or {})
    else:  # no validation split: the last weights are the model
        weights, best_metrics = model.state_dict(), dict(state.last_metrics)
    checkpoint = best_path if best_path.exists() else last
    return Fitted(state, resumed_from, weights, final_metrics, best_metrics, checkpoint)


def run_train(ctx: JobContext) -> dict[str, Any]:
    """The train job: its config's task plans the run, this recipe runs and records it."""
    return train(ctx, parse_train_config(ctx.config))


def train(ctx: JobContext, config: TaskConfig) -> dict[str, Any]:
    """Train, then record the model. ``ctx`` is the job's context (a worker's, or ``train_cli``'s)."""
    started = time.monotonic()
    done = existing_model(ctx.job_id)
    if done is not None and done.status == "ready":
        attach_kept(ctx, done.id)  # stopped between recording the model and attaching its worst images
        return {"model_id": done.id, "resumed": "model already recorded", "metrics": done.metrics}
    runtime = get_runtime(config.task)
    rt, sched = config.runtime, config.schedule
    ds = load_dataset(config.data.dataset_id, ctx.owner_id)  # type: ignore[attr-defined]
    device = resolve_device(rt.device)
    seed_everything(rt.seed, rt.deterministic)
    plan = runtime.plan(ctx, config, ds, device)
    config, model = plan.config, plan.model
    notes: dict[str, Any] = {}
    if config.model.load_from is not None:
        notes = start_weights(model, config.model.load_from.model_id, ctx.owner_id, config.model.architecture)
        if plan.after_load_from is not None:
            plan.after_load_from()
        ctx.progress(
            0.0,
            f"loaded weights of model {notes['model_id']}: {len(notes['missing'])} missing keys "
            f"({', '.join(notes['missing'][:4]) or 'none'}), {len(notes['unexpected'])} unexpected",
            force=True,
        )
    model.to(device)
    if isinstance(plan.loss, torch.nn.Module):
        plan.loss.to(device)
    optimizer = build_optimizer(model, sched)
    steps_per_epoch = max(1, -(-len(plan.data.train_loader) // sched.accumulate))
    if sched.iterations is not None:
        total_steps = -(-sched.iterations // sched.accumulate)
    else:
        total_steps = (sched.epochs or 1) * steps_per_epoch
    scheduler = build_scheduler(optimizer, sched, total_steps, steps_per_epoch)
    callbacks: list[Any] = [
        CancelCheck(ctx),
        MetricsLogger(ctx, rt.log_interval),
        *plan.callbacks,
        Checkpointer(ctx, ctx.work_dir, rt.checkpoint_interval, rt.best_metric, extra=plan.checkpoint_extra),
        ProgressReporter(
            ctx,
            span=TRAIN_SPAN,
            headline=get_task(config.task).headline,
            eval_interval=rt.eval_interval if plan.data.val_loader is not None and plan.metrics else 0,
        ),
    ]
    if plan.data.val_loader is not None and plan.metrics is not None:
        callbacks.append(
            Evaluator(ctx, plan.data.val_loader, plan.metrics, rt.eval_interval, infer=plan.infer)
        )
    fitted = fit(
        ctx,
        model,
        optimizer,
        plan.loss or no_loss,
        scheduler,
        device,
        plan.data,
        callbacks,
        sched,
        rt,
        train_step=plan.train_step,
    )
    finished = runtime.finish(ctx, plan, fitted, device)
    if finished.drawn:
        keep_rendered(ctx, finished.drawn)
    if finished.items:
        keep_items(ctx, ds.id, "val", finished.items)
    summary = run_summary(fitted, rt, plan.data, **finished.summary)
    model_id = record_model(
        ctx,
        config,
        ds,
        plan.class_names,
        fitted.weights,
        summary,
        params=count_params(model),
        flops=count_flops(model, plan.flops_size, device),
        best_checkpoint=fitted.checkpoint,
        inference=plan.inference,
    )
    if finished.drawn:
        attach_worst(ctx.owner_id, ctx.job_id, model_id, finished.drawn)
    if finished.items:
        attach_items(ctx, model_id)
    return run_result(fitted, rt, model_id, started, device, notes, **finished.result)


def no_loss(outputs: Any, targets: Any) -> None:
    """A model whose train step computes its own loss (a detector) has no validation loss."""
    return None
