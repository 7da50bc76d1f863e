"""The ICDAR 2015 Challenge 4 (Task 4.1, text localisation) metric: H-mean of word-level precision and
recall under one-to-one IoU matching, accumulated over a split, with its precision/recall curve over
detection score thresholds.

The protocol is the official RRC ``script.py`` (``evaluate_method``), which mmocr's ``HmeanIOUMetric``
(strategy ``"vanilla"``) also implements. Per image:

1. Ground-truth polygons flagged don't-care (ICDAR's ``###`` transcription) are set aside.
2. A detection is *don't-care* (dropped: neither a true nor a false positive) when, for some don't-care
   polygon, ``intersection_area(dontcare, det) / area(det) > 0.5`` (``AREA_PRECISION_CONSTRAINT``; a
   zero-area detection has share 0). The official script tests each don't-care polygon on its own and
   stops at the first that passes::

       for dontCarePol in gtDontCarePolsNum:
           dontCarePol = gtPols[dontCarePol]
           intersected_area = get_intersection(dontCarePol, detPol)
           pdDimensions = detPol.area()
           precision = 0 if pdDimensions == 0 else intersected_area / pdDimensions
           if (precision > evaluationParams['AREA_PRECISION_CONSTRAINT']):
               detDontCarePolsNum.append(len(detPols) - 1)
               break

   That per-polygon test is what is implemented here. mmocr tests each ignored polygon on its own too
   (with ``area + 1e-5`` as the denominator); summing the overlap with all don't-care polygons would
   drop more detections (one lying across two ``###`` regions, 30 % on each, would go) and give numbers
   that are not comparable with published ICDAR 2015 results.
3. IoU is ``inter / (area(det) + area(gt) - inter)`` (0 when that union is 0), between care ground
   truths and care detections.
4. Matching is the script's greedy loop in index order: for each ground truth in order, for each
   detection in order, if neither is matched yet and ``IoU > 0.5`` (strictly), they match. It is not
   a best-IoU or maximum matching, so one detection covering two words matches at most one of them and
   a later, better pair can lose to an earlier one.

Split totals are sums of counts over images, not means of per-image scores (the script's
``methodRecall`` / ``methodPrecision``): ``recall = matched / care gts`` (0 when there are no care
gts), ``precision = matched / care detections`` (0 when there are none), ``hmean = 2PR / (P + R)`` (0
when ``P + R`` is 0). Per image the script's conventions are kept where a per-image number is reported
(``worst_images``): with no care ground truth the image's recall is 1.

Score thresholds are what the official protocol leaves to the submitter: here only detections with
``score >= threshold`` take part, and the curve is that protocol run at every threshold, as mmocr does.
Filtering by score keeps the surviving detections in their index order, so the greedy matching at each
threshold is exactly the script run on the filtered detections.

Differences from the script, all in how polygons are read, none in the protocol:

* The script reads quadrilaterals with integer coordinates (Polygon3); here any polygon of 3 or more
  float vertices is taken as it is (no rounding), as mmocr does for curved text.
* Polygons shapely calls invalid (self-intersecting "bow-ties", repeated or collinear vertices) are
  repaired with ``shapely.make_valid`` and only the polygonal part of the result is kept, so a bow-tie
  becomes its two triangles. Fewer than 3 vertices, non-finite coordinates or nothing polygonal left
  give an empty polygon of area 0: such a ground truth can never be matched but still counts as a care
  word (a missed one) unless it is flagged don't-care; such a detection is a care detection that can
  never match (a false positive).
* GEOS can, rarely, fail on an overlay of nearly degenerate valid polygons; such a pair counts as not
  overlapping (intersection 0) instead of stopping the evaluation.

Speed: per image, everything that does not depend on the score threshold (each detection's don't-care
flag and the ``IoU > 0.5`` candidate pairs between care ground truths and care detections) is computed
once in :meth:`TextDetectionMetrics.update`, with vectorised shapely over the whole batch. Only pairs
that could pass a test are intersected: the overlap of the axis-aligned bounds (capped by either area)
bounds the intersection area from above, and a pair whose bound keeps its overlap share or IoU below
0.5 (with a relative margin of 1e-6, far above rounding) is decided without an overlay. Only the
candidate pairs, the care detections' scores and a few counts are kept per image, not the geometries.
At each threshold only the greedy matching is rerun, and only for the few ground truths or detections
that have more than one candidate; a pair whose ground truth and detection have no other candidate
matches exactly when its detection is kept, which is counted for all thresholds at once with
``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

IOU_CONSTRAINT = 0.5
"""A care ground truth and a care detection can match when their IoU is strictly above this."""
AREA_PRECISION_CONSTRAINT = 0.5
"""A detection is don't-care when more than this share of its area lies in one don't-care polygon."""

_SLACK = 1.0 - 1e-6
"""Pairs are only skipped when a bound puts them this far (relatively) below a constraint, far more than
the rounding of any area computed here, so skipping never changes a decision."""
_EMPTY = shapely.Polygon()
_POLYGONAL = (shapely.Polygon, shapely.MultiPolygon)


@dataclass
class ImageResult:
    """One image at the chosen score threshold; indices refer to the lists given to ``update``."""

    image_id: int
    gt_care: int
    det_care: int
    matched: int
    missed: int  # gt_care - matched
    false_positives: int  # det_care - matched
    matches: list[tuple[int, int]] = field(default_factory=list)  # (gt index, det index)
    missed_words: list[int] = field(default_factory=list)  # care gt indices no detection matched
    false_words: list[int] = field(default_factory=list)  # care detection indices (kept) matching none


@dataclass(frozen=True)
class _ImageRecord:
    """What one image leaves behind after ``update``: enough to rerun the matching at any threshold.

    ``pair_gt`` / ``pair_det`` are the candidate pairs (care gt, care detection, IoU > 0.5) as indices
    into the image's original lists, in the script's loop order (gt, then detection); ``pair_simple``
    marks pairs whose gt and detection appear in no other candidate pair."""

    image_id: int
    gt_care: int
    gt_dont_care: int
    gt_care_index: np.ndarray  # int64, the care words' indices in the image's list
    det_care_index: np.ndarray  # int64, the care detections' indices in the image's list
    det_scores: np.ndarray  # float64, scores of the care detections
    pair_gt: np.ndarray  # int64
    pair_det: np.ndarray  # int64
    pair_score: np.ndarray  # float64
    pair_simple: np.ndarray  # bool


def _points(polygon: Any) -> np.ndarray:
    """An (N, 2) float64 array from an (N, 2) or flat (2N,) array, tensor or nested list."""
    if hasattr(polygon, "detach"):  # a torch tensor, without importing torch here
        polygon = polygon.detach().cpu().numpy()
    pts = np.asarray(polygon, dtype=np.float64)
    if pts.ndim == 1 and pts.size % 2 == 0:
        pts = pts.reshape(-1, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"a polygon must be an (N, 2) array of points, got shape {pts.shape}")
    return pts


def _flat(values: Any, dtype: type, n: int, what: str) -> np.ndarray:
    """A 1-D array of ``n`` values from a sequence or tensor; a clear error when the count is off."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{what}: {arr.size} values for {n} polygons")
    return arr


