"""Files sent to the model endpoints: checkpoints and single images, streamed to disk under a size cap and
checked by content before anything else sees them."""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath

from anyio import to_thread
from fastapi import Request

from backend.datasets.canonical import ImportReport
from backend.datasets.images import MAX_IMAGE_BYTES, normalise_image
from backend.datasets.upload import ReceivedForm, UploadRejected, receive_files, receive_upload, remove_tree
from backend.errors import StudioError
from backend.models.contract import CHECKPOINT_SUFFIXES, requests_dir
from backend.settings import Settings

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since 1.6
_SAFETENSORS_MAX_HEADER = 100 << 20


def check_checkpoint(path: Path, display: str) -> str:
    """Refuse (422 naming the file) what is not a PyTorch or safetensors checkpoint by name and content;
    answers the suffix. Only a look at the first bytes: the worker loads it, with weights only."""
    suffix = PurePosixPath(display).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise UploadRejected(
            422, "checkpoint_type", f"file: {display} is not a {', '.join(CHECKPOINT_SUFFIXES)} checkpoint"
        )
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
    if suffix == ".safetensors":
        header = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        ok = 2 <= header <= min(_SAFETENSORS_MAX_HEADER, size - 8) and head[8:9] == b"{"
    else:
        # A zip (torch.save) or a bare pickle (protocol 2+, legacy torch.save); the worker unpickles
        # neither with code: torch.load(weights_only=True) refuses anything but tensors and containers.
        ok = head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)
    if not ok:
        raise UploadRejected(
            422, "checkpoint_unreadable", f"file: {display} is not a {suffix} checkpoint (checked by content)"
        )
    return suffix


async def receive_request_image(
    request: Request, settings: Settings, text_fields: tuple[str, ...]
) -> tuple[str, ReceivedForm]:
    """Stream the ``image`` part, check it by content (allow-listed formats, pixel limit), and store it
    upright in RGB under ``DATA_DIR/requests/images``; answers its name relative to the requests folder."""
    base = requests_dir(settings.data_dir)
    stem = uuid.uuid4().hex
    raw = base / "incoming" / f"{stem}.upload"
    form = await receive_upload(
        request, raw, min(settings.max_upload_bytes, MAX_IMAGE_BYTES), text_fields, file_field="image"
    )
    try:
        report = ImportReport()
        stored = await to_thread.run_sync(lambda: normalise_image(raw, form.filename, base, stem, report))
    finally:
        raw.unlink(missing_ok=True)
    if stored is None:
        problem = report.errors[0]
        raise StudioError(422, f"image: {problem.message}", problem.code, extra={"file": form.filename})
    return stored[0], form


def _store_each(files: list[tuple[Path, str]], base: Path) -> list[str]:
    stored: list[str] = []
    for i, (raw, name) in enumerate(files):
        report = ImportReport()
        out = normalise_image(raw, name, base, uuid.uuid4().hex, report)
        if out is None:
            for done in stored:
                (base / done).unlink(missing_ok=True)
            problem = report.errors[0]
            raise StudioError(
                422, f"images[{i}]: {problem.message}", problem.code, extra={"file": name, "index": i}
            )
        stored.append(out[0])
    return stored


async def receive_request_images(request: Request, settings: Settings) -> list[str]:
    """Every ``images`` part of a batch request, checked like a single image; names under the requests
    folder in the order sent. A bad image is a 422 naming its index and file, and keeps none of them."""
    base = requests_dir(settings.data_dir)
    folder = base / "incoming" / uuid.uuid4().hex
    try:
        files = await receive_files(
            request, folder, settings.max_upload_bytes, settings.max_batch_images, "images"
        )
        return await to_thread.run_sync(lambda: _store_each(files, base))
    finally:
        remove_tree(folder)
