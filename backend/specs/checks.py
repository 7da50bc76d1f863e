"""Checks of a run config against the database, before anything is queued: the dataset version it names,
the catalog, the model it starts from. Errors name the config field at fault, in the API's 422 shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from backend.auth.scope import owned
from backend.db.tables import Dataset, TrainedModel, User
from backend.errors import StudioError
from backend.specs.catalog import CatalogEntry, OptionSpec, get_entry, list_models
from backend.specs.sections import TaskConfig

Loc = Sequence[str | int]


def field_error(
    loc: Loc, msg: str, *, status: int = 422, code: str = "validation_error", kind: str = "value_error"
) -> StudioError:
    """A 4xx whose detail reads ``config.<field path>: <msg>`` and whose ``errors`` hold the location."""
    path = ".".join(str(p) for p in ("config", *loc))
    return StudioError(
        status,
        f"{path}: {msg}",
        code,
        extra={"errors": [{"loc": ["body", "config", *loc], "msg": msg, "type": kind}]},
    )


def owned_dataset(session: Session, owner: User, dataset_id: int, loc: Loc) -> Dataset:
    """The caller's ready dataset version; 404 (as for a missing one) when it is someone else's."""
    row = session.scalars(owned(Dataset, owner.id).where(Dataset.id == dataset_id)).one_or_none()
    if row is None:
        raise field_error(loc, f"dataset {dataset_id} not found", status=404, code="not_found")
    if row.status != "ready":
        raise field_error(loc, f"dataset {dataset_id} is {row.status}, not ready", kind="not_ready")
    return row


def owned_model(session: Session, owner: User, model_id: int, loc: Loc) -> TrainedModel:
    """The caller's ready model; 404 (as for a missing one) when it is someone else's."""
    row = session.scalars(owned(TrainedModel, owner.id).where(TrainedModel.id == model_id)).one_or_none()
    if row is None:
        raise field_error(loc, f"model {model_id} not found", status=404, code="not_found")
    if row.status != "ready":
        raise field_error(loc, f"model {model_id} is {row.status}, not ready", kind="not_ready")
    return row


def split_images(dataset: Dataset, split: str) -> int:
    """Images in one split (``all``: every image), from the stats recorded when the version landed."""
    stats: dict[str, Any] = dataset.stats or {}
    if split == "all":
        return int(stats.get("images", 0) or 0)
    return int(((stats.get("splits") or {}).get(split) or {}).get("images", 0) or 0)


def require_task(dataset: Dataset, task: str, loc: Loc) -> None:
    if task not in dataset.tasks:
        supported = ", ".join(dataset.tasks) or "no task"
        raise field_error(
            loc, f"dataset {dataset.id} ({dataset.name}) supports {supported}; not {task}", kind="task"
        )


def catalog_entry(name: str, task: str, loc: Loc) -> CatalogEntry:
    """The catalog entry for an architecture of ``task``; names the known ones otherwise."""
    known = ", ".join(e.name for e in list_models(task))
    try:
        entry = get_entry(name)
    except KeyError:
        raise field_error(loc, f"unknown architecture {name!r}; known for {task}: {known}") from None
    if entry.task != task:
        raise field_error(
            loc, f"{name} is a {entry.task} architecture, not {task}; known for {task}: {known}"
        )
    return entry


def _option_problem(spec: OptionSpec, value: Any) -> str | None:
    if spec.type == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if spec.type == "choice":
        return None if value in (spec.choices or []) else f"must be one of {spec.choices}"
    numeric = (int,) if spec.type == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric):
        return f"must be {'an integer' if spec.type == 'int' else 'a number'}"
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum}"
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {spec.maximum}"
    return None


def check_options(entry: CatalogEntry, options: dict[str, Any], loc: Loc) -> None:
    specs = {o.name: o for o in entry.options}
    for name, value in options.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            raise field_error((*loc, name), f"{entry.name} has no option {name!r} (options: {known})")
        problem = _option_problem(spec, value)
        if problem:
            raise field_error((*loc, name), problem)


def check_input_size(entry: CatalogEntry, size: int, loc: Loc) -> None:
    if size < entry.min_input_size:
        raise field_error(
            loc, f"{entry.name} needs an input size of at least {entry.min_input_size}, not {size}"
        )
    if size % entry.input_multiple:
        raise field_error(
            loc, f"{entry.name} needs an input size that is a multiple of {entry.input_multiple}, not {size}"
        )


def check_train(session: Session, owner: User, config: TaskConfig) -> None:
    """Everything about a run that the schema alone cannot know, checked against the caller's data by its
    task's own check. The number of classes and their names always come from the dataset version."""
    from backend.tasks import get_task

    get_task(config.task).check(session, owner, config)


def check_best_metric(config: TaskConfig, known: Sequence[str]) -> None:
    if config.runtime.best_metric not in known:
        raise field_error(
            ("runtime", "best_metric"),
            f"{config.runtime.best_metric!r} is not a {config.task.replace('_', ' ')} metric; choose one "
            f"of {', '.join(known)}",
        )


def require_train_images(dataset: Dataset) -> None:
    if split_images(dataset, "train") == 0:
        raise field_error(
            ("data", "dataset_id"), f"dataset {dataset.id} has no images in its train split", kind="empty"
        )


def check_start_model(session: Session, owner: User, config: TaskConfig, entry: CatalogEntry) -> None:
    """``load_from``: the caller's ready model of the same task, architecture and options that shape it."""
    if config.model.load_from is None:
        return
    loc = ("model", "load_from", "model_id")
    start = owned_model(session, owner, config.model.load_from.model_id, loc)
    if start.task != config.task:
        raise field_error(loc, f"model {start.id} is a {start.task} model, not {config.task}", kind="task")
    if start.architecture != entry.name:
        raise field_error(
            loc, f"model {start.id} is a {start.architecture}; its weights do not fit a {entry.name}"
        )
    started = ((start.config or {}).get("model") or {}).get("options") or {}
    for option in entry.options:
        if option.name != "encoder":
            continue
        mine = config.model.options.get("encoder", option.default)
        theirs = started.get("encoder", option.default)
        if mine != theirs:
            raise field_error(
                loc, f"model {start.id} has encoder {theirs}; its weights do not fit encoder {mine}"
            )
