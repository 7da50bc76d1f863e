"""``/api/models``: the trained-model registry (list, read, delete, upload a checkpoint), single-image
predict and CAM answered from the worker, exports; ``/api/artifacts``: the files jobs produced."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from backend.auth.scope import get_owned, owned
from backend.datasets.upload import receive_upload
from backend.db.session import session_factory
from backend.db.tables import Artifact, Job, TrainedModel, User
from backend.deps import CurrentUser, SessionDep, SettingsDep
from backend.errors import StudioError
from backend.forms import multipart_body
from backend.jobs.service import create_job
from backend.models import service
from backend.models.contract import EXPORT_SUFFIXES, ArtifactKind, PredictResult, requests_dir
from backend.models.dashboard import model_dashboard
from backend.models.schemas import (
    ArtifactOut,
    JobStarted,
    ModelDashboard,
    ModelDetail,
    ModelImportStarted,
    ModelOut,
)
from backend.models.upload import check_checkpoint, receive_request_image
from backend.settings import Settings

router = APIRouter(prefix="/api/models", tags=["models"])
artifacts_router = APIRouter(prefix="/api", tags=["artifacts"])

MAX_WAIT_SECONDS = 60.0
Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the answer before a 202")
]


UPLOAD_BODY = multipart_body(
    "file",
    "A .pt, .pth or .safetensors state dict (loaded with weights only: no pickled code)",
    {
        "name": {"type": "string", "maxLength": 200},
        "architecture": {"type": "string", "description": "A name from GET /api/catalog"},
        "task": {"type": "string", "default": "classification"},
        "class_names": {"type": "string", "description": "A JSON list, or one name per line, in head order"},
        "input_size": {"type": "integer", "description": "Default: the architecture's"},
    },
    ["architecture", "class_names"],
)
IMAGE_BODY = multipart_body("image", "A JPEG, PNG, BMP, TIFF, WEBP or GIF image", {}, [])
CAM_BODY = multipart_body(
    "image",
    "A JPEG, PNG, BMP, TIFF, WEBP or GIF image",
    {
        "target_class": {"type": "string", "description": "A class name; default: the top prediction"},
        "target_layer": {"type": "string", "description": "A module path; default: the catalog's"},
    },
    [],
)
PNG: dict[str, Any] = {"content": {"image/png": {}}}


@router.get("")
def list_models(user: CurrentUser, session: SessionDep) -> list[ModelOut]:
    rows = session.scalars(owned(TrainedModel, user.id).order_by(TrainedModel.id.desc()))
    return [service.model_out(session, m) for m in rows]


@router.get("/{model_id}")
def get_model(model_id: int, user: CurrentUser, session: SessionDep) -> ModelDetail:
    """Metrics, config, class names, parameters, FLOPs and artifacts."""
    return service.model_detail(session, get_owned(session, TrainedModel, model_id, user.id, "model"))


@router.get("/{model_id}/dashboard")
def get_dashboard(model_id: int, user: CurrentUser, session: SessionDep) -> ModelDashboard:
    """Headline figures, the per-class table, the confusion matrix, the validation curves of the run and
    the worst validation images with their true and predicted masks."""
    return model_dashboard(session, get_owned(session, TrainedModel, model_id, user.id, "model"))


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(model_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> None:
    """The model, its checkpoint, exports and other artifacts."""
    service.delete_model(session, settings, get_owned(session, TrainedModel, model_id, user.id, "model"))


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_BODY)
async def upload_model(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ModelImportStarted:
    """Upload a checkpoint; an import job checks it loads (weights only) and fits the architecture."""
    dest = settings.uploads_dir / f"{uuid.uuid4().hex}.checkpoint"
    form = await receive_upload(request, dest, settings.max_upload_bytes, service.UPLOAD_FIELDS)
    try:
        suffix = check_checkpoint(form.path, form.filename)
        model, job = await to_thread.run_sync(
            lambda: service.start_model_import(session, settings, user, form, suffix)
        )
    finally:
        dest.unlink(missing_ok=True)  # moved into the model's folder when all went well
    out = await to_thread.run_sync(lambda: service.model_out(session, model))
    return ModelImportStarted(model=out, job_id=job.id)


async def _run_image_job(
    request: Request,
    user: User,
    session: SessionDep,
    settings: Settings,
    model_id: int,
    kind: str,
    text_fields: tuple[str, ...],
    config: dict[str, Any],
) -> tuple[int, Path]:
    """Check the model, receive and check the image, queue the job; the request's session is released.

    Answers the job and the image's path, which the caller removes once the job has ended."""
    await to_thread.run_sync(lambda: service.ready_model(session, user, model_id))
    image, form = await receive_request_image(request, settings, text_fields)
    path = requests_dir(settings.data_dir) / image
    full = {"model_id": model_id, "image": image, **config}
    full.update({k: form.fields[k] for k in text_fields if form.fields.get(k)})
    try:
        job = await to_thread.run_sync(lambda: create_job(session, user, kind, full, internal=True))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job_id = job.id
    session.close()  # no connection is held while the job runs
    return job_id, path


