"""Checks of a run config against the database, before anything is queued: the dataset version it names,
the catalog, the model it starts from. Errors name the config field at fault, in the API's 422 shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from backend.auth.scope import owned
from backend.datasets.canonical import Task
from backend.db.tables import Dataset, TrainedModel, User
from backend.errors import StudioError
from backend.specs.catalog import CatalogEntry, OptionSpec, get_entry, list_models
from backend.specs.config import AnyTrainConfig, ClassificationConfig, DetectionConfig, SegmentationConfig

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
    if entry.task != Task(task):
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


def check_train(session: Session, owner: User, config: AnyTrainConfig) -> None:
    """Everything about a run that the schema alone cannot know, checked against the caller's data.

    The number of classes and their names always come from the dataset version, never the config."""
    if isinstance(config, SegmentationConfig):
        check_segmentation(session, owner, config)
        return
    if isinstance(config, DetectionConfig):
        check_detection(session, owner, config)
        return
    check_classification(session, owner, config)


def check_classification(session: Session, owner: User, config: ClassificationConfig) -> None:
    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    check_options(entry, config.model.options, ("model", "options"))
    check_input_size(entry, config.data.input_size, ("data", "input_size"))
    if config.model.pretrained and not entry.pretrained_weights:
        raise field_error(("model", "pretrained"), f"{entry.name} has no pretrained weights in the catalog")
    if config.model.load_from is not None:
        loc = ("model", "load_from", "model_id")
        start = owned_model(session, owner, config.model.load_from.model_id, loc)
        if start.task != config.task:
            raise field_error(
                loc, f"model {start.id} is a {start.task} model, not {config.task}", kind="task"
            )
        if start.architecture != entry.name:
            raise field_error(
                loc, f"model {start.id} is a {start.architecture}; its weights do not fit a {entry.name}"
            )
    weights = config.loss.class_weights
    if weights is not None and len(weights) != len(dataset.classes):
        raise field_error(
            ("loss", "class_weights"),
            f"give one weight per class: dataset {dataset.id} has {len(dataset.classes)} classes "
            f"({', '.join(dataset.classes)}), not {len(weights)}",
        )
    if split_images(dataset, "train") == 0:
        raise field_error(
            ("data", "dataset_id"), f"dataset {dataset.id} has no images in its train split", kind="empty"
        )


SEGMENTATION_METRICS = ("mIoU", "mDice", "mAcc", "aAcc")


def check_start_model(session: Session, owner: User, config: AnyTrainConfig, entry: CatalogEntry) -> None:
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


def check_segmentation(session: Session, owner: User, config: SegmentationConfig) -> None:
    """The segmentation run's checks: a dataset with masks, an architecture of the task whose encoder
    suits its head, sizes the architecture and the pipeline can take, class weights per output class."""
    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    encoder = config.model.options.get("encoder")
    valid = next((o.choices for o in entry.options if o.name == "encoder"), None)
    if encoder is not None and valid is not None and encoder not in valid:
        raise field_error(
            ("model", "options", "encoder"),
            f"{entry.name} cannot take encoder {encoder!r}; it takes {', '.join(map(str, valid))}",
        )
    check_options(entry, config.model.options, ("model", "options"))
    check_input_size(entry, config.data.input_size, ("data", "input_size"))
    if config.model.pretrained:
        raise field_error(
            ("model", "pretrained"),
            f"{entry.name}: the studio downloads no weights; start from a studio model with load_from",
        )
    data, inference = config.data, config.inference
    if data.scale is not None:
        ratios = [s.ratio_range[1] for s in data.augment if s.name == "random_resize"] or [1.0]
        largest = int(data.scale * max(ratios))
        if data.input_size > largest:
            raise field_error(
                ("data", "input_size"),
                f"the crop ({data.input_size}) is larger than any image the pipeline makes (long side at "
                f"most {largest} = data.scale x ratio): crops would be mostly padding; lower it or raise "
                "data.scale",
            )
    crop = inference.crop_size or data.input_size
    if inference.mode == "slide":
        check_input_size(entry, crop, ("inference", "crop_size"))
        if inference.stride is not None and inference.stride > crop:
            raise field_error(
                ("inference", "stride"),
                f"a stride of {inference.stride} leaves gaps between windows of {crop}; use at most {crop}",
            )
    check_start_model(session, owner, config, entry)
    weights = config.loss.class_weights
    n_out = len(dataset.classes) + 1
    if weights is not None and len(weights) != n_out:
        raise field_error(
            ("loss", "class_weights"),
            f"give one weight per output class, background first: dataset {dataset.id} has {n_out} "
            f"(_background_, {', '.join(dataset.classes)}), not {len(weights)}",
        )
    if config.runtime.best_metric not in SEGMENTATION_METRICS:
        raise field_error(
            ("runtime", "best_metric"),
            f"{config.runtime.best_metric!r} is not a segmentation metric; choose one of "
            f"{', '.join(SEGMENTATION_METRICS)}",
        )
    if split_images(dataset, "train") == 0:
        raise field_error(
            ("data", "dataset_id"), f"dataset {dataset.id} has no images in its train split", kind="empty"
        )


COCO_NUMBERS = (
    "mAP",
    "mAP_50",
    "mAP_75",
    "mAP_s",
    "mAP_m",
    "mAP_l",
    "AR_1",
    "AR_10",
    "AR_100",
    "AR_s",
    "AR_m",
    "AR_l",
)


def detection_metrics(task: str) -> list[str]:
    """The metric names a detection run reports: COCO's twelve numbers for boxes (and masks)."""
    kinds = ("bbox", "segm") if task == "instance_segmentation" else ("bbox",)
    return [f"{kind}/{name}" for kind in kinds for name in COCO_NUMBERS]