def _polygonal_part(geom: Any) -> Any:
    """The polygonal part of ``make_valid``'s result: a bow-tie's triangles survive, a collapsed ring
    (a line or a point) becomes an empty polygon."""
    if isinstance(geom, _POLYGONAL):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, _POLYGONAL)]
    if not parts:
        return _EMPTY
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def _geometries(polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Shapely polygons for a list of (N, 2) point arrays, built with one vectorised call; degenerate
    input becomes an empty polygon and invalid rings are repaired (see the module docstring)."""
    out = np.full(len(polygons), _EMPTY, dtype=object)
    lengths = np.fromiter((len(p) for p in polygons), dtype=np.int64, count=len(polygons))
    usable = np.flatnonzero(lengths >= 3)
    if len(usable):
        lens = lengths[usable]
        coords = np.concatenate([polygons[i] for i in usable])
        starts = np.cumsum(lens) - lens
        ends = starts + lens - 1
        finite = np.logical_and.reduceat(np.isfinite(coords).all(axis=1), starts)
        closed = (coords[starts] == coords[ends]).all(axis=1)
        # A ring needs 4 coordinates once closed: 3 points given already closed are only 2 vertices.
        ok = finite & (lens + ~closed >= 4)
        if not ok.all():
            coords = coords[np.repeat(ok, lens)]
            usable, lens, closed = usable[ok], lens[ok], closed[ok]
            starts = np.cumsum(lens) - lens
        if len(usable):
            open_ = np.flatnonzero(~closed)
            coords = np.insert(coords, starts[open_] + lens[open_], coords[starts[open_]], axis=0)
            index = np.repeat(np.arange(len(usable)), lens + ~closed)
            out[usable] = shapely.polygons(shapely.linearrings(coords, indices=index))
    for i in np.flatnonzero(~shapely.is_valid(out)):
        out[i] = _polygonal_part(shapely.make_valid(out[i]))
    return out


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``area(a[k] & b[k])`` for every k, vectorised; a pair GEOS cannot overlay counts as 0."""
    if len(a) == 0:
        return np.zeros(0)
    try:
        return np.asarray(shapely.area(shapely.intersection(a, b)), dtype=np.float64)
    except GEOSException:
        areas = np.zeros(len(a))
        for k in range(len(a)):
            try:
                areas[k] = shapely.area(shapely.intersection(a[k], b[k]))
            except GEOSException:
                areas[k] = 0.0
        return areas


def _within_image_pairs(
    gt_image: np.ndarray, det_start: np.ndarray, det_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (gt, detection) pair of the same image as flat global indices, ordered by gt then
    detection (the script's loop order). ``det_start`` / ``det_count`` are per image of the batch."""
    reps = det_count[gt_image]
    total = int(reps.sum())
    gi = np.repeat(np.arange(len(gt_image)), reps)
    block_start = np.cumsum(reps) - reps
    local = np.arange(total) - np.repeat(block_start, reps)
    di = det_start[gt_image[gi]] + local
    return gi, di


def _box_overlap_area(gb: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Area of the overlap of axis-aligned bounds (minx, miny, maxx, maxy), 0 where they do not overlap
    and for empty polygons (NaN bounds): an upper bound of the polygons' intersection area."""
    with np.errstate(invalid="ignore"):
        w = np.minimum(gb[:, 2], db[:, 2]) - np.maximum(gb[:, 0], db[:, 0])
        h = np.minimum(gb[:, 3], db[:, 3]) - np.maximum(gb[:, 1], db[:, 1])
        return np.where((w > 0) & (h > 0), w * h, 0.0)


def _greedy(pair_gt: Sequence[int], pair_det: Sequence[int]) -> list[int]:
    """Positions of the pairs the script's loop matches, given the candidate pairs in loop order."""
    used_gt: set[int] = set()
    used_det: set[int] = set()
    chosen: list[int] = []
    for k, (g, d) in enumerate(zip(pair_gt, pair_det, strict=True)):
        if g in used_gt or d in used_det:
            continue
        used_gt.add(g)
        used_det.add(d)
        chosen.append(k)
    return chosen


def _scores(matched: int, gt_care: int, det_care: int) -> tuple[float, float, float]:
    """Split-level precision, recall, hmean with the script's ``method*`` conventions for empty cases."""
    recall = 0.0 if gt_care == 0 else matched / gt_care
    precision = 0.0 if det_care == 0 else matched / det_care
    hmean = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return float(precision), float(recall), float(hmean)


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, how many of the (sorted) values are >= it."""
    return len(sorted_values) - np.searchsorted(sorted_values, thresholds, side="left")


class TextDetectionMetrics:
    """Accumulates a split; the engine's Evaluator calls ``reset()``, ``update(outputs, targets)`` per
    batch and ``compute()`` at the end.

    ``score_threshold`` is the threshold of the headline numbers, of :meth:`image_results` and of
    ``worst_images``; ``thresholds`` are those of the precision/recall curve (``score_threshold`` is
    added when missing); ``worst`` is how many images ``worst_images`` lists."""

    def __init__(
        self, score_threshold: float = 0.5, thresholds: Sequence[float] | None = None, worst: int = 8
    ) -> None:
        self.score_threshold = float(score_threshold)
        if thresholds is None:
            thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2).tolist()
        values = {float(t) for t in thresholds} | {self.score_threshold}
        self.thresholds: list[float] = sorted(values)
        self.worst = max(0, int(worst))
        self._records: list[_ImageRecord] = []
        self._results: list[ImageResult] | None = None

    def reset(self) -> None:
        self._records = []
        self._results = None

    def update(self, outputs: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
        """Add a batch of images.

        ``outputs[i]``: ``{"polygons": [(K, 2) points per detection], "scores": [K floats]}`` (without
        ``"scores"`` every detection has score 1). ``targets[i]``: ``{"polygons": [(N, 2) points per
        word], "ignore": [N bools, True for don't-care], "image_id": int}`` (``ignore`` defaults to all
        False, ``image_id`` to the image's position in the split). Points may be numpy arrays, torch
        tensors or nested lists, (N, 2) or flat (2N,)."""
        if len(outputs) != len(targets):
            raise ValueError(f"{len(outputs)} outputs for {len(targets)} targets")
        if not targets:
            return
        gt_pts: list[np.ndarray] = []
        det_pts: list[np.ndarray] = []
        gt_ign: list[np.ndarray] = []
        det_sc: list[np.ndarray] = []
        n_gt = np.zeros(len(targets), dtype=np.int64)
        n_det = np.zeros(len(targets), dtype=np.int64)
        image_ids: list[int] = []
        for b, (out, tgt) in enumerate(zip(outputs, targets, strict=True)):
            gts = [_points(p) for p in tgt.get("polygons", [])]
            dets = [_points(p) for p in out.get("polygons", [])]
            ignore = tgt.get("ignore")
            scores = out.get("scores")
            gt_ign.append(
                np.zeros(len(gts), bool) if ignore is None else _flat(ignore, bool, len(gts), "ignore")
            )
            det_sc.append(
                np.ones(len(dets)) if scores is None else _flat(scores, np.float64, len(dets), "scores")
            )
            gt_pts += gts
            det_pts += dets
            n_gt[b], n_det[b] = len(gts), len(dets)
            image_id = tgt.get("image_id")
            image_ids.append(len(self._records) + b if image_id is None else int(image_id))

        gt_geom, det_geom = _geometries(gt_pts), _geometries(det_pts)
        gt_area, det_area = shapely.area(gt_geom), shapely.area(det_geom)
        ignore_all = np.concatenate(gt_ign)
        score_all = np.concatenate(det_sc)
        gt_start = np.cumsum(n_gt) - n_gt
        det_start = np.cumsum(n_det) - n_det
        gt_image = np.repeat(np.arange(len(targets)), n_gt)

        # Pairs of the same image whose bounds overlap. ``upper`` bounds each pair's intersection area
        # (bounds overlap, either area); only pairs whose bound could pass a test are intersected.
        gi, di = _within_image_pairs(gt_image, det_start, n_det)
        overlap = _box_overlap_area(shapely.bounds(gt_geom)[gi], shapely.bounds(det_geom)[di])
        upper = np.minimum(overlap, np.minimum(gt_area[gi], det_area[di]))
        near = upper > 0
        gi, di, upper = gi[near], di[near], upper[near]

        # Don't-care detections: more than half of their area inside one don't-care polygon.
        det_dont_care = np.zeros(len(det_geom), dtype=bool)
        on_dc = ignore_all[gi]
        dg, dd = gi[on_dc], di[on_dc]
        could = upper[on_dc] > AREA_PRECISION_CONSTRAINT * _SLACK * det_area[dd]
        dg, dd = dg[could], dd[could]
        share = _intersection_areas(det_geom[dd], gt_geom[dg]) / det_area[dd]
        det_dont_care[dd[share > AREA_PRECISION_CONSTRAINT]] = True

        # IoU between care gts and care detections; keep the pairs that could match.
        care = ~on_dc & ~det_dont_care[di]
        gi, di, upper = gi[care], di[care], upper[care]
        sum_area = det_area[di] + gt_area[gi]
        could = upper > IOU_CONSTRAINT * _SLACK * (sum_area - upper)
        gi, di, sum_area = gi[could], di[could], sum_area[could]
        inter = _intersection_areas(det_geom[di], gt_geom[gi])
        union = sum_area - inter
        iou = np.divide(inter, union, out=np.zeros(len(inter)), where=union > 0)
        cand = iou > IOU_CONSTRAINT
        gi, di = gi[cand], di[cand]
        gt_degree = np.bincount(gi, minlength=len(gt_geom))
        det_degree = np.bincount(di, minlength=len(det_geom))
        simple = (gt_degree[gi] == 1) & (det_degree[di] == 1)

        pair_image = gt_image[gi]
        bounds = np.searchsorted(pair_image, np.arange(len(targets) + 1), side="left")
        for b in range(len(targets)):
            lo, hi = bounds[b], bounds[b + 1]
            d_lo, d_hi = det_start[b], det_start[b] + n_det[b]
            ign = gt_ign[b]
            self._records.append(
                _ImageRecord(
                    image_id=image_ids[b],
                    gt_care=int((~ign).sum()),
                    gt_dont_care=int(ign.sum()),
                    gt_care_index=np.flatnonzero(~ign),
                    det_care_index=np.flatnonzero(~det_dont_care[d_lo:d_hi]),
                    det_scores=score_all[d_lo:d_hi][~det_dont_care[d_lo:d_hi]],
                    pair_gt=gi[lo:hi] - gt_start[b],
                    pair_det=di[lo:hi] - d_lo,
                    pair_score=score_all[di[lo:hi]],
                    pair_simple=simple[lo:hi],
                )
            )
        self._results = None

    def image_results(self) -> list[ImageResult]:
        """Per image at ``score_threshold``, in update order."""
        if self._results is None:
            t = self.score_threshold
            results = []
            for r in self._records:
                kept = r.pair_score >= t
                pg, pd = r.pair_gt[kept].tolist(), r.pair_det[kept].tolist()
                matches = [(pg[k], pd[k]) for k in _greedy(pg, pd)]
                det_care = int((r.det_scores >= t).sum())
                found = {g for g, _ in matches}
                used = {d for _, d in matches}
                kept_dets = r.det_care_index[r.det_scores >= t].tolist()
                results.append(
                    ImageResult(
                        image_id=r.image_id,
                        gt_care=r.gt_care,
                        det_care=det_care,
                        matched=len(matches),
                        missed=r.gt_care - len(matches),
                        false_positives=det_care - len(matches),
                        matches=matches,
                        missed_words=[g for g in r.gt_care_index.tolist() if g not in found],
                        false_words=[d for d in kept_dets if d not in used],
                    )
                )
            self._results = results
        return list(self._results)

    def _curve_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Matched and care-detection counts over the split at every threshold of the curve."""
        thr = np.asarray(self.thresholds, dtype=np.float64)
        if not self._records:
            return np.zeros(len(thr), dtype=np.int64), np.zeros(len(thr), dtype=np.int64)
        det_scores = np.sort(np.concatenate([r.det_scores for r in self._records]))
        det_care = _count_at_least(det_scores, thr)
        simple_scores = np.sort(np.concatenate([r.pair_score[r.pair_simple] for r in self._records]))
        matched = _count_at_least(simple_scores, thr)
        for r in self._records:
            tangled = ~r.pair_simple
            if not tangled.any():
                continue
            pg, pd, ps = r.pair_gt[tangled], r.pair_det[tangled], r.pair_score[tangled]
            for i, t in enumerate(thr):
                kept = ps >= t
                if kept.any():
                    matched[i] += len(_greedy(pg[kept].tolist(), pd[kept].tolist()))
        return matched, det_care

    def compute(self) -> dict[str, Any]:
        """Headline numbers at ``score_threshold``, the curve, the best threshold on it and the worst
        images; plain Python numbers throughout (JSON-safe)."""
        gt_care = sum(r.gt_care for r in self._records)
        matched, det_care = self._curve_counts()
        curve_p, curve_r, curve_h = [], [], []
        for m, d in zip(matched.tolist(), det_care.tolist(), strict=True):
            p, r, h = _scores(m, gt_care, d)
            curve_p.append(p)
            curve_r.append(r)
            curve_h.append(h)
        at = self.thresholds.index(self.score_threshold)
        # The first (lowest) threshold reaching the highest hmean, as a strict ">" scan would pick.
        best = int(np.argmax(curve_h))
        worst = [
            {
                "image_id": r.image_id,
                # The words the model page counts, in the detectors' terms: missed of objects, false.
                "missed": r.missed,
                "objects": r.gt_care,
                "false_detections": r.false_positives,
                "recall": float(r.matched / r.gt_care) if r.gt_care else 1.0,
            }
            for r in sorted(
                (x for x in self.image_results() if x.missed or x.false_positives),
                key=lambda x: (-x.missed, -x.false_positives),
            )[: self.worst]
        ]
        return {
            "hmean": curve_h[at],
            "precision": curve_p[at],
            "recall": curve_r[at],
            "counts": {
                "gt_care": int(gt_care),
                "det_care": int(det_care[at]),
                "matched": int(matched[at]),
                "gt_dont_care": int(sum(r.gt_dont_care for r in self._records)),
                "images": len(self._records),
            },
            "pr_curve": {
                "thresholds": list(self.thresholds),
                "precision": curve_p,
                "recall": curve_r,
                "hmean": curve_h,
            },
            "best_threshold": {"threshold": self.thresholds[best], "hmean": curve_h[best]},
            "worst_images": worst,
        }


def evaluate_image(
    gt_polygons: Sequence[Any],
    gt_ignore: Sequence[bool],
    det_polygons: Sequence[Any],
    det_scores: Sequence[float],
    score_threshold: float,
) -> ImageResult:
    """One image under the same protocol (``image_id`` 0): a convenience for previews and tests."""
    metrics = TextDetectionMetrics(score_threshold=score_threshold, thresholds=[score_threshold])
    metrics.update(
        [{"polygons": list(det_polygons), "scores": det_scores}],
        [{"polygons": list(gt_polygons), "ignore": gt_ignore, "image_id": 0}],
    )
    return metrics.image_results()[0]
