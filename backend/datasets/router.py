"""``/api/datasets``: upload (which queues an import), browse, render, re-split, export, delete."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from backend.auth.scope import get_owned, owned
from backend.datasets import render, service
from backend.datasets.canonical import CanonicalDataset, Finding
from backend.datasets.classes import remap_classes
from backend.datasets.export import built_export
from backend.datasets.schemas import (
    ClassChange,
    DatasetDetail,
    DatasetOut,
    ExportOption,
    ExportReady,
    ImageDetail,
    ImageNeighbours,
    ImagePage,
    ImageSummary,
    ImportStarted,
    RetryImport,
    SplitChange,
)
from backend.datasets.splits import apply_overrides, assign_splits
from backend.datasets.upload import UploadRejected, receive_upload
from backend.db.tables import Dataset, JobStatus, User
from backend.deps import CurrentUser, Id, SessionDep, SettingsDep
from backend.errors import StudioError
from backend.forms import multipart_body
from backend.tasks import EXPORTS

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

UPLOAD_BODY = multipart_body(
    "file",
    "A zip of the project",
    {
        "name": {"type": "string", "maxLength": 200},
        "format": {"type": "string", "enum": list(service.FORMAT_CHOICES), "default": "auto"},
        "seed": {"type": "integer", "default": 0},
        "skip_bad_shapes": {
            "type": "boolean",
            "default": False,
            "description": "Leave out each shape with an error (listed in the report) instead of failing",
        },
    },
    [],
)

TRUE_WORDS, FALSE_WORDS = ("true", "1", "on", "yes"), ("false", "0", "off", "no", "")


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_BODY)
async def upload_dataset(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ImportStarted:
    """Upload a zip (labelme project, class folders, filelist, COCO, VOC, ICDAR); an import job lands it."""
    dest = service.new_upload_path(settings)
    form = await receive_upload(
        request, dest, settings.max_upload_bytes, ("name", "format", "seed", "skip_bad_shapes")
    )
    try:
        fmt = form.fields.get("format", "auto") or "auto"
        if fmt not in service.FORMAT_CHOICES:
            raise UploadRejected(
                422, "validation_error", f"format: {fmt!r} is not one of {', '.join(service.FORMAT_CHOICES)}"
            )
        name = (form.fields.get("name") or Path(form.filename).stem or "dataset").strip()[:200]
        seed_text = form.fields.get("seed", "0") or "0"
        if not seed_text.lstrip("-").isdigit():
            raise UploadRejected(422, "validation_error", f"seed: {seed_text!r} is not an integer")
        skip_text = (form.fields.get("skip_bad_shapes") or "").strip().lower()
        if skip_text not in TRUE_WORDS + FALSE_WORDS:
            raise UploadRejected(
                422, "validation_error", f"skip_bad_shapes: {skip_text[:40]!r} is not true or false"
            )
        dataset, job = await to_thread.run_sync(
            lambda: service.start_import(
                session, settings, user, form, name, fmt, int(seed_text), skip_text in TRUE_WORDS
            )
        )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return ImportStarted(dataset=DatasetOut.model_validate(dataset), job_id=job.id)


@router.get("")
def list_datasets(user: CurrentUser, session: SessionDep) -> list[DatasetOut]:
    rows = session.scalars(owned(Dataset, user.id).order_by(Dataset.id.desc()))
    return [DatasetOut.model_validate(r) for r in rows]


@router.post("/{dataset_id}/retry", status_code=status.HTTP_202_ACCEPTED)
def retry_import(
    dataset_id: Id, body: RetryImport, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ImportStarted:
    """Import a failed dataset's upload again (kept while the dataset is), optionally skipping the bad
    shapes its report named; 409 when the dataset did not fail or its upload is gone."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    job = service.retry_import(session, settings, user, row, skip_bad_shapes=body.skip_bad_shapes)
    return ImportStarted(dataset=DatasetOut.model_validate(row), job_id=job.id)