def check_detection(session: Session, owner: User, config: DetectionConfig) -> None:
    """The detection run's checks: a dataset with boxes (masks, for instance segmentation) in its train
    split, no box of zero area, no class that only validation has, an architecture of the task."""
    from backend.datasets.service import load_canonical

    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    check_options(entry, config.model.options, ("model", "options"))
    if config.model.pretrained and not entry.pretrained_weights:
        raise field_error(
            ("model", "pretrained"),
            f"{entry.name} has no pretrained backbone weights in the catalog; start from a studio model "
            "with load_from",
        )
    check_start_model(session, owner, config, entry)
    known = detection_metrics(config.task)
    if config.runtime.best_metric not in known:
        raise field_error(
            ("runtime", "best_metric"),
            f"{config.runtime.best_metric!r} is not a {config.task} metric; choose one of {', '.join(known)}",
        )
    canonical = load_canonical(dataset)
    split_of = {image.id: image for image in canonical.images}
    classes_in: dict[str, set[int]] = {"train": set(), "val": set(), "test": set()}
    for ann in canonical.annotations:
        if ann.ignore or ann.category_id <= 0:
            continue
        image = split_of.get(ann.image_id)
        if image is None:
            continue
        if ann.bbox[2] <= 0 or ann.bbox[3] <= 0:
            name = canonical.classes[ann.category_id - 1]
            raise field_error(
                ("data", "dataset_id"),
                f"dataset {dataset.id}: {image.source} has a {name} {ann.shape_type} whose box has zero "
                f"area ({ann.bbox[2]:g} x {ann.bbox[3]:g} px, annotation {ann.id}); remove or redraw it",
                kind="zero_area_box",
            )
        classes_in[image.split].add(ann.category_id)
    if not classes_in["train"]:
        raise field_error(
            ("data", "dataset_id"),
            f"dataset {dataset.id} has no objects in its train split: nothing to learn boxes from",
            kind="empty",
        )
    only_val = sorted(classes_in["val"] - classes_in["train"])
    if only_val:
        names = ", ".join(canonical.classes[c - 1] for c in only_val)
        raise field_error(
            ("data", "dataset_id"),
            f"dataset {dataset.id}: class {names} appears only in the val split, never in train; the "
            "model could not learn it (move some of its images to train with PATCH "
            f"/api/datasets/{dataset.id}/splits)",
            kind="class_only_in_val",
        )
