"""``POST /api/configs/preview``: the configured training pipeline applied to a few dataset images,
before anything is queued for training. The worker draws them (transforms need torch); this waits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError

from backend.deps import CurrentUser, SessionDep
from backend.errors import StudioError
from backend.jobs.service import create_job, validation_error
from backend.models.service import job_outcome, wait_for_job
from backend.specs.checks import check_train
from backend.specs.config import parse_train_config

router = APIRouter(prefix="/api/configs", tags=["configs"])


class PreviewRequest(BaseModel):
    config: dict[str, Any]
    count: int = Field(default=6, ge=1, le=16)
    seed: int = Field(default=0, ge=0)


class PreviewImage(BaseModel):
    url: str
    label: str
    source: str


class Preview(BaseModel):
    job_id: int
    images: list[PreviewImage]


@router.post("/preview")
async def preview_augmentations(
    body: PreviewRequest,
    user: CurrentUser,
    session: SessionDep,
    wait: Annotated[float, Query(gt=0, le=60)] = 60,
) -> Preview:
    """Images of the run's dataset after its training transforms (random, seeded), as PNG artifacts."""
    try:
        config = parse_train_config(body.config)
    except ValidationError as exc:
        raise validation_error(exc, ("body", "config"), body.config) from exc
    check_train(session, user, config)
    job = create_job(
        session,
        user,
        "augment_preview",
        {"config": config.model_dump(mode="json"), "count": body.count, "seed": body.seed},
        internal=True,
    )
    session.close()
    snap = await wait_for_job(job.id, wait)
    if not snap.status.finished:
        raise StudioError(
            504,
            f"the preview is not ready yet; job {job.id} carries on",
            "preview_pending",
            extra={"job_id": job.id},
        )
    result = job_outcome(snap, "augmentation preview")
    images = [
        PreviewImage(url=f"/api/artifacts/{i['artifact_id']}", label=i["label"], source=i["source"])
        for i in result.get("images", [])
    ]
    return Preview(job_id=job.id, images=images)
