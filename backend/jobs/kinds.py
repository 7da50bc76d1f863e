"""The kinds of job, each with its queue and the typed config it takes. The worker has a handler per kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from backend.db.tables import User
from backend.models import checks as model_checks
from backend.models.contract import MODULE_PATH
from backend.settings import LEGACY_QUEUES
from backend.specs.checks import check_train
from backend.specs.config import DEFAULT_TASK, parse_train_config, train_config_schema
from backend.tasks import TASKS, get_export_format

Split = Literal["train", "val", "test"]


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
    queue: str = Field(
        default="light",
        pattern="^(training|light|cpu|gpu)$",
        description="The lane it runs on (cpu and gpu, the lanes' old names, mean light and training)",
    )

    @field_validator("queue")
    @classmethod
    def _lane(cls, value: str) -> str:
        return LEGACY_QUEUES.get(value, value)


class ImportDatasetConfig(BaseModel):
    """Import an uploaded archive into a dataset (created by ``POST /api/datasets``, not directly)."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: int
    upload: str = Field(pattern=r"^[0-9a-f]{32}\.zip$", description="File name in the uploads folder")
    filename: str = Field(max_length=255, description="The name the user uploaded it under")
    format: str = "auto"
    seed: int = 0
    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    skip_bad_shapes: bool = Field(
        default=False,
        description="Leave out each shape with an error (listed in the report) instead of failing",
    )


class _JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluateConfig(_JobConfig):
    """Evaluate a trained model on one split of a dataset version with the same classes.

    The worker writes metrics (``accuracy/top1``, ``accuracy/top5``, per-class precision/recall/F1, the
    confusion matrix) to the job's result and its metric rows, and a report artifact."""

    model_id: int
    dataset_id: int
    split: Split = "test"


class PredictConfig(_JobConfig):
    """Predict every image of one split (``all``: every image) of a dataset version; the worker writes
    a CSV artifact (kind ``predictions``: file, split, label, then top-k classes and scores)."""

    model_id: int
    dataset_id: int
    split: Split | Literal["all"] = "test"
    top_k: int = Field(default=5, ge=1, le=100)


class CamConfig(_JobConfig):
    """Grad-CAM overlays for the first ``limit`` images of a split; one PNG artifact (kind ``cam``) each."""

    model_id: int
    dataset_id: int
    split: Split = "test"
    target_class: str | None = Field(
        default=None, max_length=200, description="A class name of the model; default: the top prediction"
    )
    target_layer: str | None = Field(
        default=None, max_length=200, pattern=MODULE_PATH, description="Module path; default: the catalog's"
    )
    limit: int = Field(default=16, ge=1, le=500)


class ExportConfig(_JobConfig):
    """Export a model to TorchScript or ONNX (created by ``GET /api/models/{id}/export``).

    The worker checks the file loads back and gives the same outputs, then records it as an artifact of
    the model with kind ``export_torchscript`` / ``export_onnx``; only a verified file is recorded."""

    model_id: int
    format: Literal["torchscript", "onnx"]


