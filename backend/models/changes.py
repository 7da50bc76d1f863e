"""What a second model fixed and broke against a first, image by image, from the images their evaluations
kept: both models of one task, evaluated on the same dataset version and split.

Per image, the figure compared is the task's: a classifier's image is right or wrong (its change: the
true class's confidence); a segmenter's, its mean IoU over the classes there; a detector's, the objects it
found at its score threshold. Fixed: better in the second; broken: worse. Largest change first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.datasets.service import image_summaries
from backend.db.tables import Dataset, EvaluationItem, TrainedModel
from backend.errors import StudioError
from backend.models.evaluation import Kind, evaluations, score_threshold
from backend.models.schemas import ImageChange, ModelChanges


class Change(StrEnum):
    fixed = "fixed"
    broken = "broken"


@dataclass
class _Figure:
    value: float  # higher is better
    text: str  # the figure in words
    right: bool | None = None  # a classifier's image: whether its top class is the true one


def _invalid(message: str) -> StudioError:
    return StudioError(422, f"other: {message}", "invalid_field", extra={"field": "other"})


def _evaluation(session: Session, model: TrainedModel) -> int:
    kept = evaluations(session, model)
    if not kept:
        raise _invalid(f"model {model.id} has no evaluation that kept its images: evaluate it again")
    return kept[0]


def _figures(session: Session, model: TrainedModel, job_id: int) -> dict[int, _Figure]:
    rows = session.scalars(select(EvaluationItem).where(EvaluationItem.job_id == job_id)).all()
    names = list(model.class_names or [])
    out: dict[int, _Figure] = {}
    kinds = {r.kind for r in rows}
    if Kind.image.value in kinds:
        for r in rows:
            right = r.true_index == r.pred_index
            predicted = names[r.pred_index] if r.pred_index is not None and r.pred_index < len(names) else "?"
            # Right above wrong; within each, the true class's confidence.
            out[r.image_id] = _Figure(
                (1.0 if right else 0.0) + (r.true_score or 0.0),
                f"{'right' if right else 'wrong'}: predicted {predicted} ({100 * (r.score or 0):.0f}%)",
                right,
            )
    elif Kind.klass.value in kinds:
        ious: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            if r.kind == Kind.klass.value and r.score is not None:
                ious[r.image_id].append(r.score)
        for image_id, values in ious.items():
            mean = sum(values) / len(values)
            out[image_id] = _Figure(mean, f"mIoU {mean:.3f}")
    else:
        threshold = score_threshold(model)
        found: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            if r.kind == Kind.missed.value:
                counts = found[r.image_id]
                counts[1] += 1
                counts[0] += int(r.score is not None and r.score >= threshold)
        for image_id, (hit, total) in found.items():
            out[image_id] = _Figure(float(hit), f"{hit} of {total} objects found")
    return out


def model_changes(
    session: Session, first: TrainedModel, second: TrainedModel, change: Change, offset: int, limit: int
) -> ModelChanges:
    """One page of the images ``second`` fixed (or broke) against ``first``."""
    if first.task != second.task:
        raise _invalid(f"model {second.id} is a {second.task} model, model {first.id} a {first.task} one")
    if list(first.class_names or []) != list(second.class_names or []):
        raise _invalid(f"model {second.id} has other classes than model {first.id}")
    job_a, job_b = _evaluation(session, first), _evaluation(session, second)
    where = {}
    for model, job in ((first, job_a), (second, job_b)):
        row = session.scalars(select(EvaluationItem).where(EvaluationItem.job_id == job).limit(1)).one()
        where[model.id] = (row.dataset_id, row.split)
    if where[first.id] != where[second.id]:
        (da, sa), (db, sb) = where[first.id], where[second.id]
        raise _invalid(
            f"model {second.id} was evaluated on dataset {db} ({sb}), model {first.id} on dataset {da} "
            f"({sa}); evaluate both on the same dataset version and split"
        )
    before, after = _figures(session, first, job_a), _figures(session, second, job_b)
    moved = [
        (image_id, after[image_id].value - before[image_id].value)
        for image_id in before.keys() & after.keys()
        if abs(after[image_id].value - before[image_id].value) > 1e-9
    ]
    # A classifier's image is fixed or broken only when it turns right or wrong.
    moved = [(i, d) for i, d in moved if before[i].right is None or before[i].right != after[i].right]
    chosen = [(i, d) for i, d in moved if (d > 0) == (change is Change.fixed)]
    chosen.sort(key=lambda p: (-abs(p[1]), p[0]))
    dataset_id, split = where[first.id]
    dataset = session.scalars(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.owner_id == first.owner_id)
    ).first()
    images = (
        {s.id: s for s in image_summaries(dataset)}
        if dataset is not None and dataset.status == "ready"
        else {}
    )
    page = chosen[offset : offset + limit]
    return ModelChanges(
        model_id=first.id,
        other=second.id,
        dataset_id=dataset_id,
        split=split,
        change=change.value,
        total=len(chosen),
        fixed=sum(1 for _, d in moved if d > 0),
        broken=sum(1 for _, d in moved if d < 0),
        offset=offset,
        limit=limit,
        images=[
            ImageChange(
                image_id=image_id,
                source=images[image_id].source if image_id in images else None,
                before=before[image_id].text,
                after=after[image_id].text,
                change=round(delta, 6),
                image_url=(
                    f"/api/datasets/{dataset_id}/images/{image_id}/render?overlay=true&max_size=512"
                    if image_id in images
                    else None
                ),
                page_url=f"/datasets/{dataset_id}/images/{image_id}" if image_id in images else None,
            )
            for image_id, delta in page
        ],
    )
