"""The studio's training engine (``worker.engine.loop.Trainer`` with its per-iteration callbacks) against a
hand-written PyTorch loop: same model, data, optimizer, schedule and seed, in one run.

First both run the same first iterations and their losses must agree to 1e-5 (the engine adds no hidden
work to the maths). Then each is timed ``--repeat`` times, alternating, and the median time per
iteration is compared; the target is a ratio of at most 1.03. The ratio uses each side's best run (as
``timeit`` advises: other load on the machine only ever adds time); medians are printed beside it.

The engine runs with CancelCheck, MetricsLogger (log_interval 10) and ProgressReporter reporting to an
in-memory context: the callbacks that run every iteration. Evaluation and checkpoints run at epoch ends,
which a hand-written loop does too, so the timed runs stay inside one epoch.

    .venv/bin/python benchmarks/engine_overhead.py [--arch tiny_cnn] [--size 64] [--batch 32]
        [--iters 60] [--repeat 5] [--device cpu|cuda] [--amp] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.specs.sections import ScheduleSpec  # noqa: E402
from backend.tasks.classification import LossSpec  # noqa: E402
from worker.engine.callbacks import Callback, CancelCheck, MetricsLogger, ProgressReporter  # noqa: E402
from worker.engine.loop import Trainer  # noqa: E402
from worker.losses import build_loss  # noqa: E402
from worker.optim import build_optimizer, build_scheduler  # noqa: E402
from worker.zoo import build_model  # noqa: E402


class MemoryContext:
    """A JobContext stand-in: metrics buffered in memory, progress kept, nothing to cancel."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []
        self.last_progress: tuple[float, str | None] = (0.0, None)

    def check(self) -> None:
        return None

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        self.last_progress = (fraction, message)

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        self.rows.extend((step, k, float(v)) for k, v in values.items())

    def flush(self) -> None:
        return None


class RecordLoss(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, trainer: Trainer, loss: torch.Tensor) -> None:
        self.losses.append(float(loss))


def _setup(args: argparse.Namespace, n_iters: int) -> dict[str, Any]:
    torch.manual_seed(0)
    n = args.batch * n_iters
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    model = build_model(args.arch, 10, {}).to(args.device)
    spec = ScheduleSpec(optimizer="adamw", lr=1e-3, policy="cosine", warmup_iters=5, epochs=1)
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, spec, n_iters, n_iters)
    loader = DataLoader(
        TensorDataset(x, y), batch_size=args.batch, shuffle=True, generator=torch.Generator().manual_seed(2)
    )
    loss = build_loss(LossSpec(), 10).to(args.device)
    return {"model": model, "opt": opt, "sched": sched, "loader": loader, "loss": loss}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def hand_loop(args: argparse.Namespace, n_iters: int, record: bool = False) -> tuple[float, list[float]]:
    """What one would write by hand: the reference."""
    s = _setup(args, n_iters)
    model, opt, sched, loader, loss_fn = s["model"], s["opt"], s["sched"], s["loader"], s["loss"]
    amp = args.amp and args.device.startswith("cuda")
    model.train()
    losses: list[float] = []
    _sync(args.device)
    t0 = time.perf_counter()
    for images, targets in loader:
        images = images.to(args.device, non_blocking=True)
        targets = targets.to(args.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(images), targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        if record:
            losses.append(float(loss.detach()))
    _sync(args.device)
    return (time.perf_counter() - t0) / n_iters, losses


def engine_loop(args: argparse.Namespace, n_iters: int, record: bool = False) -> tuple[float, list[float]]:
    s = _setup(args, n_iters)
    ctx = MemoryContext()
    callbacks: list[Callback] = [CancelCheck(ctx), MetricsLogger(ctx, 10), ProgressReporter(ctx)]
    recorder = RecordLoss()
    if record:
        callbacks.append(recorder)
    trainer = Trainer(
        s["model"],
        s["opt"],
        s["loss"],
        s["loader"],
        scheduler=s["sched"],
        device=args.device,
        callbacks=callbacks,
        max_epochs=1,
        amp=args.amp,
    )
    _sync(args.device)
    t0 = time.perf_counter()
    trainer.fit()
    _sync(args.device)
    assert ctx.rows, "the engine logged no metrics"  # a benchmark sanity check
    return (time.perf_counter() - t0) / n_iters, recorder.losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny_cnn")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True

    # 1. Same maths: the first iterations' losses agree.
    check = 10
    _, ref = hand_loop(args, check, record=True)
    _, got = engine_loop(args, check, record=True)
    worst = max(abs(a - b) for a, b in zip(ref, got, strict=True))
    print(f"losses, first {check} iterations: max |engine - hand| = {worst:.2e}")
    if worst > 1e-5:
        raise SystemExit(f"losses differ by {worst:.2e} > 1e-5")

    # 2. Time per iteration, alternating so that drift (turbo, other load) hits both alike.
    hand_loop(args, min(10, args.iters))  # warm-up: allocator, kernels, cudnn autotune
    engine_loop(args, min(10, args.iters))
    hand_t: list[float] = []
    engine_t: list[float] = []
    for _ in range(args.repeat):
        hand_t.append(hand_loop(args, args.iters)[0])
        engine_t.append(engine_loop(args, args.iters)[0])
    h, e = min(hand_t), min(engine_t)
    hm, em = statistics.median(hand_t), statistics.median(engine_t)
    print(
        f"{args.arch} {args.size}px batch {args.batch} on {args.device}{' amp' if args.amp else ''}, "
        f"{args.iters} iterations x {args.repeat}, torch threads {torch.get_num_threads()}"
    )
    print(
        "runs (ms/iteration), hand:",
        [round(1000 * t, 1) for t in hand_t],
        "engine:",
        [round(1000 * t, 1) for t in engine_t],
    )
    print(f"hand-written loop: {1000 * h:8.2f} ms/iteration best, {1000 * hm:8.2f} median")
    print(f"studio engine:     {1000 * e:8.2f} ms/iteration best, {1000 * em:8.2f} median")
    print(f"ratio engine/hand: {e / h:.3f} best, {em / hm:.3f} median  (target <= 1.03)")


if __name__ == "__main__":
    main()
