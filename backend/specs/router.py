"""The config contract over HTTP: the catalog, the run config's JSON Schema, validation and YAML."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import ValidationError

from backend.datasets.canonical import Task
from backend.deps import CurrentUser, SessionDep, SettingsDep
from backend.errors import StudioError
from backend.jobs.service import validation_error
from backend.specs import catalog_service
from backend.specs.checks import check_train, owned_dataset
from backend.specs.config import (
    CONFIG_BY_TASK,
    load_yaml_mapping,
    parse_train_config,
    to_yaml,
    train_config_schema,
)
from backend.specs.recipes import dataset_facts, presets, recommended, training_machine
from backend.specs.schemas import CatalogOut, Preset, PresetsOut, TaskOut, ValidatedConfig
from backend.specs.sections import TaskConfig
from backend.tasks import TASKS

router = APIRouter(prefix="/api", tags=["specs"])

YAML_MEDIA_TYPE = "application/yaml"
ConfigBody = Annotated[
    dict[str, Any],
    Body(
        description="A run config (see GET /api/schema/train-config), or {'yaml': '...'} holding one",
        examples=[{"data": {"dataset_id": 1}, "model": {"architecture": "resnet18"}}],
    ),
]


@router.get("/catalog")
def get_catalog(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, task: Task | None = None
) -> CatalogOut:
    """Architectures (optionally of one task) with their options, input sizes, parameters and FLOPs.

    Counts come from a cache the worker fills; until it has, they are null and ``stats_pending`` is true."""
    return catalog_service.catalog(session, user, settings.data_dir, task)


@router.get("/tasks")
def list_tasks() -> list[TaskOut]:
    """Every task the studio trains, in the registry's order, with what its models' pages show."""
    return [
        TaskOut(
            name=t.name,
            title=t.title,
            description=t.description,
            metrics=list(t.metrics),
            headline=t.headline,
            summary=list(t.summary),
            columns=list(t.columns),
            explain=t.explain,
            cam_methods=list(t.cam_methods),
            explain_views=list(t.explain_views),
            background=t.background,
            model_outputs=t.model_outputs,
            drawn=t.drawn,
            simple_fields=list(t.simple_fields),
        )
        for t in TASKS.values()
    ]


@router.get("/schema/train-config")
def get_train_config_schema(
    task: Annotated[str, Query(max_length=40, description="A task the studio trains, or 'all'")] = (
        "classification"
    ),
) -> dict[str, Any]:
    """The JSON Schema of one task's run config (the browser's training form is generated from it);
    ``task=all``: the union of every task's, discriminated by ``task``."""
    if task != "all" and task not in CONFIG_BY_TASK:
        known = ", ".join([*CONFIG_BY_TASK, "all"])
        raise StudioError(422, f"task: the studio trains {known}; not {task!r}", "unknown_task")
    return train_config_schema(None if task == "all" else task)


def _parse(body: dict[str, Any]) -> TaskConfig:
    data = body
    if set(body) == {"yaml"}:
        text = body["yaml"]
        if not isinstance(text, str):
            raise StudioError(
                422, "yaml: must be a string", "validation_error", extra=_yaml_loc("not a string")
            )
        try:
            data = load_yaml_mapping(text)
        except ValueError as exc:
            raise StudioError(422, f"yaml: {exc}", "validation_error", extra=_yaml_loc(str(exc))) from exc
    try:
        return parse_train_config(data)
    except ValidationError as exc:
        raise validation_error(exc, ("body", "config"), data) from exc


def _yaml_loc(msg: str) -> dict[str, Any]:
    return {"errors": [{"loc": ["body", "yaml"], "msg": msg, "type": "yaml"}]}


@router.post("/configs/validate")
def validate_config(body: ConfigBody, user: CurrentUser, session: SessionDep) -> ValidatedConfig:
    """Check a run config as ``POST /api/jobs`` would (schema, catalog, the dataset version it names)
    without queueing anything; answers it normalised (defaults filled in) and as YAML."""
    config = _parse(body)
    check_train(session, user, config)
    return ValidatedConfig(config=config.model_dump(mode="json"), yaml=to_yaml(config))


@router.get("/configs/presets")
def get_presets(
    user: CurrentUser,
    session: SessionDep,
    task: Annotated[str, Query(max_length=40, description="A task the studio trains")],
    dataset_id: Annotated[int, Query(description="The dataset version the run trains on")],
    architecture: Annotated[str | None, Query(max_length=100, description="Default: the preselected")] = None,
) -> PresetsOut:
    """ "Quick look", "Balanced" and "Best" for one architecture on this machine and this dataset version,
    each as the config fields it sets (dotted paths): epochs from the train split's size, evaluation
    spread over the run, the input side from the entry, the machine and the pictures' size."""
    spec = TASKS.get(task)
    if spec is None:
        raise StudioError(422, f"task: the studio trains {', '.join(TASKS)}; not {task!r}", "unknown_task")
    dataset = owned_dataset(session, user, dataset_id, ("data", "dataset_id"))
    device = training_machine().device
    name = architecture or recommended(spec, device)[0]
    entry = next((e for e in spec.entries if e.name == name), None)
    if entry is None:
        known = ", ".join(e.name for e in spec.entries)
        raise StudioError(422, f"architecture: {task} has no {name!r}; it has {known}", "validation_error")
    facts = dataset_facts(dataset.stats or {})
    return PresetsOut(presets=[Preset(**p) for p in presets(spec, entry, device, facts)])


@router.post("/configs/yaml", response_class=Response, responses={200: {"content": {YAML_MEDIA_TYPE: {}}}})
def config_to_yaml(
    body: ConfigBody,
    user: CurrentUser,
    filename: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
) -> Response:
    """A run config as YAML text (schema-checked, defaults filled in); ``filename`` makes it a download."""
    text = to_yaml(_parse(body))
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else None
    return Response(text, media_type=YAML_MEDIA_TYPE, headers=headers)
