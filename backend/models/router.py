"""``/api/models``: the trained-model registry (list, read, delete, upload a checkpoint), predict and CAM
answered by the inference lane, exports; ``/api/artifacts``: the files jobs produced."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image
from pydantic import ValidationError

from backend.auth.scope import get_owned, owned
from backend.datasets.canonical import CanonicalDataset
from backend.datasets.service import load_canonical
from backend.datasets.upload import receive_upload
from backend.db.tables import Artifact, Dataset, Job, TrainedModel, User
from backend.deps import MAX_ID, CurrentUser, Id, SessionDep, SettingsDep
from backend.errors import StudioError
from backend.forms import multipart_body
from backend.jobs.inference import infer, raise_for
from backend.jobs.service import validation_error
from backend.models import service
from backend.models.changes import Change, model_changes
from backend.models.checks import box_text, check_cam_request, parse_box
from backend.models.contract import (
    EXPORT_SUFFIXES,
    MODULE_PATH,
    InferRequest,
    PredictResult,
    requests_dir,
)
from backend.models.dashboard import model_dashboard
from backend.models.error_map import draw_errors, predicted_mask, truth_in_model_classes
from backend.models.evaluation import View, class_index, list_images, views
from backend.models.kept import keep_drawn, kept_path, read_drawn, request_copy
from backend.models.schemas import (
    ArtifactOut,
    BatchPrediction,
    EvaluationImages,
    JobStarted,
    ModelChanges,
    ModelDashboard,
    ModelDetail,
    ModelImportStarted,
    ModelOut,
)
from backend.models.upload import check_checkpoint, receive_request_image, receive_request_images
from backend.settings import Settings

router = APIRouter(prefix="/api/models", tags=["models"])
artifacts_router = APIRouter(prefix="/api", tags=["artifacts"])

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
BATCH_BODY = multipart_body(
    "images", "Images (JPEG, PNG, BMP, TIFF, WEBP or GIF): repeat the part once per image", {}, []
)
CAM_BODY = multipart_body(
    "image",
    "A JPEG, PNG, BMP, TIFF, WEBP or GIF image",
    {
        "target_class": {"type": "string", "description": "A class name; default: the top prediction"},
        "target_layer": {"type": "string", "description": "A module path; default: the catalog's"},
        "target_box": {
            "type": "string",
            "description": "A detector's: the box to explain, x1,y1,x2,y2 (default: its top detection)",
        },
        "method": {
            "type": "string",
            "enum": ["gradcam", "eigencam"],
            "description": "A detector's: Grad-CAM of one box, or EigenCAM of the picture",
        },
    },
    [],
)
PNG: dict[str, Any] = {"content": {"image/png": {}}}


@router.get("")
def list_models(user: CurrentUser, session: SessionDep) -> list[ModelOut]:
    rows = session.scalars(owned(TrainedModel, user.id).order_by(TrainedModel.id.desc()))
    return [service.model_out(session, m) for m in rows]


@router.get("/{model_id}")
def get_model(model_id: Id, user: CurrentUser, session: SessionDep) -> ModelDetail:
    """Metrics, config, class names, parameters, FLOPs and artifacts."""
    return service.model_detail(session, get_owned(session, TrainedModel, model_id, user.id, "model"))


@router.get("/{model_id}/dashboard")
def get_dashboard(model_id: Id, user: CurrentUser, session: SessionDep) -> ModelDashboard:
    """Headline figures, the per-class table, the confusion matrix, the validation curves of the run and
    the worst validation images with their true and predicted masks."""
    return model_dashboard(session, get_owned(session, TrainedModel, model_id, user.id, "model"))


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(model_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> None:
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


async def _weights(
    session: SessionDep,
    user: User,
    model_id: int,
    cam: bool = False,
    target_class: str | None = None,
    target_box: list[float] | None = None,
    method: str | None = None,
) -> tuple[str, float]:
    """The caller's ready model's weights file and its mtime, checked before the lane is asked (a CAM's
    target class, box and method too); the request's database session is released afterwards."""

    def check() -> tuple[str, float]:
        model = service.ready_model(session, user, model_id)
        if cam:
            check_cam_request(model, target_class, target_box, method)
        path = Path(model.checkpoint_path or "")
        if not model.checkpoint_path or not path.is_file():
            raise StudioError(410, f"model {model_id}: its weights file is gone", "model_weights_missing")
        return str(path), path.stat().st_mtime

    found = await to_thread.run_sync(check)
    session.close()
    return found


def _remove(settings: Settings, names: list[str]) -> None:
    base = requests_dir(settings.data_dir)
    for name in names:
        (base / name).unlink(missing_ok=True)


async def _ask(settings: Settings, req: InferRequest) -> list[dict[str, Any]]:
    try:
        return raise_for(await infer(req))
    finally:
        _remove(settings, req.images)


