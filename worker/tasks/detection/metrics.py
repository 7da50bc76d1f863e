"""COCO detection metrics with faster-coco-eval (the same twelve numbers as pycocotools, faster): AP at
IoU .50:.95, .50 and .75, AP for small / medium / large objects, AR at 1 / 10 / 100 detections and AR by
size, for boxes (``bbox/...``) and masks (``segm/...``); per class AP, AP50, AP75 and AR; precision-recall
curves per class at IoU 0.5; a class confusion matrix at IoU 0.5; and the images with the most missed
objects.

COCO marks a number it cannot measure (no object of that size) with -1; here it is NaN (JSON null)."""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.ops import box_iou

from backend.models.evaluation import Item, Kind
from backend.tasks.detection import COCO_NUMBERS

WORST_IMAGES = 10
PR_POINTS = 101  # COCO's recall thresholds 0, 0.01, ..., 1


@dataclass
class CocoResult:
    stats: list[float]  # the twelve numbers, COCO's -1 kept
    precision: np.ndarray  # (iou thresholds, recall thresholds, classes, areas, max dets)
    recall: np.ndarray  # (iou thresholds, classes, areas, max dets)
    cat_ids: list[int]
    scores: np.ndarray | None = None  # like precision: the score threshold at each recall point


def read_json(path: str | Path) -> Any:
    """A JSON file (orjson: results files hold a hundred thousand small objects, where json is slow)."""
    import orjson

    return orjson.loads(Path(path).read_bytes())


def coco_from_dict(dataset: dict[str, Any]) -> Any:
    """A faster-coco-eval ``COCO`` over an in-memory COCO dict (indexed in place, not copied)."""
    from faster_coco_eval import COCO

    return COCO(dataset)


def load_results(coco_gt: Any, detections: list[dict[str, Any]]) -> Any:
    """COCO results as a result ``COCO`` exactly as ``COCO.loadRes`` makes them (a result with a box gets
    the box's area; one with a mask only, the mask's area and box), without its per-result polygon for
    box results, which only a segm evaluation of box results would read. Results are copied shallowly;
    an ``image_id`` the ground truth lacks is a ValueError."""
    from faster_coco_eval import COCO

    known = set(coco_gt.getImgIds())
    anns: list[dict[str, Any]] = []
    boxes = bool(detections) and bool(detections[0].get("bbox"))
    for index, det in enumerate(detections):
        if det["image_id"] not in known:
            raise ValueError(f"results: image_id {det['image_id']} is not in the ground truth")
        ann = {**det, "id": index + 1, "iscrowd": 0}
        if boxes:
            ann["area"] = det["bbox"][2] * det["bbox"][3]
        else:
            ann["area"] = float(mask_utils.area(det["segmentation"]))
            if "bbox" not in det:
                ann["bbox"] = [float(v) for v in mask_utils.toBbox(det["segmentation"])]
        anns.append(ann)
    res = COCO()
    res.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": anns,
    }
    res.createIndex()
    return res


def coco_evaluate(gt: Any, detections: Any, iou_type: str) -> CocoResult:
    """COCOeval (faster-coco-eval) of ``detections`` (COCO results: a list of dicts, a JSON file, or a
    loaded COCO) against ``gt`` (a COCO dict, a JSON file, or a loaded COCO)."""
    with _no_gc():
        return _coco_evaluate(gt, detections, iou_type)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: results files make a hundred thousand small dicts (no
    cycles among them), and the collector's passes over them cost a third of an evaluation."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _coco_evaluate(gt: Any, detections: Any, iou_type: str) -> CocoResult:
    from faster_coco_eval import COCOeval_faster

    if isinstance(gt, str | Path):
        gt = read_json(gt)
    coco_gt = coco_from_dict(gt) if isinstance(gt, dict) else gt
    if isinstance(detections, str | Path):
        detections = read_json(detections)
    coco_dt = load_results(coco_gt, detections) if isinstance(detections, list) else detections
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return CocoResult(
        stats=[float(v) for v in ev.stats[:12]],
        precision=np.asarray(ev.eval["precision"]),
        recall=np.asarray(ev.eval["recall"]),
        cat_ids=[int(c) for c in ev.params.catIds],
        scores=np.asarray(ev.eval["scores"]) if "scores" in ev.eval else None,
    )


