"""Pictures drawn for a model from a dataset's own images (Grad-CAM, a segmenter's error map), kept with the
model: drawn once through the inference lane, read after.

A model's weights never change under its id, so a kept picture is valid until the model is deleted (its
folder goes with it)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from backend.datasets.canonical import ImportReport
from backend.datasets.images import normalise_image
from backend.errors import StudioError
from backend.files import atomic_write_bytes
from backend.models.contract import model_dir, requests_dir
from backend.settings import Settings


def kept_path(data_dir: Path, model_id: int, dataset_id: int, image_id: int, *what: str | None) -> Path:
    """Where one picture of one image is kept (``what``: its kind and options): ``.png`` and its headers
    in ``.json``."""
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]
    return model_dir(data_dir, model_id) / "drawn" / f"{dataset_id}-{image_id}-{key}.png"


def request_copy(settings: Settings, picture: Path) -> str:
    """The dataset image as a request image of the inference lane (checked as an upload is)."""
    report = ImportReport()
    stored = normalise_image(picture, picture.name, requests_dir(settings.data_dir), uuid.uuid4().hex, report)
    if stored is None:
        raise StudioError(422, f"image: {report.errors[0].message}", report.errors[0].code)
    return stored[0]


def keep_drawn(path: Path, png: bytes, headers: dict[str, str]) -> None:
    """The picture first, its headers last: a ``.json`` on disk means the pair is whole."""
    atomic_write_bytes(path, png, durable=False)
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(headers).encode(), durable=False)


def read_drawn(path: Path) -> tuple[bytes, dict[str, str]]:
    headers = json.loads(path.with_suffix(".json").read_text())
    return path.read_bytes(), {str(k): str(v) for k, v in headers.items()}
