"""Answers for pictures: a batch of pictures in, one JSON-able answer per picture out, by the model's
task (``worker/tasks/<task>/serve.py``: a classifier runs the batch as one forward, a detector takes the
pictures as one list, a segmenter runs picture by picture). Drawn overlays are written under
``DATA_DIR/requests/answers`` and named in the answer; the API sends the file and removes it."""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from backend.files import atomic_write
from backend.models.contract import requests_dir
from backend.settings import get_settings
from worker.models import LoadedModel
from worker.tasks import get_runtime


@dataclass(frozen=True)
class Picture:
    """One picture of a request and what the request asked of it."""

    image: Image.Image
    top_k: int
    overlay: bool


def save_answer_image(image: Image.Image) -> str:
    """Write a PNG for the API to send; answers its name relative to the requests folder."""
    name = f"answers/{uuid.uuid4().hex}.png"
    path = requests_dir(get_settings().data_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: image.save(fh, format="PNG"), durable=False)
    return name


def png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def predict_pictures(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    """One answer per picture, in order, by the model's task."""
    answers: list[dict[str, Any]] = get_runtime(loaded.task).answer(loaded, pictures)
    return answers


def explain_picture(
    loaded: LoadedModel,
    image: Image.Image,
    target_class: str | None,
    target_layer: str | None,
    box: list[float] | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """Grad-CAM of one picture: what it explained and the overlay's file."""
    runtime = get_runtime(loaded.task)
    detector = {k: v for k, v in (("box", box), ("method", method)) if v is not None}
    out = runtime.explain(loaded, image, target_class, target_layer, **detector)
    return {
        "target_class": out.target_class,
        "target_layer": out.target_layer,
        "score": out.score,
        "predicted_class": loaded.class_names[out.predicted_index],
        "box": out.box,
        "method": out.method,
        "overlay": save_answer_image(out.overlay),
    }
