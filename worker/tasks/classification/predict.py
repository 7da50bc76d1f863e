"""A classifier over a dataset split: per image its true class (if single-label) and its top-k classes,
as CSV and JSON artifacts (kind ``predictions``), with top-1 and top-k accuracy over the labelled ones."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from backend.datasets.canonical import CanonicalDataset, ImageRecord
from backend.files import atomic_write_bytes
from backend.jobs.kinds import PredictConfig
from backend.models.contract import ArtifactKind
from worker.context import JobContext
from worker.data import eval_transform, read_image
from worker.jobs.common import (
    owned_dataset,
    record_artifact,
    split_records,
    true_class,
)
from worker.models import LoadedModel
from worker.predict import probabilities, top_k

BATCH_SIZE = 16


class _SplitImages(TorchDataset[tuple[torch.Tensor, int]]):
    """Eval-transformed images of a split, with their position in the list."""

    def __init__(self, folder: Path, records: list[ImageRecord], loaded: LoadedModel) -> None:
        self.folder, self.records = folder, records
        self.transform = eval_transform(loaded.input_size, loaded.normalize["mean"], loaded.normalize["std"])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(read_image(self.folder / self.records[i].file_name)), i


def predict_split(
    ctx: JobContext, loaded: LoadedModel, folder: Path, ds: CanonicalDataset, split: str, k: int
) -> list[dict[str, Any]]:
    """One row per image of ``split``: its file, true class (if single-label) and the top ``k`` classes."""
    records = split_records(ds, split)
    # One loader process decodes while this one runs the model: the two CPU-bound halves overlap.
    loader = DataLoader(_SplitImages(folder, records, loaded), batch_size=BATCH_SIZE, num_workers=1)
    rows: list[dict[str, Any]] = []
    for batch, positions in loader:
        ctx.check()
        probs = probabilities(loaded, batch)
        for row_probs, pos in zip(probs, positions.tolist(), strict=True):
            rec = records[pos]
            preds = top_k(loaded, row_probs, k)
            rows.append(
                {
                    "image_id": rec.id,
                    "file": rec.file_name,
                    "source": rec.source,
                    "split": rec.split,
                    "label": true_class(ds, rec),
                    "predicted": preds[0].name,
                    "score": preds[0].score,
                    "top_k": [{"class": p.name, "index": p.index, "score": p.score} for p in preds],
                }
            )
        ctx.progress(len(rows) / max(1, len(records)), f"{len(rows)}/{len(records)} images")
    return rows


def _csv(rows: list[dict[str, Any]], k: int) -> bytes:
    """``image_id, file, split, label, predicted, score``, then ``class_2, score_2`` ... ``class_k``."""
    out = io.StringIO()
    writer = csv.writer(out)
    extra = [col for r in range(2, k + 1) for col in (f"class_{r}", f"score_{r}")]
    writer.writerow(["image_id", "file", "split", "label", "predicted", "score", *extra])
    for row in rows:
        tail = [v for p in row["top_k"][1:] for v in (p["class"], f"{p['score']:.6f}")]
        label = row["label"] if row["label"] is not None else ""
        writer.writerow(
            [
                row["image_id"],
                row["file"],
                row["split"],
                label,
                row["predicted"],
                f"{row['score']:.6f}",
                *tail,
            ]
        )
    return out.getvalue().encode()


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and top-1 / top-k accuracy over the images that have a single class label."""
    labelled = [r for r in rows if r["label"] is not None]
    correct = sum(r["predicted"] == r["label"] for r in labelled)
    in_top_k = sum(any(p["class"] == r["label"] for p in r["top_k"]) for r in labelled)
    return {
        "images": len(rows),
        "labelled": len(labelled),
        "accuracy": correct / len(labelled) if labelled else None,
        "top_k_accuracy": in_top_k / len(labelled) if labelled else None,
    }


def predict_classification_split(ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
    """Predict a dataset split; CSV and JSON artifacts (kind ``predictions``) and a summary result."""
    folder, ds = owned_dataset(ctx, cfg.dataset_id)
    started = time.monotonic()
    k = min(cfg.top_k, loaded.num_classes)
    rows = predict_split(ctx, loaded, folder, ds, cfg.split, k)
    summary = {**summarize(rows), "seconds": round(time.monotonic() - started, 3)}
    csv_path, json_path = ctx.work_dir / "predictions.csv", ctx.work_dir / "predictions.json"
    atomic_write_bytes(csv_path, _csv(rows, k))
    document = {
        "model_id": cfg.model_id,
        "dataset_id": cfg.dataset_id,
        "split": cfg.split,
        **summary,
        "rows": rows,
    }
    atomic_write_bytes(json_path, json.dumps(document).encode())
    ids = [
        record_artifact(
            ctx, kind=ArtifactKind.predictions, name=p.name, path=p, media_type=media, model_id=cfg.model_id
        )
        for p, media in ((csv_path, "text/csv"), (json_path, "application/json"))
    ]
    ctx.progress(1.0, f"{len(rows)} images predicted", force=True)
    return {**summary, "model_id": cfg.model_id, "split": cfg.split, "artifact_ids": ids}
