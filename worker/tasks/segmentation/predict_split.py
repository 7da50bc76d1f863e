"""Batch prediction of a segmentation model over a dataset split: every image's class mask (palette PNG,
pixel value = the model's class index) in one zip, a CSV and a JSON of the classes found per image, and,
where the images are labelled with classes the model knows, each image's IoU and the split's metrics."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
import torch
from PIL import Image

from backend.datasets.canonical import CanonicalDataset, ImageRecord
from backend.files import atomic_write, atomic_write_bytes
from backend.jobs.kinds import PredictConfig
from backend.models.contract import ArtifactKind
from worker.context import JobContext
from worker.jobs.common import record_artifact, split_records
from worker.models import LoadedModel
from worker.tasks.segmentation.data import SegmentationDataset
from worker.tasks.segmentation.evaluate import class_lookup
from worker.tasks.segmentation.metrics import SegmentationMetrics, confusion_matrix, scores
from worker.tasks.segmentation.predict import mask_logits, palette_mask


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def mask_name(file_name: str) -> str:
    """``images/a/b.jpg`` → ``masks/a/b.png``: the mask's path in the zip, mirroring the image's."""
    path = PurePosixPath(file_name)
    parts = path.parts[1:] if path.parts and path.parts[0] == "images" else path.parts
    return str(PurePosixPath("masks", *parts).with_suffix(".png"))


def _lookup(ds: CanonicalDataset, loaded: LoadedModel) -> torch.Tensor | None:
    try:
        return class_lookup(list(ds.classes), loaded.class_names)
    except ValueError:
        return None  # the dataset has classes the model does not: predict, but score nothing


def predict_segmentation_split(
    ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel, folder: Path, ds: CanonicalDataset
) -> dict[str, Any]:
    records = split_records(ds, cfg.split)
    scorer = _Scorer(folder, ds, loaded, records)
    rows: list[dict[str, Any]] = []
    zip_path = ctx.work_dir / "masks.zip"

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs: compressed
            for i, rec in enumerate(records):
                ctx.check()
                rows.append(_predict_one(loaded, folder, rec, archive, scorer))
                ctx.progress((i + 1) / max(1, len(records)) * 0.95, f"{i + 1}/{len(records)} images")

    atomic_write(zip_path, write)
    split_metrics = scorer.metrics.compute()
    summary: dict[str, Any] = {
        "images": len(rows),
        "labelled": int(split_metrics.get("samples", 0)),
        "mIoU": split_metrics.get("mIoU"),
        "mDice": split_metrics.get("mDice"),
        "aAcc": split_metrics.get("aAcc"),
    }
    csv_path, json_path = ctx.work_dir / "predictions.csv", ctx.work_dir / "predictions.json"
    atomic_write_bytes(csv_path, _csv(rows, loaded.class_names))
    document = {"model_id": cfg.model_id, "dataset_id": cfg.dataset_id, "split": cfg.split, **summary}
    document["per_class"] = split_metrics.get("per_class")
    document["rows"] = rows
    atomic_write_bytes(json_path, json.dumps(document).encode())
    ids = [
        record_artifact(
            ctx, kind=ArtifactKind.predictions, name=p.name, path=p, media_type=media, model_id=cfg.model_id
        )
        for p, media in (
            (csv_path, "text/csv"),
            (json_path, "application/json"),
            (zip_path, "application/zip"),
        )
    ]
    ctx.progress(1.0, f"{len(rows)} masks predicted", force=True)
    return {**summary, "model_id": cfg.model_id, "split": cfg.split, "artifact_ids": ids}


class _Scorer:
    """Compares predictions with the images' true masks where it can: the image is labelled and the
    model knows every class of the dataset. Collects the split's metrics as it goes."""

    def __init__(self, folder: Path, ds: CanonicalDataset, loaded: LoadedModel, records: list[ImageRecord]):
        wanted = {r.id for r in records}
        self.labelled = {a.image_id for a in ds.annotations if a.image_id in wanted}
        self.truth = SegmentationDataset(folder, ds, None)  # masks as drawn, by image id
        self.position = {image_id: i for i, image_id in enumerate(self.truth.image_ids)}
        self.lookup = _lookup(ds, loaded)
        self.n = loaded.num_classes
        ids = [r.id for r in records if r.id in self.labelled]
        self.metrics = SegmentationMetrics(loaded.class_names, image_ids=ids)

    def score(self, image_id: int, logits: torch.Tensor) -> float | None:
        if self.lookup is None or image_id not in self.labelled or image_id not in self.position:
            return None
        target = self.lookup[torch.from_numpy(self.truth.mask(self.position[image_id]).astype(np.int64))]
        pred = logits[0].argmax(0)
        if target.shape != pred.shape:
            return None
        self.metrics.update(logits, target.unsqueeze(0))
        value = float(scores(confusion_matrix(pred, target, self.n))["iou"].nanmean())
        return None if math.isnan(value) else value


def _predict_one(
    loaded: LoadedModel, folder: Path, rec: ImageRecord, archive: zipfile.ZipFile, scorer: _Scorer
) -> dict[str, Any]:
    """Predict one image, add its mask to the zip, and score it where its true mask can be compared."""
    with Image.open(folder / rec.file_name) as opened:
        picture = opened.convert("RGB")
    logits = mask_logits(loaded, picture)
    pred = logits[0].argmax(0)
    archive.writestr(mask_name(rec.file_name), _png(palette_mask(pred.numpy().astype(np.uint8))))
    counts = torch.bincount(pred.flatten(), minlength=loaded.num_classes).tolist()
    total = max(1, int(pred.numel()))
    return {
        "image_id": rec.id,
        "file": rec.file_name,
        "split": rec.split,
        "mask": mask_name(rec.file_name),
        "classes": {loaded.class_names[c]: n / total for c, n in enumerate(counts) if n},
        "iou": scorer.score(rec.id, logits),
    }


def _csv(rows: list[dict[str, Any]], class_names: list[str]) -> bytes:
    """``image_id, file, split, mask, iou``, then each class's share of the image's pixels."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["image_id", "file", "split", "mask", "iou", *(f"share_{c}" for c in class_names)])
    for r in rows:
        iou = "" if r["iou"] is None else f"{r['iou']:.6f}"
        shares = [f"{r['classes'].get(c, 0.0):.6f}" for c in class_names]
        writer.writerow([r["image_id"], r["file"], r["split"], r["mask"], iou, *shares])
    return out.getvalue().encode()