class ExportDatasetConfig(_JobConfig):
    """Write a dataset version as a zip in one of ``backend.tasks.EXPORTS`` (created by
    ``POST /api/datasets/{id}/exports`` when the zip is not built yet); then ``GET /api/datasets/{id}/export``
    downloads it."""

    dataset_id: int
    format: str = Field(max_length=40, description="A name of backend.tasks.EXPORTS: voc, coco, ...")

    @field_validator("format")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            get_export_format(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return value


class AnalyzeCatalogConfig(_JobConfig):
    """Count parameters and FLOPs of catalog entries at their default input size and write
    ``DATA_DIR/catalog_stats.json`` (``backend.specs.stats.write_catalog_stats``). Created by
    ``GET /api/catalog`` when the file lacks entries."""

    architectures: list[str] | None = Field(default=None, description="None: every entry")


class ImportModelConfig(_JobConfig):
    """Verify an uploaded checkpoint (created by ``POST /api/models``): ``torch.load(weights_only=True)``
    or safetensors only, never unpickling code; the state dict must fit the architecture with the
    model's classes. Then the model row becomes ``ready`` (with params and FLOPs) or ``failed`` (error)."""

    model_id: int


class AugmentPreviewConfig(_JobConfig):
    """Apply a run config's training pipeline to a few images of its dataset (created by
    ``POST /api/configs/preview``, before anything is trained). Result: ``{"images": [{"artifact_id",
    "label", "source"}]}``, each a PNG artifact (kind ``preview``)."""

    config: dict[str, Any]
    count: int = Field(default=6, ge=1, le=16)
    seed: int = Field(default=0, ge=0)


class EstimateRunConfig(_JobConfig):
    """Time a few training iterations of a run config on the worker (created by
    ``POST /api/configs/estimate``): seconds per iteration, data time, memory, iterations per epoch and
    one evaluation's time. ``key`` names what the measure depends on; a later ask with the same key reads
    this job's result instead of measuring again."""

    config: dict[str, Any]
    key: str = Field(pattern=r"^[0-9a-f]{64}$")
    iterations: int = Field(default=6, ge=2, le=100, description="Timed iterations after one warm-up")
    max_seconds: float = Field(default=30.0, gt=0, le=600, description="Stop timing after this long")


Check = Callable[[Session, User, Any], None]


@dataclass(frozen=True)
class JobKind:
    name: str
    config_model: type[BaseModel]
    default_queue: str
    description: str
    user_creatable: bool = True  # False: only the endpoint that owns the work may create it
    # Called by create_job with the parsed config before anything is written; raises a StudioError
    # (422 naming the config field, 404 for another user's ids) when the job cannot run.
    check: Check | None = None
    # A config that is a union (train: one model per task) parses and describes itself through these.
    parser: Callable[[dict[str, Any]], Any] | None = None
    schema: Callable[[], dict[str, Any]] | None = None
    # Work the studio does for its own pages (catalog counts, previews, estimates): left out of the jobs
    # list unless asked for, so the list shows the user's runs, imports and exports.
    background: bool = False

    def parse(self, config: dict[str, Any]) -> BaseModel:
        """The typed config; raises pydantic's ValidationError naming the field."""
        if self.parser is not None:
            parsed: BaseModel = self.parser(config)
            return parsed
        return self.config_model.model_validate(config)

    def json_schema(self) -> dict[str, Any]:
        return self.schema() if self.schema is not None else self.config_model.model_json_schema()


def _kind(
    name: str,
    config: type[BaseModel],
    queue: str,
    *,
    internal: bool = False,
    check: Check | None = None,
    parser: Callable[[dict[str, Any]], Any] | None = None,
    schema: Callable[[], dict[str, Any]] | None = None,
    background: bool = False,
) -> JobKind:
    doc = config.__doc__ or ""
    return JobKind(name, config, queue, doc, not internal, check, parser, schema, background)


JOB_KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        _kind("probe", ProbeConfig, "light"),
        _kind("import_dataset", ImportDatasetConfig, "light", internal=True),
        _kind(
            "train",
            TASKS[DEFAULT_TASK].config,
            "training",
            check=check_train,
            parser=parse_train_config,
            schema=train_config_schema,
        ),
        _kind("evaluate", EvaluateConfig, "training", check=model_checks.check_evaluate),
        _kind("predict", PredictConfig, "training", check=model_checks.check_predict),
        _kind("cam", CamConfig, "training", check=model_checks.check_cam),
        _kind("export", ExportConfig, "light", internal=True, check=model_checks.check_export),
        _kind("export_dataset", ExportDatasetConfig, "light", internal=True),
        _kind("analyze_catalog", AnalyzeCatalogConfig, "light", internal=True, background=True),
        _kind("augment_preview", AugmentPreviewConfig, "light", internal=True, background=True),
        _kind("estimate_run", EstimateRunConfig, "light", internal=True, background=True),
        _kind("import_model", ImportModelConfig, "light", internal=True, check=model_checks.check_import),
    )
}


BACKGROUND_KINDS = tuple(k.name for k in JOB_KINDS.values() if k.background)


def queue_for(kind: JobKind, config: BaseModel) -> str:
    return str(getattr(config, "queue", kind.default_queue))
