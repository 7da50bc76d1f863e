"""What the model jobs share: the caller's model and dataset rows, request images, and artifact rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps
from sqlalchemy import select

from backend.auth.scope import owned
from backend.datasets.canonical import CanonicalDataset, ImageRecord
from backend.db.session import session_scope
from backend.db.tables import Artifact, Dataset, TrainedModel
from backend.models.contract import requests_dir
from backend.settings import get_settings
from worker.context import JobContext
from worker.models import LoadedModel
from worker.serving.cache import warm_cache


@dataclass(frozen=True)
class ModelRow:
    """What a job needs of a ``TrainedModel`` row, read in one short transaction."""

    id: int
    architecture: str
    task: str
    class_names: list[str]
    input_size: int | None
    status: str
    checkpoint_path: str | None


def owned_model(ctx: JobContext, model_id: int) -> ModelRow:
    """The model if this job's owner has it; otherwise the same error as a missing one."""
    with session_scope() as session:
        row = session.scalars(
            owned(TrainedModel, ctx.owner_id).where(TrainedModel.id == model_id)
        ).one_or_none()
        if row is None:
            raise PermissionError(f"model {model_id} does not belong to this job's owner")
        return ModelRow(
            row.id,
            row.architecture,
            row.task,
            list(row.class_names),
            row.input_size,
            row.status,
            row.checkpoint_path,
        )


def warm_model(ctx: JobContext, model_id: int) -> LoadedModel:
    """The caller's ready model, loaded (or still warm from an earlier job in this worker)."""
    row = owned_model(ctx, model_id)
    if row.status != "ready" or not row.checkpoint_path:
        raise ValueError(f"model {model_id} is {row.status}, not ready")
    return warm_cache().get(row.id, row.checkpoint_path)


def owned_dataset(ctx: JobContext, dataset_id: int) -> tuple[Path, CanonicalDataset]:
    """The folder and canonical form of the caller's ready dataset."""
    with session_scope() as session:
        row = session.scalars(owned(Dataset, ctx.owner_id).where(Dataset.id == dataset_id)).one_or_none()
        if row is None:
            raise PermissionError(f"dataset {dataset_id} does not belong to this job's owner")
        if row.status != "ready" or not row.path:
            raise ValueError(f"dataset {dataset_id} is {row.status}, not ready")
        folder = Path(row.path)
    return folder, CanonicalDataset.load(folder)


def split_records(ds: CanonicalDataset, split: str) -> list[ImageRecord]:
    """Images of ``split`` in id order (``all``: every image)."""
    return sorted((r for r in ds.images if split == "all" or r.split == split), key=lambda r: r.id)


def true_class(ds: CanonicalDataset, record: ImageRecord) -> str | None:
    """The image's class when it has exactly one tag that is a class (the single-label convention)."""
    tags = [t for t in record.tags if t in ds.classes]
    return tags[0] if len(tags) == 1 else None


def request_image_path(relative: str) -> Path:
    """A single-image request's file, which must lie inside ``DATA_DIR/requests``."""
    base = requests_dir(get_settings().data_dir).resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise PermissionError(f"image {relative!r} is outside the requests folder")
    return path


def open_image(path: Path) -> Image.Image:
    """An upright RGB picture (EXIF orientation applied, as evaluation's decoder does)."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def record_artifact(
    ctx: JobContext,
    *,
    kind: str,
    name: str,
    path: Path,
    media_type: str,
    model_id: int | None = None,
    replace_model_kind: bool = False,
) -> int:
    """Record a whole file as an artifact of this job; returns its id.

    A job that runs again (re-delivered, resumed) updates its own row of the same kind and name instead
    of adding a second one. ``replace_model_kind`` keeps one row per (model, kind), for exports: the
    newest verified file is the one the model serves."""
    with session_scope() as session:
        query = select(Artifact).where(Artifact.owner_id == ctx.owner_id, Artifact.kind == kind)
        if replace_model_kind and model_id is not None:
            query = query.where(Artifact.model_id == model_id)
        else:
            query = query.where(Artifact.job_id == ctx.job_id, Artifact.name == name)
        row = session.scalars(query.order_by(Artifact.id.desc()).limit(1)).first()
        if row is None:
            row = Artifact(owner_id=ctx.owner_id, kind=kind)
            session.add(row)
        row.job_id = ctx.job_id
        row.model_id = model_id
        row.name = name
        row.path = str(path)
        row.size_bytes = path.stat().st_size
        row.media_type = media_type
        session.flush()
        return int(row.id)


def job_artifact_names(ctx: JobContext, kind: str) -> set[str]:
    """Names of this job's artifacts of ``kind``: what a resumed job has already made."""
    with session_scope() as session:
        rows = session.scalars(
            select(Artifact.name).where(Artifact.job_id == ctx.job_id, Artifact.kind == kind)
        ).all()
    return set(rows)