@router.get("/{dataset_id}")
def get_dataset(dataset_id: Id, user: CurrentUser, session: SessionDep) -> DatasetDetail:
    """Classes, counts, splits, the tasks it supports, and the import report."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    exports = [
        ExportOption(format=f.name, title=f.title, layout=f.layout, refusal=f.refusal(row.tasks or []))
        for f in EXPORTS.values()
    ]
    return DatasetDetail(**DatasetOut.model_validate(row).model_dump(), report=row.report, exports=exports)


def _ready(session: SessionDep, dataset_id: int, user_id: int) -> tuple[Dataset, CanonicalDataset]:
    row = get_owned(session, Dataset, dataset_id, user_id, "dataset")
    return row, service.load_canonical(row)


SplitFilter = Annotated[str | None, Query(pattern="^(train|val|test)$")]
ClassFilter = Annotated[str | None, Query(alias="class", max_length=200)]
ProblemFilter = Annotated[str | None, Query(max_length=60, description="'any' or a finding code")]


def _filtered(
    items: list[ImageSummary], split: str | None, class_name: str | None, problem: str | None
) -> list[ImageSummary]:
    if split:
        items = [i for i in items if i.split == split]
    if class_name:
        items = [i for i in items if class_name in i.classes]
    if problem:
        items = [i for i in items if i.problems and (problem == "any" or problem in i.problems)]
    return items


@router.get("/{dataset_id}/images")
def list_images(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    split: SplitFilter = None,
    class_name: ClassFilter = None,
    problem: ProblemFilter = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 60,
) -> ImagePage:
    """Images with filters by split, class and problem, a page at a time."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    items = _filtered(service.image_summaries(row), split, class_name, problem)
    start = (page - 1) * page_size
    return ImagePage(
        total=len(items), page=page, page_size=page_size, images=items[start : start + page_size]
    )


@router.get("/{dataset_id}/images/{image_id}")
def get_image(dataset_id: Id, image_id: Id, user: CurrentUser, session: SessionDep) -> ImageDetail:
    row, ds = _ready(session, dataset_id, user.id)
    image = next((i for i in ds.images if i.id == image_id), None)
    if image is None:
        raise StudioError(404, f"image {image_id} not found in dataset {dataset_id}", "not_found")
    findings = [
        Finding.model_validate(f) for f in row.report.get("findings", []) if f.get("file") == image.source
    ]
    return ImageDetail(
        image=image,
        annotations=[a for a in ds.annotations if a.image_id == image_id],
        classes=ds.classes,
        findings=findings,
    )


@router.get("/{dataset_id}/images/{image_id}/neighbours")
def image_neighbours(
    dataset_id: Id,
    image_id: Id,
    user: CurrentUser,
    session: SessionDep,
    split: SplitFilter = None,
    class_name: ClassFilter = None,
    problem: ProblemFilter = None,
) -> ImageNeighbours:
    """The images before and after this one in the grid's order under the same filters (for previous /
    next); ``position`` is None when the filters leave this image out."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    everything = service.image_summaries(row)
    if not any(i.id == image_id for i in everything):
        raise StudioError(404, f"image {image_id} not found in dataset {dataset_id}", "not_found")
    items = _filtered(everything, split, class_name, problem)
    at = next((n for n, i in enumerate(items) if i.id == image_id), None)
    if at is None:
        return ImageNeighbours(position=None, total=len(items), previous=None, next=None)
    return ImageNeighbours(
        position=at + 1,
        total=len(items),
        previous=items[at - 1].id if at > 0 else None,
        next=items[at + 1].id if at + 1 < len(items) else None,
    )


def _image_or_404(ds: CanonicalDataset, dataset_id: int, image_id: int) -> None:
    if not any(i.id == image_id for i in ds.images):
        raise StudioError(404, f"image {image_id} not found in dataset {dataset_id}", "not_found")


@router.get(
    "/{dataset_id}/images/{image_id}/render",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
)
def render_image(
    dataset_id: Id,
    image_id: Id,
    user: CurrentUser,
    session: SessionDep,
    overlay: bool = True,
    max_size: Annotated[int | None, Query(ge=16, le=8192)] = None,
) -> Response:
    """The image, with its labels drawn on (``overlay=1``), as PNG."""
    row, ds = _ready(session, dataset_id, user.id)
    _image_or_404(ds, dataset_id, image_id)
    buf = io.BytesIO()
    img = render.render_image(Path(str(row.path)), ds, image_id, max_size=max_size, overlay=overlay)
    img.save(buf, format="PNG")
    return Response(
        buf.getvalue(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get(
    "/{dataset_id}/images/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def image_thumbnail(
    dataset_id: Id,
    image_id: Id,
    user: CurrentUser,
    session: SessionDep,
    size: Annotated[int, Query(ge=32, le=1024)] = 256,
    overlay: bool = True,
) -> Response:
    """A cached JPEG thumbnail, labels drawn on by default."""
    row, ds = _ready(session, dataset_id, user.id)
    _image_or_404(ds, dataset_id, image_id)
    data = render.thumbnail(Path(str(row.path)), ds, image_id, size=size, overlay=overlay)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.patch("/{dataset_id}/splits", status_code=status.HTTP_201_CREATED)
def change_splits(
    dataset_id: Id, body: SplitChange, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DatasetOut:
    """Re-split (seeded, stratified) or move images between splits: makes a new version of the dataset."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")

    def change(copy: CanonicalDataset) -> None:
        if body.assign is not None:
            try:
                apply_overrides(copy, body.assign)
            except KeyError as exc:
                raise StudioError(422, f"assign: {exc.args[0]}", "validation_error") from exc
        elif body.ratios is not None:
            assign_splits(copy, body.ratios, body.seed)

    return DatasetOut.model_validate(service.new_version(session, settings, row, change))


