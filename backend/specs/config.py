"""``TrainConfig``: one typed, versioned description of a training run (model, data, schedule, runtime,
loss), one member per task of ``backend.tasks.TASKS``, told apart by ``task``. Its JSON Schema drives the
browser's form; it round-trips through YAML; ``num_classes`` and class names are never in it: they come
from the dataset version the run names."""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from backend.specs.recipes import Device, training_machine, with_defaults
from backend.specs.sections import TaskConfig
from backend.tasks import TASKS

# Every task's config class (tasks may share one: object detection and instance segmentation do).
CONFIG_BY_TASK: dict[str, type[BaseModel]] = {name: spec.config for name, spec in TASKS.items()}
_CONFIGS = tuple(dict.fromkeys(CONFIG_BY_TASK.values()))
# The union, discriminated by ``task``; built from the registry, so a new task joins it by being listed.
_UNION = functools.reduce(operator.or_, _CONFIGS)
TrainConfig: Any = Annotated[_UNION, Field(discriminator="task", description="A training run, by task")]
DEFAULT_TASK = "classification"  # a config without ``task`` (written before there were other tasks)


# Reads ``task`` alone, so an unknown one is pydantic's own error at ``task``, naming the known ones.
_TaskOnly = create_model(
    "_TaskOnly",
    __config__=ConfigDict(extra="ignore"),
    task=(Literal[tuple(CONFIG_BY_TASK)], DEFAULT_TASK),  # type: ignore[arg-type]
)


def parse_train_config(data: dict[str, Any], device: Device | None = None) -> TaskConfig:
    """The config of ``data["task"]``, with what it does not give taken from its architecture's catalog
    entry and the machine (``backend.specs.recipes``; ``device`` None: the training lane's). Dispatched
    by hand rather than through the union, so validation errors name ``data.input_size``, not
    ``semantic_segmentation.data...``."""
    task = _TaskOnly.model_validate(data if isinstance(data, dict) else {}).task  # type: ignore[attr-defined]
    if isinstance(data, dict):
        data = with_defaults(data, TASKS[task], device or training_machine().device)
    parsed: TaskConfig = CONFIG_BY_TASK[task].model_validate(data)  # type: ignore[assignment]
    return parsed


def train_config_schema(task: str | None = None) -> dict[str, Any]:
    """JSON Schema of one task's config, or (``task`` None) of the union, discriminated by ``task``."""
    if task is not None:
        return CONFIG_BY_TASK[task].model_json_schema()
    return TypeAdapter(TrainConfig).json_schema()


def to_yaml(config: BaseModel | TaskConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


MAX_YAML_CHARS = 256 * 1024


def load_yaml_mapping(text: str) -> dict[str, Any]:
    """YAML text (safe loader only) as a mapping; ``ValueError`` naming the line otherwise.

    Anchors and aliases are refused: a config never needs them, and nested aliases ("billion laughs")
    would make validation walk an exponentially large tree."""
    if len(text) > MAX_YAML_CHARS:
        raise ValueError(f"the YAML is {len(text)} characters; the limit is {MAX_YAML_CHARS}")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                raise ValueError(f"line {line}: anchors and aliases are not allowed in a config")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ValueError(f"{where}{getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("a run config is a YAML mapping")
    return data


def from_yaml(text: str) -> TaskConfig:
    """Parse YAML (safe loader only) into a TrainConfig; errors name the field."""
    return parse_train_config(load_yaml_mapping(text))
