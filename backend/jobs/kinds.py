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


class ImportDatasetConfig(BaseModel):
    """Import an uploaded archive into a dataset (created by ``POST /api/datasets``, not directly)."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: int
    upload: str = Field(pattern=r"^[0-9a-f]{32}\.zip$", description="File name in the uploads folder")
    filename: str = Field(max_length=255, description="The name the user uploaded it under")
    format: str = "auto"
    seed: int = 0
    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})


@dataclass(frozen=True)
class JobKind:
    name: str
    config_model: type[BaseModel]
    default_queue: str
    description: str
    user_creatable: bool = True  # False: only the endpoint that owns the work may create it


JOB_KINDS: dict[str, JobKind] = {
    "probe": JobKind("probe", ProbeConfig, "cpu", ProbeConfig.__doc__ or ""),
    "import_dataset": JobKind(
        "import_dataset", ImportDatasetConfig, "cpu", ImportDatasetConfig.__doc__ or "", user_creatable=False
    ),
}


def queue_for(kind: JobKind, config: BaseModel) -> str:
    return str(getattr(config, "queue", kind.default_queue))