@router.patch("/{dataset_id}/classes", status_code=status.HTTP_201_CREATED)
def change_classes(
    dataset_id: Id, body: ClassChange, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DatasetOut:
    """Rename, merge or drop classes: makes a new version of the dataset."""
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")

    def change(copy: CanonicalDataset) -> None:
        try:
            remap_classes(copy, body.classes)
        except ValueError as exc:
            raise StudioError(422, f"classes: {exc}", "validation_error") from exc

    return DatasetOut.model_validate(service.new_version(session, settings, row, change))


ExportFormatQuery = Annotated[
    str, Query(max_length=40, description="A format of the dataset's `exports`: voc, coco, imagenet, icdar")
]


def _export_state(session: SessionDep, user: User, dataset_id: int, fmt: str) -> ExportReady:
    """The built zip of this version and format, or the light-lane job that builds it (started if none is
    under way). A conversion of thousands of images never runs inside the request."""
    if fmt not in EXPORTS:
        raise StudioError(422, f"format: {fmt!r} is not one of {', '.join(EXPORTS)}", "validation_error")
    row, _ = _ready(session, dataset_id, user.id)
    refusal = EXPORTS[fmt].refusal(row.tasks or [])
    if refusal is not None:  # known from the dataset's tasks: no job to wait for
        raise StudioError(422, f"format: {refusal}", "export_unsupported")
    folder = Path(str(row.path))
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in row.name)[:80] or "dataset"
    state = ExportReady(
        format=fmt,
        filename=f"{safe_name}-v{row.version}-{fmt}.zip",
        url=f"/api/datasets/{dataset_id}/export?format={fmt}",
    )
    built = built_export(folder, fmt)
    if built is not None:
        return state.model_copy(update={"ready": True, "size_bytes": built.stat().st_size})
    job = service.start_export(session, user, dataset_id, fmt)
    if job.status == JobStatus.failed:
        raise StudioError(422, job.error or f"the {fmt} export failed", "export_unsupported")
    return state.model_copy(update={"ready": False, "job_id": job.id})


def _answer(state: ExportReady) -> JSONResponse:
    if state.ready:
        return JSONResponse(state.model_dump(mode="json"))
    return JSONResponse(
        state.model_dump(mode="json"), status_code=202, headers={"Location": f"/api/jobs/{state.job_id}"}
    )


@router.post("/{dataset_id}/exports", response_model=ExportReady, responses={202: {"model": ExportReady}})
def prepare_export(
    dataset_id: Id, user: CurrentUser, session: SessionDep, format: ExportFormatQuery = "voc"
) -> Response:
    """The export, ready (200, with its size) or being written by a job (202 with ``job_id``: wait for the
    job, then ask again). A format the dataset cannot be written in fails the job with the reason; asked
    again, that reason is a 422."""
    return _answer(_export_state(session, user, dataset_id, format))


@router.get(
    "/{dataset_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, 202: {"model": ExportReady}},
)
def export_dataset(
    dataset_id: Id, user: CurrentUser, session: SessionDep, format: ExportFormatQuery = "voc"
) -> Response:
    """The dataset converted to one of its `exports` (Pascal VOC, COCO, ImageNet folders, ICDAR 2015
    files), as a zip; 202 with the job that writes it when it is not built yet."""
    state = _export_state(session, user, dataset_id, format)
    if not state.ready:
        return _answer(state)
    folder = Path(str(_ready(session, dataset_id, user.id)[0].path))
    path = built_export(folder, format)
    if path is None:  # removed between the two looks
        raise StudioError(409, f"the {format} export was removed meanwhile; ask again", "export_gone")
    return FileResponse(path, media_type="application/zip", filename=state.filename)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: Id, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> None:
    row = get_owned(session, Dataset, dataset_id, user.id, "dataset")
    if row.status == "importing":
        raise StudioError(409, f"dataset {dataset_id} is still importing", "dataset_busy")
    service.delete_dataset(session, settings, row)