async def _wait(job_id: int, image: Path, wait: float) -> service.JobSnapshot:
    snap = await service.wait_for_job(job_id, wait)
    if snap.status.finished:
        image.unlink(missing_ok=True)  # the job is done with it; one still running keeps it
    return snap


def _pending(snap: service.JobSnapshot) -> JSONResponse:
    body = JobStarted(job_id=snap.id, status=snap.status).model_dump(mode="json")
    return JSONResponse(
        body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/jobs/{snap.id}"}
    )


async def _artifact_file(user: User, job_id: int, kind: ArtifactKind, artifact_id: Any) -> FileResponse:
    def find() -> Artifact:
        with session_factory()() as s:
            return service.job_artifact(s, user, job_id, kind.value, artifact_id)

    art = await to_thread.run_sync(find)
    return FileResponse(art.path, media_type=art.media_type, content_disposition_type="inline")


@router.post(
    "/{model_id}/predict",
    openapi_extra=IMAGE_BODY,
    response_model=PredictResult,
    responses={200: PNG, 202: {"model": JobStarted}},
)
async def predict(
    model_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    overlay: bool = False,
    top_k: Annotated[int, Query(ge=1, le=100)] = 5,
    wait: Wait = MAX_WAIT_SECONDS,
) -> Response:
    """Classify one image: the top-k classes and scores, or with ``overlay=1`` the image with them drawn.

    Answered when the worker is done (within ``wait`` seconds); otherwise 202 with the job to poll."""
    job_id, image = await _run_image_job(
        request, user, session, settings, model_id, "predict_image", (), {"top_k": top_k, "overlay": overlay}
    )
    snap = await _wait(job_id, image, wait)
    if not snap.status.finished:
        return _pending(snap)
    result = service.job_outcome(snap, "prediction")
    if overlay:
        return await _artifact_file(user, job_id, ArtifactKind.overlay, result.get("overlay_artifact_id"))
    return JSONResponse(result)


@router.post(
    "/{model_id}/cam",
    openapi_extra=CAM_BODY,
    response_class=Response,
    responses={200: PNG, 202: {"model": JobStarted}},
)
async def cam(
    model_id: int,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    wait: Wait = MAX_WAIT_SECONDS,
) -> Response:
    """A Grad-CAM heat map of one image over it, as PNG (form fields ``target_class``, ``target_layer``)."""
    job_id, image = await _run_image_job(
        request, user, session, settings, model_id, "cam_image", ("target_class", "target_layer"), {}
    )
    snap = await _wait(job_id, image, wait)
    if not snap.status.finished:
        return _pending(snap)
    result = service.job_outcome(snap, "Grad-CAM")
    return await _artifact_file(user, job_id, ArtifactKind.cam, result.get("overlay_artifact_id"))


@router.get(
    "/{model_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 202: {"model": JobStarted}},
)
def export_model(
    model_id: int,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    format: Literal["torchscript", "onnx"] = "torchscript",
) -> Response:
    """The verified TorchScript or ONNX file; if there is none yet, 202 with the job that makes it (poll
    it, then ask again)."""
    model = service.ready_model(session, user, model_id)
    art = service.find_export(session, settings, model, format)
    if art is not None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.name)[:80] or "model"
        return FileResponse(
            art.path, media_type=art.media_type, filename=f"{safe}-{model.id}{EXPORT_SUFFIXES[format]}"
        )
    job = service.start_export(session, user, model, format)
    return _pending(service.JobSnapshot(job.id, job.status, None, None))


@artifacts_router.get(
    "/artifacts/{artifact_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}, "image/png": {}, "text/csv": {}}}},
)
def download_artifact(
    artifact_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """A file a job produced: images inline, anything else as a download."""
    art = get_owned(session, Artifact, artifact_id, user.id, "artifact")
    path = Path(art.path)
    if not path.is_file() or not path.resolve().is_relative_to(settings.data_dir.resolve()):
        raise StudioError(404, f"artifact {artifact_id}: its file is gone", "artifact_missing")
    inline = art.media_type.startswith("image/")
    return FileResponse(
        path,
        media_type=art.media_type,
        filename=art.name or path.name,
        content_disposition_type="inline" if inline else "attachment",
    )


@artifacts_router.get("/jobs/{job_id}/artifacts")
def list_job_artifacts(job_id: int, user: CurrentUser, session: SessionDep) -> list[ArtifactOut]:
    get_owned(session, Job, job_id, user.id, "job")
    rows = session.scalars(owned(Artifact, user.id).where(Artifact.job_id == job_id).order_by(Artifact.id))
    return [ArtifactOut.model_validate(a) for a in rows]
