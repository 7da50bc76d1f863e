"""What a ``studio.infer`` task does: check the request, take the model from the warm cache, hand each
picture to the batcher and wait for its answer. Runs in the threads of the inference worker (Celery's
``threads`` pool), so requests for one model that arrive together share a forward."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from backend.models.contract import InferError, InferReply, InferRequest
from backend.settings import get_settings
from worker.engine.checkpoint import UnsafeCheckpoint
from worker.jobs.common import open_image, request_image_path
from worker.models import LoadedModel
from worker.serving.answer import Picture, explain_picture, predict_pictures
from worker.serving.batcher import Batcher
from worker.serving.cache import warm_cache

log = logging.getLogger(__name__)


def _run(key: Hashable, payloads: list[Any]) -> list[Any]:
    op = key[0]  # type: ignore[index]
    if op == "cam":
        return [explain_picture(*p) for p in payloads]
    loaded: LoadedModel = payloads[0][0]
    return predict_pictures(loaded, [p[1] for p in payloads])


@lru_cache(maxsize=1)
def batcher() -> Batcher:
    settings = get_settings()
    return Batcher(_run, settings.inference_max_batch, settings.inference_max_wait_ms / 1000)


def _error(status: int, code: str, detail: str, index: int | None = None) -> dict[str, Any]:
    return InferReply(error=InferError(status=status, code=code, detail=detail, index=index)).model_dump()


def _load(req: InferRequest) -> LoadedModel:
    return warm_cache().get(req.model_id, Path(req.checkpoint), req.checkpoint_mtime)


def _open(relative: str) -> Image.Image:
    return open_image(request_image_path(relative))


def handle(raw: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request; every failure the caller can act on is an ``InferError``, not a crash."""
    try:
        req = InferRequest.model_validate(raw)
    except ValidationError as exc:
        return _error(422, "validation_error", f"inference request: {exc.errors()[0]['msg']}")
    try:
        loaded = _load(req)
    except FileNotFoundError:
        return _error(410, "model_weights_missing", f"model {req.model_id}: its weights file is gone")
    except (UnsafeCheckpoint, ValueError) as exc:
        return _error(409, "model_unusable", f"model {req.model_id} cannot be loaded: {exc}")
    pictures: list[Image.Image] = []
    for i, name in enumerate(req.images):
        try:
            pictures.append(_open(name))
        except (OSError, UnidentifiedImageError, PermissionError) as exc:
            return _error(422, "image_unreadable", f"images[{i}]: could not be read: {exc}", index=i)
    file_key = (req.model_id, req.checkpoint, req.checkpoint_mtime)
    try:
        if req.op == "cam":
            futures = [
                batcher().submit(
                    ("cam", *file_key),
                    (loaded, p, req.target_class, req.target_layer, req.target_box, req.method),
                    1,
                )
                for p in pictures
            ]
        else:
            futures = [
                batcher().submit(("predict", *file_key), (loaded, Picture(p, req.top_k, req.overlay)))
                for p in pictures
            ]
        answers = [f.result() for f in futures]
    except ValueError as exc:  # a target class or layer the model does not have, named by the message
        return _error(422, "validation_error", str(exc))
    return InferReply(answers=answers).model_dump()
