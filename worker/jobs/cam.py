"""Grad-CAM over a split (``cam``): the first ``limit`` images, each overlay recorded as an artifact the
moment it is written so the browser can show them as they come. One uploaded picture is explained by the
inference lane (``worker.serving``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from backend.files import atomic_write
from backend.jobs.kinds import CamConfig
from backend.models.contract import ArtifactKind
from worker.cam import CamOutput
from worker.context import JobContext
from worker.jobs.common import (
    job_artifact_names,
    open_image,
    owned_dataset,
    record_artifact,
    split_records,
    true_class,
    warm_model,
)
from worker.tasks import get_runtime


def _save_png(image: Image.Image, path: Path) -> None:
    atomic_write(path, lambda fh: image.save(fh, format="PNG"), durable=False)


def _entry(
    image_id: int, source: str, label: str | None, out: CamOutput, names: list[str], artifact_id: int
) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "source": source,  # the file as it was uploaded, which is what a person recognises
        "label": label,
        "predicted": names[out.predicted_index],
        "target_class": out.target_class,
        "score": out.score,
        "artifact_id": artifact_id,
    }


def run_cam(ctx: JobContext) -> dict[str, Any]:
    """Overlays for up to ``limit`` images of a split (in id order); a resumed job skips those it made."""
    cfg = CamConfig.model_validate(ctx.config)
    loaded = warm_model(ctx, cfg.model_id)
    runtime = get_runtime(loaded.task)
    folder, ds = owned_dataset(ctx, cfg.dataset_id)
    records = split_records(ds, cfg.split)[: cfg.limit]
    done = job_artifact_names(ctx, ArtifactKind.cam)
    made: list[dict[str, Any]] = ctx.load_json("cam_done.json") or []  # from an earlier attempt
    layer = cfg.target_layer
    for i, rec in enumerate(records):
        ctx.check()
        name = f"cam_{rec.id}.png"
        if name not in done:
            out = runtime.explain(
                loaded, open_image(folder / rec.file_name), cfg.target_class, cfg.target_layer
            )
            layer = out.target_layer
            path = ctx.work_dir / "cam" / name
            _save_png(out.overlay, path)
            artifact_id = record_artifact(
                ctx,
                kind=ArtifactKind.cam,
                name=name,
                path=path,
                media_type="image/png",
                model_id=cfg.model_id,
            )
            made.append(_entry(rec.id, rec.source, true_class(ds, rec), out, loaded.class_names, artifact_id))
            ctx.save_json("cam_done.json", made)
        ctx.progress((i + 1) / len(records), f"{i + 1}/{len(records)} overlays", force=True)
    return {
        "model_id": cfg.model_id,
        "split": cfg.split,
        "target_layer": layer,
        "images": len(records),
        "overlays": made,
    }