def _na(value: float) -> float:
    return math.nan if value < 0 else float(value)


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else math.nan


def summarize(result: CocoResult, kind: str, class_names: Sequence[str]) -> dict[str, Any]:
    """``{kind}/mAP`` ... ``{kind}/AR_l``, per class AP / AP50 / AP75 / AR and PR curves at IoU 0.5."""
    out: dict[str, Any] = {
        f"{kind}/{name}": _na(v) for name, v in zip(COCO_NUMBERS, result.stats, strict=True)
    }
    per_class: dict[str, dict[str, float]] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    recall_points = np.linspace(0, 1, PR_POINTS)
    for k, cat in enumerate(result.cat_ids):
        name = class_names[cat - 1]
        p = result.precision[:, :, k, 0, -1]  # all areas, 100 detections
        per_class[name] = {
            "AP": _mean_valid(p),
            "AP50": _mean_valid(p[0]),
            "AP75": _mean_valid(p[5]),
            "AR": _mean_valid(result.recall[:, k, 0, -1]),
        }
        at50 = p[0]
        curves[name] = {
            "recall": [round(float(r), 2) for r, v in zip(recall_points, at50, strict=True) if v > -1],
            "precision": [round(float(v), 4) for v in at50 if v > -1],
        }
        if result.scores is not None:  # the lowest score kept to reach each point
            at = result.scores[0, :, k, 0, -1]
            curves[name]["score"] = [round(float(t), 4) for t, v in zip(at, at50, strict=True) if v > -1]
    out[f"{kind}/per_class"] = per_class
    out[f"{kind}/pr_curve"] = curves
    return out


@dataclass
class _Image:
    image_id: int
    width: int
    height: int
    gt_boxes: np.ndarray  # (G, 4) xyxy
    gt_labels: np.ndarray
    gt_crowd: np.ndarray
    gt_rles: list[dict[str, Any]] | None
    boxes: np.ndarray  # (D, 4) xyxy
    scores: np.ndarray
    labels: np.ndarray
    rles: list[dict[str, Any]] | None


def _rles(masks: torch.Tensor) -> list[dict[str, Any]]:
    """(N, H, W) 0/1 masks as COCO RLEs with string counts (JSON-ready)."""
    if masks.numel() == 0 and masks.shape[0] == 0:
        return []
    array = np.asfortranarray(masks.to(torch.uint8).permute(1, 2, 0).cpu().numpy())
    encoded = mask_utils.encode(array)
    for rle in encoded:
        rle["counts"] = rle["counts"].decode("ascii")
    return list(encoded)


def _box(box: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in box]


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    return [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes]


