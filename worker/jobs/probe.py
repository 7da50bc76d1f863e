"""The probe job: timed steps with metrics and checkpoints, resumable, cancellable."""

from __future__ import annotations

import time
from typing import Any

from backend.jobs.kinds import ProbeConfig
from worker.context import JobContext


def run_probe(ctx: JobContext) -> dict[str, Any]:
    cfg = ProbeConfig.model_validate(ctx.config)
    state = ctx.load_json("checkpoint.json") or {"step": 0}
    resumed_from = int(state["step"])
    started = time.monotonic()
    for step in range(resumed_from, cfg.steps):
        ctx.check()
        if cfg.fail_at_step is not None and step == cfg.fail_at_step:
            raise RuntimeError(f"probe failed at step {step} as configured (fail_at_step={cfg.fail_at_step})")
        t0 = time.monotonic()
        time.sleep(cfg.step_seconds)
        ctx.log_metrics(step, {"probe/step_seconds": time.monotonic() - t0, "probe/step": step})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            ctx.flush()  # metrics first: a checkpoint never claims steps whose metrics were not written
            ctx.save_json("checkpoint.json", {"step": step + 1})
        ctx.progress((step + 1) / cfg.steps, f"step {step + 1}/{cfg.steps}")
    return {
        "steps": cfg.steps,
        "resumed_from": resumed_from,
        "attempt": ctx.attempt,
        "seconds": round(time.monotonic() - started, 3),
    }
