"""Answers for pictures, per task: a batch of pictures in, one JSON-able answer per picture out.

Classifiers run the batch as one forward; detectors take the pictures as one list (each keeps its own
size); segmenters run picture by picture, since each is inferred at its own size (whole or sliding
window). Drawn overlays are written under ``DATA_DIR/requests/answers`` and named in the answer; the API
sends the file and removes it."""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from backend.files import atomic_write
from backend.models.contract import requests_dir
from backend.settings import get_settings
from worker.models import LoadedModel, preprocess
from worker.predict import prediction_overlay, probabilities, top_k

DETECTION_TASKS = ("object_detection", "instance_segmentation")


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


def _png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _classify(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    batch = torch.cat([preprocess(p.image, loaded.input_size, loaded.normalize) for p in pictures])
    probs = probabilities(loaded, batch)
    answers = []
    for picture, row in zip(pictures, probs, strict=True):
        preds = top_k(loaded, row, picture.top_k)
        answer: dict[str, Any] = {
            "top_k": [{"index": p.index, "name": p.name, "score": p.score} for p in preds]
        }
        if picture.overlay:
            answer["overlay"] = save_answer_image(prediction_overlay(picture.image, preds))
        answers.append(answer)
    return answers


def _detect(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype

    from worker.detection.predict import (
        Detections,
        detection_overlay,
        detection_rows,
        run_detector,
        thresholds,
    )

    score_min, mask_min = thresholds(loaded)
    tensors = [to_dtype(pil_to_tensor(p.image), torch.float32, scale=True) for p in pictures]
    outputs = run_detector(loaded, tensors)
    answers = []
    for picture, out in zip(pictures, outputs, strict=True):
        keep = out["scores"] >= score_min
        found = Detections(
            boxes=out["boxes"][keep].numpy(),
            scores=out["scores"][keep].numpy(),
            labels=out["labels"][keep].numpy() - 1,
            masks=(out["masks"][keep, 0] >= mask_min).numpy() if "masks" in out else None,
        )
        rows = detection_rows(found, loaded.class_names)
        best: dict[int, float] = {}
        for row in rows:
            best[row["index"]] = max(best.get(row["index"], 0.0), row["score"])
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[: picture.top_k]
        answer: dict[str, Any] = {
            "top_k": [{"index": i, "name": loaded.class_names[i], "score": s} for i, s in ranked],
            "detections": rows,
            "score_threshold": score_min,
            "width": picture.image.width,
            "height": picture.image.height,
        }
        if picture.overlay:
            answer["overlay"] = save_answer_image(detection_overlay(picture.image, found, loaded.class_names))
        answers.append(answer)
    return answers


def _segment(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    from worker.segmentation.predict import predict_mask

    answers = []
    for picture in pictures:
        out = predict_mask(loaded, picture.image)
        found = sorted(out.classes, key=lambda c: -c["share"])[: picture.top_k]
        answer: dict[str, Any] = {
            "top_k": [{"index": c["index"], "name": c["name"], "score": c["share"]} for c in found],
            "classes": out.classes,
            "mask_png": _png_base64(out.mask),
        }
        if picture.overlay:
            answer["overlay"] = save_answer_image(out.overlay)
        answers.append(answer)
    return answers


def predict_pictures(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    """One answer per picture, in order, for any task the studio trains."""
    if loaded.task in DETECTION_TASKS:
        return _detect(loaded, pictures)
    if loaded.task == "semantic_segmentation":
        return _segment(loaded, pictures)
    return _classify(loaded, pictures)


def explain_picture(
    loaded: LoadedModel, image: Image.Image, target_class: str | None, target_layer: str | None
) -> dict[str, Any]:
    """Grad-CAM of one picture: what it explained and the overlay's file."""
    from worker.cam import grad_cam, segmentation_cam

    explain = segmentation_cam if loaded.task == "semantic_segmentation" else grad_cam
    out = explain(loaded, image, target_class, target_layer)
    return {
        "target_class": out.target_class,
        "target_layer": out.target_layer,
        "score": out.score,
        "predicted_class": loaded.class_names[out.predicted_index],
        "overlay": save_answer_image(out.overlay),
    }
