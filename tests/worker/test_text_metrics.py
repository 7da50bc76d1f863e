"""The ICDAR 2015 text-localisation metric: hand-made cases with exact numbers for every rule of the
protocol (don't-care share > 0.5, IoU > 0.5, greedy index-order matching, counts summed over the split),
invalid polygons, the score-threshold curve, and a randomised cross-check against a plain per-pair
implementation of the official script."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from tests.worker.icdar_reference import reference_counts
from worker.tasks.text_detection.metrics import ImageResult, TextDetectionMetrics, evaluate_image


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def one(
    gts: list[Any], dets: list[Any], ignore: list[bool] | None = None, scores: list[float] | None = None
) -> ImageResult:
    return evaluate_image(
        gts, ignore or [False] * len(gts), dets, scores or [1.0] * len(dets), score_threshold=0.5
    )


def split(images: list[tuple[list[Any], list[bool], list[Any], list[float]]], **kw: Any) -> dict[str, Any]:
    m = TextDetectionMetrics(**kw)
    m.update(
        [{"polygons": d, "scores": s} for _, _, d, s in images],
        [{"polygons": g, "ignore": i, "image_id": k} for k, (g, i, _, _) in enumerate(images)],
    )
    return m.compute()


WORDS = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]


def test_perfect_detection() -> None:
    out = split([(WORDS, [False] * 3, [w.copy() for w in WORDS], [0.9] * 3)])
    assert (out["precision"], out["recall"], out["hmean"]) == (1.0, 1.0, 1.0)
    assert out["counts"] == {"gt_care": 3, "det_care": 3, "matched": 3, "gt_dont_care": 0, "images": 1}
    assert out["worst_images"] == []


def test_one_missed_word() -> None:
    r = one(WORDS, WORDS[:2])
    assert (r.matched, r.missed, r.false_positives) == (2, 1, 0)
    out = split([(WORDS, [False] * 3, WORDS[:2], [1.0, 1.0])])
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["precision"] == 1.0
    assert out["hmean"] == pytest.approx(0.8)


def test_false_positive() -> None:
    out = split([(WORDS[:2], [False] * 2, [*WORDS[:2], box(60, 60, 70, 70)], [1.0] * 3)])
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == 1.0
    assert out["hmean"] == pytest.approx(0.8)


def test_detection_on_dont_care_is_dropped() -> None:
    gts = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    r = one(gts, [box(0, 0, 10, 10), box(20, 0, 30, 10)], ignore=[False, True])
    assert (r.gt_care, r.det_care, r.matched, r.false_positives) == (1, 1, 1, 0)
    out = split([(gts, [False, True], [box(0, 0, 10, 10), box(20, 0, 30, 10)], [1.0, 1.0])])
    assert (out["precision"], out["recall"]) == (1.0, 1.0)
    assert out["counts"]["gt_dont_care"] == 1


def test_dont_care_share_must_exceed_half() -> None:
    dc = [box(1, 0, 3, 1)]
    # Exactly half of the detection's area on the don't-care region: kept, and a false positive.
    half = one(dc, [box(0, 0, 2, 1)], ignore=[True])
    assert (half.gt_care, half.det_care, half.false_positives) == (0, 1, 1)
    # 60 % on it: dropped.
    dropped = one([box(4, 0, 10, 1)], [box(0, 0, 10, 1)], ignore=[True])
    assert (dropped.det_care, dropped.false_positives) == (0, 0)


def test_dont_care_polygons_are_tested_one_at_a_time() -> None:
    # 40 % of the detection on each of two don't-care regions: no single one holds more than half.
    r = one([box(0, 0, 4, 1), box(6, 0, 10, 1)], [box(0, 0, 10, 1)], ignore=[True, True])
    assert (r.det_care, r.false_positives) == (1, 1)


def test_iou_must_exceed_half() -> None:
    gt = [box(0, 0, 2, 1)]  # area 2
    exactly = one(gt, [box(0, 0, 1, 1)])  # inter 1, union 2: IoU 0.5
    assert (exactly.matched, exactly.missed, exactly.false_positives) == (0, 1, 1)
    above = one(gt, [box(0, 0, 1.01, 1)])  # inter 1.01, union 2: IoU 0.505
    assert above.matched == 1 and above.matches == [(0, 0)]


def test_merged_detection_matches_one_word() -> None:
    # Both words overlap the detection with IoU 90/110 > 0.5; it can only be matched once.
    r = one([box(0, 0, 10, 10), box(2, 0, 12, 10)], [box(1, 0, 11, 10)])
    assert (r.matched, r.missed, r.false_positives) == (1, 1, 0)
    assert r.matches == [(0, 0)]


def test_split_detections_on_one_word() -> None:
    gt = [box(0, 0, 10, 10)]
    both = one(gt, [box(0, 0, 10, 10), box(0.5, 0, 10, 10)])
    assert (both.matched, both.false_positives) == (1, 1) and both.matches == [(0, 0)]
    halves = one(gt, [box(0, 0, 5, 10), box(5, 0, 10, 10)])  # IoU 0.5 each: neither matches
    assert (halves.matched, halves.missed, halves.false_positives) == (0, 1, 2)


def test_greedy_index_order_not_best_pair() -> None:
    # gt0: det0 IoU 80/120, det1 IoU 0.9; gt1: det0 IoU 90/110, det1 IoU 63/127 < 0.5. The script's loop
    # gives gt0 det0 (first in index order), so gt1 is missed although a two-match pairing exists.
    gts = [box(0, 0, 10, 10), box(3, 0, 13, 10)]
    dets = [box(2, 0, 12, 10), box(0, 0, 10, 9)]
    r = one(gts, dets)
    assert r.matches == [(0, 0)]
    assert (r.matched, r.missed, r.false_positives) == (1, 1, 1)


def test_counts_are_summed_over_images_not_averaged() -> None:
    a = ([box(0, 0, 10, 10)], [False], [box(0, 0, 10, 10)], [1.0])
    b = (WORDS, [False] * 3, [WORDS[0], box(70, 70, 80, 80)], [1.0, 1.0])
    out = split([a, b])
    assert out["counts"] == {"gt_care": 4, "det_care": 3, "matched": 2, "gt_dont_care": 0, "images": 2}
    assert out["recall"] == 0.5
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["hmean"] == pytest.approx(4 / 7)
    mean_of_images = (1.0 + 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3)) / 2  # 0.7
    assert abs(out["hmean"] - mean_of_images) > 0.1


def test_invalid_polygons_do_not_crash() -> None:
    bowtie = [[0, 0], [10, 10], [10, 0], [0, 10]]
    two_points = [[0, 0], [5, 5]]
    closed_triangle_of_two = [[0, 0], [5, 5], [0, 0]]
    collinear = [[0, 0], [1, 1], [2, 2]]
    nan = [[0, 0], [np.nan, 1], [1, 1]]
    gts = [box(0, 0, 10, 10), two_points, collinear, box(50, 50, 60, 60)]
    dets = [bowtie, two_points, closed_triangle_of_two, nan, box(50, 50, 60, 60), []]
    r = one(gts, dets)
    # The bow-tie is its two triangles (area 50): IoU 0.5 with the square, not a match.
    assert (r.gt_care, r.det_care, r.matched) == (4, 6, 1)
    assert r.matches == [(3, 4)]
    # A degenerate ground truth flagged don't-care is not counted; nothing is dropped against it.
    r = one([two_points, box(0, 0, 1, 1)], [two_points, box(0, 0, 1, 1)], ignore=[True, False])
    assert (r.gt_care, r.det_care, r.matched) == (1, 2, 1)


def test_bowtie_keeps_both_triangles() -> None:
    # A bow-tie word is repaired into its two triangles (area 50), not one of them: the bow-tie itself
    # matches it, its left triangle alone has IoU 25/50 and does not.
    bowtie = [[0, 0], [10, 10], [10, 0], [0, 10]]
    assert one([bowtie], [bowtie]).matched == 1
    assert one([bowtie], [[[0, 0], [5, 5], [0, 10]]]).matched == 0


def test_inputs_as_tensors_lists_and_flat_arrays() -> None:
    gts = [torch.tensor(WORDS[0]), WORDS[1].tolist(), WORDS[2].reshape(-1)]
    dets = [torch.tensor(w, dtype=torch.float32) for w in WORDS]
    m = TextDetectionMetrics()
    m.update(
        [{"polygons": dets, "scores": torch.tensor([0.9, 0.8, 0.7])}],
        [{"polygons": gts, "ignore": torch.tensor([False, False, True]), "image_id": 7}],
    )
    (r,) = m.image_results()
    assert (r.image_id, r.gt_care, r.det_care, r.matched) == (7, 2, 2, 2)
    with pytest.raises(ValueError, match="scores"):
        m.update([{"polygons": dets, "scores": [0.5]}], [{"polygons": gts, "ignore": [False] * 3}])


def test_matches_use_original_indices() -> None:
    gts = [box(100, 100, 110, 110), box(0, 0, 10, 10), box(20, 0, 30, 10)]
    dets = [box(100, 100, 110, 110), box(20, 0, 30, 10), box(0, 0, 10, 10), box(0, 0, 10, 10)]
    r = evaluate_image(gts, [True, False, False], dets, [0.9, 0.2, 0.9, 0.9], score_threshold=0.5)
    assert r.matches == [(1, 2)]
    assert (r.gt_care, r.det_care, r.matched, r.missed, r.false_positives) == (2, 2, 1, 1, 1)


def test_score_threshold_and_curve() -> None:
    gts = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    dets = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(50, 0, 60, 10), box(70, 0, 80, 10), box(90, 0, 99, 9)]
    scores = [0.9, 0.7, 0.3, 0.3, 0.3]
    out = split([(gts, [False, False], dets, scores)])
    curve = out["pr_curve"]
    assert curve["thresholds"] == [round(0.05 * k, 2) for k in range(1, 20)]
    at = {t: (p, r, h) for t, p, r, h in zip(*curve.values(), strict=True)}
    assert at[0.3] == pytest.approx((2 / 5, 1.0, 4 / 7))
    assert at[0.35] == (1.0, 1.0, 1.0)
    assert at[0.7] == (1.0, 1.0, 1.0)
    assert at[0.75] == pytest.approx((1.0, 0.5, 2 / 3))
    assert at[0.95] == (0.0, 0.0, 0.0)
    assert all(a >= b for a, b in zip(curve["recall"], curve["recall"][1:], strict=False))
    assert (out["precision"], out["recall"], out["hmean"]) == at[0.5]
    assert out["counts"]["det_care"] == 2
    assert out["best_threshold"] == {"threshold": 0.35, "hmean": 1.0}


def test_custom_thresholds_include_score_threshold() -> None:
    m = TextDetectionMetrics(score_threshold=0.42, thresholds=[0.9, 0.1, 0.5])
    assert m.thresholds == [0.1, 0.42, 0.5, 0.9]
    m.update(
        [{"polygons": [WORDS[0], WORDS[1]], "scores": [0.45, 0.4]}],
        [{"polygons": WORDS[:2], "ignore": [False, False], "image_id": 1}],
    )
    out = m.compute()
    assert out["counts"]["matched"] == 1 and out["recall"] == 0.5
    assert out["pr_curve"]["recall"] == [1.0, 0.5, 0.0, 0.0]
    assert out["best_threshold"] == {"threshold": 0.1, "hmean": 1.0}


def test_worst_images_order() -> None:
    far = box(200, 200, 210, 210)
    images = [
        (WORDS[:1], [False], [], []),  # missed 1, fp 0
        (WORDS[:2], [False, False], [], []),  # missed 2
        (WORDS[:1], [False], [WORDS[0]], [1.0]),  # perfect: left out
        (WORDS[:2], [False, False], [WORDS[0], far, far, far], [1.0] * 4),  # missed 1, fp 3
        ([], [], [far, far], [1.0, 1.0]),  # fp 2
    ]
    out = split(images, worst=8)
    got = [(w["image_id"], w["missed"], w["false_detections"]) for w in out["worst_images"]]
    assert got == [(1, 2, 0), (3, 1, 3), (0, 1, 0), (4, 0, 2)]
    assert [w["recall"] for w in out["worst_images"]] == [0.0, 0.5, 0.0, 1.0]
    assert [w["image_id"] for w in split(images, worst=2)["worst_images"]] == [1, 3]


def test_compute_is_json_safe_and_consistent_with_images() -> None:
    rng = np.random.default_rng(3)
    images = [random_image(rng) for _ in range(6)]
    m = TextDetectionMetrics()
    for g, i, d, s in images:
        m.update([{"polygons": d, "scores": s}], [{"polygons": g, "ignore": i}])
    out = m.compute()
    json.dumps(out)

    def plain(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                plain(v)
        elif isinstance(x, list):
            for v in x:
                plain(v)
        else:
            assert type(x) in (int, float), type(x)

    plain(out)
    results = m.image_results()
    assert [r.image_id for r in results] == list(range(6))
    assert out["counts"]["matched"] == sum(r.matched for r in results)
    assert out["counts"]["det_care"] == sum(r.det_care for r in results)
    # One batch or one image at a time: the same numbers.
    assert split(images) == out
    m.reset()
    assert m.compute()["counts"]["images"] == 0 and m.compute()["hmean"] == 0.0


# --- randomised cross-check against the official algorithm, written plainly ---------------------------


def rotated_rect(rng: np.random.Generator, cx: float, cy: float) -> np.ndarray:
    w, h, a = rng.uniform(8, 40), rng.uniform(4, 15), rng.uniform(0, np.pi)
    c, s = np.cos(a), np.sin(a)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return corners @ np.array([[c, s], [-s, c]]) + [cx, cy]


def random_image(rng: np.random.Generator) -> tuple[list[Any], list[bool], list[Any], list[float]]:
    gts = [rotated_rect(rng, *rng.uniform(0, 100, 2)) for _ in range(rng.integers(0, 8))]
    ignore = [bool(rng.random() < 0.2) for _ in gts]
    dets: list[Any] = []
    for g in gts:
        for _ in range(rng.integers(0, 3)):  # 0: missed, 2: a duplicate
            dets.append(g + rng.normal(0, rng.choice([0.5, 2.0, 4.0]), g.shape))
    for _ in range(rng.integers(0, 3)):
        dets.append(rotated_rect(rng, *rng.uniform(0, 100, 2)))
    if len(gts) >= 2:  # one box over two words
        both = np.vstack([gts[0], gts[1]])
        dets.append(box(*both.min(0), *both.max(0)))
    if rng.random() < 0.3:
        dets.append(rng.uniform(0, 100, (4, 2)))  # often self-intersecting
    order = rng.permutation(len(dets))
    dets = [dets[k] for k in order]
    return gts, ignore, dets, rng.random(len(dets)).round(2).tolist()


def test_random_images_match_the_reference() -> None:
    rng = np.random.default_rng(2015)
    images = [random_image(rng) for _ in range(30)]
    thresholds = [0.2, 0.5, 0.8]
    m = TextDetectionMetrics(score_threshold=0.5, thresholds=thresholds)
    for start in range(0, len(images), 7):
        batch = images[start : start + 7]
        m.update(
            [{"polygons": d, "scores": s} for _, _, d, s in batch],
            [{"polygons": g, "ignore": i} for g, i, _, _ in batch],
        )
    out = m.compute()
    curve = out["pr_curve"]
    total_matched = 0
    for k, t in enumerate(thresholds):
        matched, care_gt, care_det = reference_counts(images, t)
        total_matched += matched
        assert curve["recall"][k] == (matched / care_gt if care_gt else 0.0)
        assert curve["precision"][k] == (matched / care_det if care_det else 0.0)
        if t == 0.5:
            assert (out["counts"]["matched"], out["counts"]["gt_care"], out["counts"]["det_care"]) == (
                matched,
                care_gt,
                care_det,
            )
    assert total_matched > 0