def _answer_image(
    settings: Settings, answer: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    name = str(answer.pop("overlay", ""))
    path = (requests_dir(settings.data_dir) / name).resolve()
    if not name or not path.is_relative_to(requests_dir(settings.data_dir).resolve()) or not path.is_file():
        raise StudioError(500, "the inference lane answered without its image", "artifact_missing")
    data = path.read_bytes()
    path.unlink(missing_ok=True)
    return Response(data, media_type="image/png", headers=headers)


def _drop_files(settings: Settings, answers: list[dict[str, Any]]) -> None:
    _remove(settings, [str(a.pop("overlay")) for a in answers if a.get("overlay")])


@router.post(
    "/{model_id}/predict",
    openapi_extra=IMAGE_BODY,
    response_model=PredictResult,
    responses={200: PNG},
)
async def predict(
    model_id: Id,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    overlay: bool = False,
    top_k: Annotated[int, Query(ge=1, le=100)] = 5,
) -> Response:
    """One image through the model on the inference lane: the top-k classes and scores (a detector's
    detections, a segmenter's classes and mask), or with ``overlay=1`` the image with them drawn."""
    checkpoint, mtime = await _weights(session, user, model_id)
    image, _ = await receive_request_image(request, settings, ())
    req = InferRequest(
        op="predict",
        model_id=model_id,
        checkpoint=checkpoint,
        checkpoint_mtime=mtime,
        images=[image],
        top_k=top_k,
        overlay=overlay,
    )
    answer = (await _ask(settings, req))[0]
    if overlay:
        return _answer_image(settings, answer)
    return JSONResponse({"model_id": model_id, **answer})


@router.post("/{model_id}/predict/batch", openapi_extra=BATCH_BODY)
async def predict_batch(
    model_id: Id,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    top_k: Annotated[int, Query(ge=1, le=100)] = 5,
) -> BatchPrediction:
    """Several images (form parts named ``images``, up to ``STUDIO_MAX_BATCH_IMAGES``) in one request:
    one answer per image, in the order sent. A bad image is a 422 naming its index."""
    checkpoint, mtime = await _weights(session, user, model_id)
    images = await receive_request_images(request, settings)
    req = InferRequest(
        op="predict",
        model_id=model_id,
        checkpoint=checkpoint,
        checkpoint_mtime=mtime,
        images=images,
        top_k=top_k,
    )
    answers = await _ask(settings, req)
    _drop_files(settings, answers)
    return BatchPrediction(model_id=model_id, answers=[{"model_id": model_id, **a} for a in answers])


@router.post(
    "/{model_id}/cam",
    openapi_extra=CAM_BODY,
    response_class=Response,
    responses={200: PNG},
)
async def cam(
    model_id: Id,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """A Grad-CAM heat map of one image over it, as PNG (form fields ``target_class``, ``target_layer``;
    a detector's also ``target_box`` and ``method``); what it explained is in the ``X-Cam-Target-Class``,
    ``X-Cam-Target-Layer``, ``X-Cam-Score``, ``X-Cam-Predicted-Class`` (a detector's: ``X-Cam-Box``,
    ``X-Cam-Method``) headers."""
    await to_thread.run_sync(lambda: service.ready_model(session, user, model_id))
    image, form = await receive_request_image(
        request, settings, ("target_class", "target_layer", "target_box", "method")
    )
    target_class = form.fields.get("target_class") or None
    target_layer = form.fields.get("target_layer") or None
    method = form.fields.get("method") or None
    try:
        box = parse_box(form.fields.get("target_box"))
        checkpoint, mtime = await _weights(session, user, model_id, True, target_class, box, method)
        req = InferRequest(
            op="cam",
            model_id=model_id,
            checkpoint=checkpoint,
            checkpoint_mtime=mtime,
            images=[image],
            target_class=target_class,
            target_layer=target_layer,
            target_box=box,
            method=method,
        )
    except ValidationError as exc:
        _remove(settings, [image])
        raise validation_error(exc, ("body",)) from exc
    except BaseException:
        _remove(settings, [image])
        raise
    answer = (await _ask(settings, req))[0]
    return _answer_image(settings, answer, _cam_headers(answer))


def _cam_headers(answer: dict[str, Any]) -> dict[str, str]:
    headers = {
        "X-Cam-Target-Class": quote(str(answer["target_class"])),
        "X-Cam-Target-Layer": quote(str(answer["target_layer"])),
        "X-Cam-Score": f"{answer['score']:.6f}" if answer.get("score") is not None else "",
        "X-Cam-Predicted-Class": quote(str(answer.get("predicted_class") or "")),
        "X-Cam-Method": str(answer.get("method") or "gradcam"),
    }
    if answer.get("box"):
        headers["X-Cam-Box"] = box_text(answer["box"])
    return headers


@router.get("/{model_id}/evaluation/images")
def evaluation_images(
    model_id: Id,
    user: CurrentUser,
    session: SessionDep,
    view: View = View.cell,
    true: Annotated[str | None, Query(max_length=200, description="view=cell: the true class")] = None,
    predicted: Annotated[
        str | None, Query(max_length=200, description="view=cell: the predicted class")
    ] = None,
    class_name: Annotated[
        str | None, Query(max_length=200, description="view=false_positives / false_negatives: the class")
    ] = None,
    evaluation: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The evaluation's job (default: the training run's)")
    ] = None,
    min_score: Annotated[
        float | None,
        Query(ge=0, le=1, description="A detector's: the score a box needs (default: its run's threshold)"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
) -> EvaluationImages:
    """The images behind a figure of the model's evaluation, one page at a time: a confusion-matrix cell
    (``view=cell&true=A&predicted=B``), a class's false positives or false negatives
    (``view=false_positives&class_name=A``), the highest-loss images (``view=highest_loss``), a
    segmenter's images of a class by IoU (``view=lowest_iou``), a detector's boxes of a class above a
    score (``view=detections&class_name=A&min_score=0.3``; a matrix cell's ``background`` is nothing
    there, or an object missed). Each names its file and what the model made of it, and links to its
    page, to Grad-CAM for its true and predicted class and to a segmenter's error map."""
    model = get_owned(session, TrainedModel, model_id, user.id, "model")
    return list_images(
        session,
        model,
        view,
        true=true,
        predicted=predicted,
        class_name=class_name,
        evaluation=evaluation,
        min_score=min_score,
        offset=offset,
        limit=limit,
    )


@router.get("/{model_id}/evaluation/changes")
def evaluation_changes(
    model_id: Id,
    other: Annotated[int, Query(ge=1, le=MAX_ID, description="The second model")],
    user: CurrentUser,
    session: SessionDep,
    change: Change = Change.fixed,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 24,
) -> ModelChanges:
    """The images ``other`` fixed (or broke) against this model: both of one task and classes, their
    evaluations on the same dataset version and split; largest change first (a classifier: images that
    turned right or wrong; a segmenter: mean IoU per image; a detector: objects found per image)."""
    first = get_owned(session, TrainedModel, model_id, user.id, "model")
    second = get_owned(session, TrainedModel, other, user.id, "model")
    return model_changes(session, first, second, change, offset, limit)


@artifacts_router.get(
    "/datasets/{dataset_id}/images/{image_id}/cam",
    response_class=Response,
    responses={200: PNG},
    tags=["models"],
)
async def dataset_image_cam(
    dataset_id: Id,
    image_id: Id,
    model_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The model to explain")],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    target_class: Annotated[str | None, Query(max_length=200)] = None,
    target_layer: Annotated[str | None, Query(max_length=200, pattern=MODULE_PATH)] = None,
    target_box: Annotated[
        str | None, Query(max_length=200, description="A detector's box to explain: x1,y1,x2,y2")
    ] = None,
    method: Annotated[
        Literal["gradcam", "eigencam"] | None,
        Query(description="A detector's: Grad-CAM of one box, or EigenCAM of the picture"),
    ] = None,
) -> Response:
    """Grad-CAM of one of the caller's dataset images by one of their models, as PNG with the same
    ``X-Cam-*`` headers as ``POST /api/models/{id}/cam``. Drawn by the inference lane on first request,
    then kept with the model."""
    picture, _ = await to_thread.run_sync(lambda: _dataset_picture(session, user, dataset_id, image_id))
    box = parse_box(target_box)
    checkpoint, mtime = await _weights(session, user, model_id, True, target_class, box, method)
    key = box_text(box) if box else None
    kept = kept_path(
        settings.data_dir, model_id, dataset_id, image_id, "cam", target_class, target_layer, key, method
    )
    if not kept.with_suffix(".json").is_file():
        name = await to_thread.run_sync(lambda: request_copy(settings, picture))
        req = InferRequest(
            op="cam",
            model_id=model_id,
            checkpoint=checkpoint,
            checkpoint_mtime=mtime,
            images=[name],
            target_class=target_class,
            target_layer=target_layer,
            target_box=box,
            method=method,
        )
        answer = (await _ask(settings, req))[0]
        overlay = _answer_image(settings, answer).body
        await to_thread.run_sync(lambda: keep_drawn(kept, bytes(overlay), _cam_headers(answer)))
    return await _kept_response(kept)


@artifacts_router.get(
    "/datasets/{dataset_id}/images/{image_id}/errors",
    response_class=Response,
    responses={200: PNG},
    tags=["models"],
)
async def dataset_image_errors(
    dataset_id: Id,
    image_id: Id,
    model_id: Annotated[int, Query(ge=1, le=MAX_ID, description="A segmentation model")],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    class_name: Annotated[
        str | None, Query(max_length=200, description="Paint this class's false negatives and positives")
    ] = None,
    true: Annotated[str | None, Query(max_length=200, description="With predicted: a matrix cell")] = None,
    predicted: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A segmenter's wrong pixels on one of the caller's dataset images, as PNG: for ``class_name``, the
    pixels of the class it missed (orange) and those it painted with the class wrongly (blue); for
    ``true`` and ``predicted``, the pixels of one class painted as the other (purple). The counts are in
    ``X-Errors-False-Negative-Pixels``, ``X-Errors-False-Positive-Pixels`` and ``X-Errors-Cell-Pixels``.
    Drawn from the inference lane's mask on first request, then kept with the model."""
    picture, canonical = await to_thread.run_sync(
        lambda: _dataset_picture(session, user, dataset_id, image_id)
    )

    def which() -> tuple[list[str], int | None, tuple[int, int] | None]:
        model = service.ready_model(session, user, model_id)
        if "lowest_iou" not in views(model.task):
            raise StudioError(
                422,
                f"model_id: model {model_id} is a {model.task} model; error maps are drawn for models "
                "that paint every pixel",
                "invalid_field",
                extra={"field": "model_id"},
            )
        names = list(model.class_names)
        if class_name is not None:
            return names, class_index(model, "class_name", class_name), None
        if true is None or predicted is None:
            raise StudioError(
                422,
                "class_name: name a class, or a cell with true and predicted",
                "invalid_field",
                extra={"field": "class_name"},
            )
        return names, None, (class_index(model, "true", true), class_index(model, "predicted", predicted))

    names, index, cell = await to_thread.run_sync(which)
    checkpoint, mtime = await _weights(session, user, model_id)
    kept = kept_path(settings.data_dir, model_id, dataset_id, image_id, "errors", class_name, true, predicted)
    if not kept.with_suffix(".json").is_file():
        name = await to_thread.run_sync(lambda: request_copy(settings, picture))
        req = InferRequest(
            op="predict",
            model_id=model_id,
            checkpoint=checkpoint,
            checkpoint_mtime=mtime,
            images=[name],
            top_k=1,
        )
        answer = (await _ask(settings, req))[0]

        def draw() -> None:
            pred = predicted_mask(str(answer["mask_png"]))
            truth = truth_in_model_classes(canonical, image_id, names)
            with Image.open(picture) as opened:
                drawn, counts = draw_errors(opened, truth, pred, class_index=index, cell=cell)
            buf = io.BytesIO()
            drawn.save(buf, format="PNG")
            headers = {f"X-Errors-{k.replace('_', '-').title()}": str(v) for k, v in counts.items()}
            keep_drawn(kept, buf.getvalue(), headers)

        await to_thread.run_sync(draw)
    return await _kept_response(kept)


def _dataset_picture(
    session: SessionDep, user: User, dataset_id: int, image_id: int
) -> tuple[Path, CanonicalDataset]:
    """The file of one image of the caller's ready dataset, and the dataset: 404 for another user's."""
    dataset = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    if dataset.status != "ready" or not dataset.path:
        raise StudioError(409, f"dataset {dataset_id} is {dataset.status}, not ready", "dataset_not_ready")
    canonical = load_canonical(dataset)
    record = next((i for i in canonical.images if i.id == image_id), None)
    if record is None:
        raise StudioError(404, f"image {image_id} not found in dataset {dataset_id}", "not_found")
    return Path(dataset.path) / record.file_name, canonical


async def _kept_response(kept: Path) -> Response:
    data, headers = await to_thread.run_sync(lambda: read_drawn(kept))
    headers["Cache-Control"] = "private, max-age=3600"
    return Response(data, media_type="image/png", headers=headers)


@router.get(
    "/{model_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 202: {"model": JobStarted}},
)
def export_model(
    model_id: Id,
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
    body = JobStarted(job_id=job.id, status=job.status).model_dump(mode="json")
    return JSONResponse(
        body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/jobs/{job.id}"}
    )


@artifacts_router.get(
    "/artifacts/{artifact_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}, "image/png": {}, "text/csv": {}}}},
)
def download_artifact(
    artifact_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep
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
def list_job_artifacts(job_id: Id, user: CurrentUser, session: SessionDep) -> list[ArtifactOut]:
    get_owned(session, Job, job_id, user.id, "job")
    rows = session.scalars(owned(Artifact, user.id).where(Artifact.job_id == job_id).order_by(Artifact.id))
    return [ArtifactOut.model_validate(a) for a in rows]