class DetectionMetrics:
    """``update(outputs, targets)`` per batch (a detector's eval outputs and the loader's targets),
    ``compute()`` at the end: COCO bbox (and, with ``masks``, segm) metrics and the analyses above.

    ``score_threshold`` applies to the confusion matrix and the missed-object counts (what a user sees
    predicted); COCO mAP uses every detection."""

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        masks: bool = False,
        score_threshold: float = 0.5,
        mask_threshold: float = 0.5,
    ) -> None:
        self.class_names = list(class_names)
        self.masks = masks
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.reset()

    def reset(self) -> None:
        self.images: list[_Image] = []

    def update(self, outputs: list[dict[str, torch.Tensor]], targets: list[dict[str, Any]]) -> None:
        for out, target in zip(outputs, targets, strict=True):
            gt_masks = target.get("masks")
            if self.masks and gt_masks is not None:
                height, width = int(gt_masks.shape[-2]), int(gt_masks.shape[-1])
            else:
                height, width = int(target.get("height", 0)), int(target.get("width", 0))
            crowd = target.get("iscrowd")
            n_gt = len(target["boxes"])
            rles = None
            if self.masks:
                pred = out["masks"]
                binary = (pred[:, 0] >= self.mask_threshold) if pred.dim() == 4 else pred.bool()
                rles = _rles(binary)
            self.images.append(
                _Image(
                    image_id=int(target["image_id"]),
                    width=width,
                    height=height,
                    gt_boxes=target["boxes"].float().cpu().numpy().reshape(-1, 4),
                    gt_labels=target["labels"].cpu().numpy(),
                    gt_crowd=(
                        crowd.cpu().numpy().astype(bool) if crowd is not None else np.zeros(n_gt, bool)
                    ),
                    gt_rles=_rles(gt_masks) if self.masks and gt_masks is not None else None,
                    boxes=out["boxes"].float().cpu().numpy().reshape(-1, 4),
                    scores=out["scores"].float().cpu().numpy(),
                    labels=out["labels"].cpu().numpy(),
                    rles=rles,
                )
            )

    # ------------------------------------------------------------------ COCO form

    def coco_ground_truth(self) -> dict[str, Any]:
        annotations: list[dict[str, Any]] = []
        for im in self.images:
            xywh = _xywh(im.gt_boxes)
            for j in range(len(im.gt_boxes)):
                ann: dict[str, Any] = {
                    "id": len(annotations) + 1,
                    "image_id": im.image_id,
                    "category_id": int(im.gt_labels[j]),
                    "bbox": xywh[j],
                    "area": xywh[j][2] * xywh[j][3],
                    "iscrowd": int(im.gt_crowd[j]),
                }
                if im.gt_rles is not None:
                    ann["segmentation"] = im.gt_rles[j]
                    ann["area"] = float(mask_utils.area(im.gt_rles[j]))
                annotations.append(ann)
        return {
            "images": [{"id": im.image_id, "width": im.width, "height": im.height} for im in self.images],
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(self.class_names)],
            "annotations": annotations,
        }

    def coco_detections(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for im in self.images:
            for j, box in enumerate(_xywh(im.boxes)):
                det: dict[str, Any] = {
                    "image_id": im.image_id,
                    "category_id": int(im.labels[j]),
                    "bbox": box,
                    "score": float(im.scores[j]),
                }
                if im.rles is not None:
                    det["segmentation"] = im.rles[j]
                out.append(det)
        return out

    # ------------------------------------------------------------------ results

    def compute(self) -> dict[str, Any]:
        if not self.images:
            return {"samples": 0}
        gt = coco_from_dict(self.coco_ground_truth())
        detections = self.coco_detections()
        results: dict[str, Any] = {}
        for kind in ("bbox", "segm") if self.masks else ("bbox",):
            results.update(summarize(coco_evaluate(gt, detections, kind), kind, self.class_names))
        per_class: dict[str, dict[str, float]] = {}
        counts = self.object_counts()
        for name in self.class_names:
            row: dict[str, Any] = {"objects": counts.get(name, 0)}
            for kind in ("bbox", "segm") if self.masks else ("bbox",):
                for key, value in results[f"{kind}/per_class"].get(name, {}).items():
                    row[f"{kind}/{key}"] = value
            per_class[name] = row
        confusion, worst = self.confusion_and_misses()
        results.update(
            {
                "per_class": per_class,
                "confusion_matrix": confusion,
                "confusion_labels": [*self.class_names, "background"],
                "worst_images": worst,
                "samples": len(self.images),
                "objects": int(sum(counts.values())),
            }
        )
        return results

    def object_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for im in self.images:
            for label, crowd in zip(im.gt_labels, im.gt_crowd, strict=True):
                if not crowd:
                    name = self.class_names[int(label) - 1]
                    counts[name] = counts.get(name, 0) + 1
        return counts

    def items(self, iou: float = 0.5) -> list[Item]:
        """Each detection and each object of the evaluation, matched as :meth:`confusion_and_misses`
        matches them but over every detection: greedily by score, so the matches of the detections at or
        above any threshold are those a match at that threshold makes. A detection's row has its true
        class (the object it found; ``None``: nothing there) and score; an object's row (``missed``) has
        the score of the detection that found it (``None``: none did): it is missed at a threshold above
        that score. Boxes (xyxy, the picture's pixels) are in ``detail``."""
        out: list[Item] = []
        for im in self.images:
            real = ~im.gt_crowd
            gt_boxes, gt_labels = im.gt_boxes[real], im.gt_labels[real]
            order = np.argsort(-im.scores, kind="stable")
            ious = (
                box_iou(torch.from_numpy(im.boxes[order]), torch.from_numpy(gt_boxes)).numpy()
                if len(im.boxes) and len(gt_boxes)
                else np.zeros((len(im.boxes), len(gt_boxes)))
            )
            found_at: list[float | None] = [None] * len(gt_boxes)
            taken = np.zeros(len(gt_boxes), dtype=bool)
            for row, d in enumerate(order):
                score, box = float(im.scores[d]), _box(im.boxes[d])
                candidates = np.where(~taken & (ious[row] >= iou))[0] if len(gt_boxes) else np.array([], int)
                if candidates.size == 0:
                    detail: dict[str, Any] = {"box": box}
                    truth = None
                else:
                    g = int(candidates[np.argmax(ious[row][candidates])])
                    taken[g], found_at[g] = True, score
                    truth = int(gt_labels[g]) - 1
                    detail = {"box": box, "true_box": _box(gt_boxes[g]), "iou": round(float(ious[row][g]), 4)}
                out.append(
                    Item(
                        im.image_id,
                        truth,
                        int(im.labels[d]) - 1,
                        score,
                        kind=Kind.detection.value,
                        detail=detail,
                    )
                )
            for g, at in enumerate(found_at):
                out.append(
                    Item(
                        im.image_id,
                        int(gt_labels[g]) - 1,
                        None,
                        at,
                        kind=Kind.missed.value,
                        detail={"true_box": _box(gt_boxes[g])},
                    )
                )
        return out

    def confusion_and_misses(self, iou: float = 0.5) -> tuple[list[list[int]], list[dict[str, Any]]]:
        """The confusion matrix at IoU ``iou`` over detections above the score threshold (rows: true
        class, then background for false detections; columns: predicted class, then background for
        missed objects), matching greedily by score whatever the class; and the images with the most
        objects not found by a detection of their own class."""
        k = len(self.class_names)
        cm = np.zeros((k + 1, k + 1), dtype=np.int64)
        per_image: list[dict[str, Any]] = []
        for im in self.images:
            keep = im.scores >= self.score_threshold
            boxes, labels = im.boxes[keep], im.labels[keep]
            order = np.argsort(-im.scores[keep], kind="stable")
            real = ~im.gt_crowd
            gt_boxes, gt_labels = im.gt_boxes[real], im.gt_labels[real]
            ious = (
                box_iou(torch.from_numpy(boxes[order]), torch.from_numpy(gt_boxes)).numpy()
                if len(boxes) and len(gt_boxes)
                else np.zeros((len(boxes), len(gt_boxes)))
            )
            taken = np.zeros(len(gt_boxes), dtype=bool)
            found = np.zeros(len(gt_boxes), dtype=bool)
            for row, d in enumerate(order):
                pred = int(labels[d]) - 1
                candidates = np.where(~taken & (ious[row] >= iou))[0] if len(gt_boxes) else np.array([], int)
                if candidates.size == 0:
                    cm[k, pred] += 1  # a false detection: nothing there
                    continue
                g = candidates[np.argmax(ious[row][candidates])]
                taken[g] = True
                cm[int(gt_labels[g]) - 1, pred] += 1
                found[g] = found[g] or pred == int(gt_labels[g]) - 1
            for g in np.where(~taken)[0]:
                cm[int(gt_labels[g]) - 1, k] += 1  # missed
            per_image.append(
                {
                    "image_id": im.image_id,
                    "missed": int((~found).sum()),
                    "objects": len(gt_boxes),
                    "detections": int(keep.sum()),
                    "false_detections": int(len(boxes) - taken.sum()),
                }
            )
        ranked = sorted(per_image, key=lambda r: (-r["missed"], -r["false_detections"], r["image_id"]))
        worst = [r for r in ranked if r["missed"] or r["false_detections"]][:WORST_IMAGES]
        return cm.tolist(), worst
