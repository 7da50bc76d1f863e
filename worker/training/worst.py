"""A run's worst images as artifacts: the files a task draws (true and predicted masks and overlays) are
recorded against the job and its model, and noted in the job's folder so that a re-delivered job whose
model is already recorded still attaches them."""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import delete

from backend.db.session import session_scope
from backend.db.tables import Artifact
from backend.models.contract import ArtifactKind
from backend.models.evaluation import Item, store_items
from worker.context import JobContext

WORST_DIR = "worst"
WORST_FILE = "worst.json"  # a job's drawn worst images, kept until they are attached to its model
ITEMS_FILE = "evaluation_items.json"  # the images behind its val figures, likewise
# name suffix → (artifact kind, what it shows)
FILES = {
    "true_mask.png": ArtifactKind.mask,
    "pred_mask.png": ArtifactKind.mask,
    "true.png": ArtifactKind.overlay,
    "pred.png": ArtifactKind.overlay,
}


def png_bytes(image: Image.Image) -> bytes:
    """A drawn worst image as PNG bytes (a middling compression: drawn once, shown often)."""
    buf = BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def worst_name(image_id: int, suffix: str) -> str:
    """An artifact's name: ``worst/<image id>/<file>``, what the dashboard endpoint matches on."""
    return f"{WORST_DIR}/{image_id}/{suffix}"


def attach_worst(
    owner_id: int, job_id: int, model_id: int | None, rendered: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Record the rendered files as artifacts of the job (and the model, if any), replacing the job's
    earlier ones (a re-delivered job draws them again). Answers the list with artifact ids, JSON-ready."""
    summary: list[dict[str, Any]] = []
    with session_scope() as session:
        session.execute(
            delete(Artifact).where(Artifact.job_id == job_id, Artifact.name.startswith(f"{WORST_DIR}/"))
        )
        for item in rendered:
            ids: dict[str, int] = {}
            for suffix, path in item["files"].items():
                art = Artifact(
                    owner_id=owner_id,
                    job_id=job_id,
                    model_id=model_id,
                    kind=FILES[suffix].value,
                    name=worst_name(item["image_id"], suffix),
                    path=str(path),
                    size_bytes=Path(path).stat().st_size,
                    media_type="image/png",
                )
                session.add(art)
                session.flush()
                ids[suffix] = int(art.id)
            iou = item["iou"]
            summary.append(
                {
                    "image_id": item["image_id"],
                    "iou": None if iou is None or math.isnan(iou) else iou,
                    "artifacts": ids,
                }
            )
    return summary


def keep_items(ctx: JobContext, dataset_id: int, split: str, items: list[Item]) -> None:
    """Note the evaluation's items in the job's folder, for :func:`attach_kept` like the drawn files."""
    ctx.save_json(ITEMS_FILE, {"dataset_id": dataset_id, "split": split, "items": [i.row() for i in items]})


def attach_items(ctx: JobContext, model_id: int) -> None:
    """Store the items :func:`keep_items` noted against the model (replacing the job's earlier ones)."""
    saved = ctx.load_json(ITEMS_FILE)
    if saved:
        items = [Item(**row) for row in saved["items"]]
        store_items(ctx.owner_id, model_id, ctx.job_id, saved["dataset_id"], saved["split"], items)


def keep_rendered(ctx: JobContext, rendered: list[dict[str, Any]]) -> None:
    """Note the drawn files in the job's folder: a job stopped after recording its model attaches them
    when it is delivered again (see :func:`attach_kept`)."""
    ctx.save_json(WORST_FILE, [{**w, "files": {k: str(v) for k, v in w["files"].items()}} for w in rendered])


def attach_kept(ctx: JobContext, model_id: int) -> None:
    """Attach the files :func:`keep_rendered` and the items :func:`keep_items` noted, if any (a
    re-delivered job whose model is ready)."""
    attach_items(ctx, model_id)
    saved = ctx.load_json(WORST_FILE)
    if saved:
        rendered = [{**w, "files": {k: Path(v) for k, v in w["files"].items()}} for w in saved]
        attach_worst(ctx.owner_id, ctx.job_id, model_id, rendered)
