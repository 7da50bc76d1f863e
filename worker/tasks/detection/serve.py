"""A detector's answers for pictures: the pictures as one list (each keeps its size), detections above the
model's score threshold, the classes found ranked by their best score."""

from __future__ import annotations

from typing import Any

import torch

from worker.models import LoadedModel
from worker.serving.answer import Picture, save_answer_image


def answer_pictures(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype

    from worker.tasks.detection.predict import (
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
