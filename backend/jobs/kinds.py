"""The kinds of job, each with its queue and the typed config it takes. The worker has a handler per kind."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class ProbeConfig(BaseModel):
    """A timed, checkpointed workload that exercises the whole job path: queue, lease, heartbeat, metrics,
    cancel and resume. Used by the health page and by ``benchmarks/dispatch.py``."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=10, ge=1, le=100_000)
    step_seconds: float = Field(default=0.1, ge=0, le=60)
    checkpoint_every: int = Field(default=1, ge=1)
    fail_at_step: int | None = Field(
        default=None, ge=0, description="Raise at this step (tests the failure path)"
    )
    queue: str = Field(default="cpu", pattern="^(cpu|gpu)$")


@dataclass(frozen=True)
class JobKind:
    name: str
    config_model: type[BaseModel]
    default_queue: str
    description: str


JOB_KINDS: dict[str, JobKind] = {
    "probe": JobKind("probe", ProbeConfig, "cpu", ProbeConfig.__doc__ or ""),
}


def queue_for(kind: JobKind, config: BaseModel) -> str:
    return str(getattr(config, "queue", kind.default_queue))
