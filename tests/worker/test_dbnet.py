"""DBNet pieces of the text-detection task: the network's train/eval contract on every backbone with and
without ASF, the DB labels (shrink by pyclipper, don't-care, words cut by the border, tiny words), the loss
with and without text, probability map to polygons and back, augmentation that keeps words whole and valid,
the ICDAR files of the synthetic data, ONNX and TorchScript export — and, last and slowest, one short
training run on synthetic words whose held-out detections must match the words."""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from tests.worker.text_synth import draw_text_image, match_count, write_icdar_project
from worker.tasks.text_detection.labels import db_targets
from worker.tasks.text_detection.loss import DBLoss
from worker.tasks.text_detection.model import BACKBONES, build_dbnet
from worker.tasks.text_detection.postprocess import polygons_from_prob, shrink, unclip
from worker.tasks.text_detection.transforms import (
    TextEvalTransform,
    TextTrainTransform,
    collate_text,
    random_crop,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _rect(cx: float, cy: float, w: float, h: float, angle_deg: float = 0.0) -> np.ndarray:
    """A w x h rectangle centred on (cx, cy), rotated by ``angle_deg``, corners clockwise from top-left."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return corners @ rot.T + np.array([cx, cy])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = Polygon(a), Polygon(b)
    return float(pa.intersection(pb).area / pa.union(pb).area)


# ------------------------------------------------------------------------------------------------ network


@pytest.mark.parametrize("asf", [False, True], ids=["fpn", "asf"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_forward_shapes_train_and_eval(backbone: str, asf: bool) -> None:
    model = build_dbnet(backbone, asf=asf, neck_channels=32)
    assert (model.studio_task, model.backbone_name, model.asf) == ("text_detection", backbone, asf)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert set(out) == {"prob_logits", "prob", "thresh", "binary"}
    for value in out.values():
        assert value.shape == (2, 1, 64, 64)
    assert torch.allclose(out["prob"], torch.sigmoid(out["prob_logits"]))
    assert torch.allclose(out["binary"], torch.sigmoid(50 * (out["prob"] - out["thresh"])))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert set(out) == {"prob"}
    assert out["prob"].shape == (1, 1, 64, 96)
    assert float(out["prob"].min()) >= 0 and float(out["prob"].max()) <= 1


def test_input_must_be_a_multiple_of_32() -> None:
    model = build_dbnet("resnet18", neck_channels=32)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 80))
    with pytest.raises(ValueError, match="unknown DBNet backbone"):
        build_dbnet("vgg16")


# ------------------------------------------------------------------------------------------------- labels


def test_kernel_of_a_rectangle_is_the_pyclipper_shrink() -> None:
    w, h, r = 60.0, 20.0, 0.4
    rect = np.array([[20, 30], [20 + w, 30], [20 + w, 30 + h], [20, 30 + h]], dtype=np.float64)
    t = db_targets([rect], [False], 100, 120, shrink_ratio=r)
    assert all(v.dtype == np.float32 and v.shape == (100, 120) for v in t.values())
    d = w * h * (1 - r**2) / (2 * (w + h))  # D = A (1 - r^2) / L
    expected = (w - 2 * d) * (h - 2 * d)  # an inward offset keeps a convex polygon's corners sharp
    (kernel,) = shrink(rect, r)
    assert Polygon(kernel).area == pytest.approx(expected, rel=1e-3)
    # fillPoly also fills the pixels the border passes through: between the kernel and the kernel grown
    # by one pixel on every side
    assert expected <= t["gt"].sum() <= (w - 2 * d + 2) * (h - 2 * d + 2)
    ys, xs = np.nonzero(t["gt"])
    assert xs.min() >= 20 + d - 1 and xs.max() <= 20 + w - d + 1
    assert ys.min() >= 30 + d - 1 and ys.max() <= 30 + h - d + 1
    assert t["mask"].min() == 1.0
    # the threshold map lives in [thresh_min, thresh_max], peaks on the border, is low in the middle
    assert t["thresh_map"].min() == pytest.approx(0.3) and t["thresh_map"].max() <= 0.7 + 1e-6
    assert t["thresh_map"][30, 50] > 0.65 and t["thresh_map"][40, 50] == pytest.approx(0.3)
    grown = (w + 2 * d) * (h + 2 * d) - (4 - math.pi) * d * d  # round joins outside
    assert abs(t["thresh_mask"].sum() - grown) < 2 * (w + h + 4 * d)
    assert t["thresh_mask"][:5].sum() == 0 and t["thresh_mask"][:, :5].sum() == 0


def test_dont_care_tiny_and_half_outside_polygons() -> None:
    care = _rect(30, 30, 40, 14, 15)
    dont_care = _rect(90, 30, 40, 14)
    tiny = _rect(60, 80, 30, 2)  # thinner than min_side
    outside = np.array([[-30, 60], [20, 60], [20, 76], [-30, 76]], dtype=np.float64)  # half outside
    t = db_targets([care, dont_care, tiny, outside], [False, True, False, False], 100, 120)
    gt, mask = t["gt"], t["mask"]
    assert mask[30, 90] == 0 and gt[25:36, 72:108].sum() == 0 and t["thresh_mask"][30, 90] == 0
    assert mask[80, 60] == 0 and gt[75:86, 40:80].sum() == 0
    assert mask[30, 30] == 1 and gt[30, 30] == 1
    # the half outside the image is clipped geometrically: its kernel is the shrink of the visible part
    visible = np.array([[0, 60], [20, 60], [20, 76], [0, 76]], dtype=np.float64)
    alone = db_targets([outside], [False], 100, 120)
    assert np.array_equal(alone["gt"], db_targets([visible], [False], 100, 120)["gt"])
    assert alone["gt"].sum() > 0 and alone["mask"].min() == 1
    # entirely outside: nothing at all
    far = db_targets([outside - np.array([200, 0])], [False], 100, 120)
    assert far["gt"].sum() == 0 and far["thresh_mask"].sum() == 0 and far["mask"].min() == 1


# --------------------------------------------------------------------------------------------------- loss


def _targets(n_with_text: int, n_empty: int, size: int = 64) -> dict[str, torch.Tensor]:
    maps = [db_targets([_rect(32, 32, 40, 14, 10)], [False], size, size) for _ in range(n_with_text)]
    maps += [db_targets([], [], size, size) for _ in range(n_empty)]
    return {k: torch.from_numpy(np.stack([m[k] for m in maps])) for k in maps[0]}


def test_loss_finite_with_and_without_text_and_gradients_flow() -> None:
    torch.manual_seed(0)
    model = build_dbnet("resnet18", neck_channels=32)
    loss_fn = DBLoss()
    for n_text, n_empty in ((2, 0), (1, 1), (0, 2)):
        model.zero_grad()
        total, parts = loss_fn(model(torch.randn(2, 3, 64, 64)), _targets(n_text, n_empty))
        assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())
        assert set(parts) == {"loss_prob", "loss_thresh", "loss_binary"}
        assert not any(v.requires_grad for v in parts.values())
        total.backward()
        grad = model.backbone.stages[0][0][0].weight.grad
        assert grad is not None and torch.isfinite(grad).all()
        if n_text:
            assert float(grad.abs().sum()) > 0
            assert total.item() == pytest.approx(
                5 * parts["loss_prob"].item()
                + 10 * parts["loss_thresh"].item()
                + parts["loss_binary"].item(),
                rel=1e-5,
            )
        else:
            assert parts["loss_prob"].item() == 0 and parts["loss_thresh"].item() == 0


def test_balanced_bce_takes_all_positives_and_the_hardest_negatives() -> None:
    logits = torch.tensor([[[2.0, -1.0, 3.0, 0.5, -4.0, 1.0, 0.0, -2.0]]])
    gt = torch.tensor([[[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]])
    mask = torch.ones_like(gt)
    mask[0, 0, 5] = 0  # a don't-care negative is never mined
    loss = DBLoss(ohem_ratio=1.5).balanced_bce(logits, gt, mask)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, gt, reduction="none")[0, 0]
    hardest = sorted([bce[i].item() for i in (2, 3, 4, 6, 7)], reverse=True)[:3]  # int(2 * 1.5) = 3
    assert loss.item() == pytest.approx((bce[0].item() + bce[1].item() + sum(hardest)) / 5, rel=1e-5)


# -------------------------------------------------------------------------------------------- postprocess


def test_targets_round_trip_through_polygons_from_prob() -> None:
    """The kernels of db_targets, read as a probability map, come back as the words after the unclip.
    Shrink by D = A (1 - r^2) / L and unclip by D' = A' 1.5 / L' cancel for near-square words; at aspect 2
    the unclip recovers about 0.9 IoU (the reason the ratio is a setting), hence the words drawn here."""
    words = [_rect(40, 40, 50, 26, 20), _rect(120, 50, 44, 24, -35), _rect(70, 110, 56, 30, 5)]
    prob = db_targets(words, [False] * 3, 160, 180)["gt"]
    for as_polygon in (False, True):
        found = polygons_from_prob(prob, polygon=as_polygon)
        assert len(found) == 3
        assert all(p.dtype == np.float32 and p.shape[1] == 2 for p, _ in found)
        if not as_polygon:
            assert all(p.shape == (4, 2) for p, _ in found)
        for word in words:
            assert max(_iou(p, word) for p, _ in found) > 0.8
    # a scaled-down map maps back with ``scale``; scores sort the result
    small = prob[::2, ::2].copy()
    small[small > 0] = np.linspace(0.5, 1.0, int((small > 0).sum()))
    found = polygons_from_prob(small, scale=(2.0, 2.0))
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    for word in words:
        assert max(_iou(p, word) for p, _ in found) > 0.7
    assert polygons_from_prob(np.zeros((64, 64), np.float32)) == []
    assert polygons_from_prob(prob, min_score=1.01) == []
    assert len(polygons_from_prob(prob, max_candidates=2)) == 2
    assert unclip(np.zeros((4, 2))) == []


# --------------------------------------------------------------------------------------------- transforms


def _coordinate_image(width: int, height: int) -> np.ndarray:
    """Pixels that spell their own coordinates, so a crop tells where it was taken."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, (xs // 256) * 16 + ys // 256], axis=2).astype(np.uint8)


def test_random_crop_never_cuts_a_kept_word() -> None:
    rng = np.random.default_rng(0)
    image = _coordinate_image(300, 200)
    words = [
        _rect(60, 40, 70, 20, 10),
        _rect(200, 60, 60, 18),
        _rect(120, 150, 90, 24, -8),
        _rect(250, 170, 40, 14),
    ]
    ignore = [False, False, False, True]
    crops = 0
    for _ in range(40):
        out, (polygons, flags), dropped = random_crop(image, (words, ignore), 0.3, rng)
        assert dropped == 0
        x0, y0 = (
            int(out[0, 0, 0]) + 256 * (int(out[0, 0, 2]) // 16),
            int(out[0, 0, 1]) + 256 * (int(out[0, 0, 2]) % 16),
        )
        crops += out.shape[:2] != image.shape[:2]
        assert any(not f for f in flags)  # a crop keeps at least one care word
        for points, flag in zip(polygons, flags, strict=True):
            original = points + np.array([x0, y0])
            assert any(np.allclose(original, w) and flag == i for w, i in zip(words, ignore, strict=True))
            assert points.min() >= 0 and (points.max(axis=0) <= np.array(out.shape[1::-1]) - 1).all()
        kept = {tuple(np.round(p + np.array([x0, y0]), 3).ravel()) for p in polygons}
        for w in words:  # every word is wholly in or wholly out
            inside = Polygon(w).intersects(
                Polygon(
                    [
                        (x0, y0),
                        (x0 + out.shape[1] - 1, y0),
                        (x0 + out.shape[1] - 1, y0 + out.shape[0] - 1),
                        (x0, y0 + out.shape[0] - 1),
                    ]
                )
            )
            assert inside == (tuple(np.round(w, 3).ravel()) in kept)
    assert crops > 20


def test_random_crop_through_text_drops_and_masks_cut_words() -> None:
    """Words covering every row and column leave no clean crop: the cut words are dropped, counted, and
    their visible parts become don't-care."""
    rng = np.random.default_rng(1)
    image = np.full((100, 100, 3), 200, np.uint8)
    words = [
        np.array([[0, 0], [99, 0], [99, 49], [0, 49]], float),
        np.array([[0, 50], [99, 50], [99, 99], [0, 99]], float),
    ]
    total_dropped = 0
    for _ in range(10):
        out, (polygons, flags), dropped = random_crop(image, (words, [False, False]), 0.3, rng)
        total_dropped += dropped
        height, width = out.shape[:2]
        assert sum(not f for f in flags) + dropped <= 2
        for points, flag in zip(polygons, flags, strict=True):
            assert Polygon(points).is_valid
            assert points.min() >= 0 and points[:, 0].max() <= width - 1 and points[:, 1].max() <= height - 1
            if not flag:  # a kept word is whole
                assert Polygon(points).area == pytest.approx(99 * 49)
        assert sum(f for f in flags) == dropped  # each cut word left one don't-care piece
    assert total_dropped > 0


def test_train_transform_keeps_polygons_valid_inside_the_image() -> None:
    rng = np.random.default_rng(2)
    steps = [
        {"name": "rotate", "p": 1.0, "degrees": 25.0},
        {"name": "random_crop", "p": 1.0, "min_side_ratio": 0.3},
        {
            "name": "color_jitter",
            "p": 1.0,
            "brightness": 0.3,
            "contrast": 0.3,
            "saturation": 0.3,
            "hue": 0.02,
        },
        {"name": "horizontal_flip", "p": 0.5},
    ]
    transform = TextTrainTransform(steps, 128, MEAN, STD)
    samples = []
    for i in range(12):
        image, words = draw_text_image(rng, size=(200 + 20 * i, 160))
        polygons = [p for p, _ in words]
        if i % 3 == 0:  # annotations that stick out of the picture are clipped, not trusted
            polygons[0] = polygons[0] + np.array([-polygons[0][:, 0].min() - 5, 0])
        sample = transform(image, polygons, [d for _, d in words], rng)
        assert sample.image.shape == (3, 128, 128) and sample.image.dtype == torch.float32
        assert len(sample.polygons) == len(sample.ignore)
        assert sample.scale > 0 and sample.dropped >= 0
        for points in sample.polygons:
            assert Polygon(points).is_valid and Polygon(points).area > 0
            assert points.min() >= 0 and points.max() <= 127
        samples.append(sample)
    images, targets = collate_text(samples)
    assert images.shape == (12, 3, 128, 128)
    for key in ("gt", "mask", "thresh_map", "thresh_mask"):
        assert targets[key].shape == (12, 128, 128) and targets[key].dtype == torch.float32
    assert len(targets["polygons"]) == 12 and targets["gt"].sum() > 0
    with pytest.raises(ValueError, match="'mosaic'"):
        TextTrainTransform([{"name": "mosaic", "p": 1.0}], 128, MEAN, STD)
    with pytest.raises(ValueError, match="multiple of 32"):
        TextTrainTransform([], 100, MEAN, STD)


def test_geometric_steps_keep_each_word_over_its_pixels() -> None:
    """Rotate, flip and crop move the image and the polygons with the same geometry: the kernel of every
    word still covers the word's colour after all three and the resize."""
    image = np.full((150, 200, 3), 128, np.uint8)
    words = [_rect(60, 40, 60, 20, 15), _rect(140, 110, 50, 24, -10)]
    for word in words:
        fill = np.zeros((150, 200), np.uint8)
        cv2.fillPoly(fill, [np.round(word).astype(np.int32)], 1)
        image[fill == 1] = (230, 30, 30)
    steps = [
        {"name": "rotate", "p": 1.0, "degrees": 30.0},
        {"name": "horizontal_flip", "p": 1.0},
        {"name": "random_crop", "p": 1.0, "min_side_ratio": 0.6},
    ]
    transform = TextTrainTransform(steps, 128, MEAN, STD)
    rng = np.random.default_rng(4)
    for _ in range(8):
        sample = transform(image, words, [False, False], rng)
        red = sample.image[0] * STD[0] + MEAN[0]
        assert 1 <= len(sample.polygons) <= 2 and sample.dropped == 0
        for points in sample.polygons:
            (kernel,) = shrink(points, 0.4)
            inside = np.zeros((128, 128), np.uint8)
            cv2.fillPoly(inside, [np.round(kernel).astype(np.int32)], 1)
            assert float(red.numpy()[inside == 1].mean()) > 0.85


def test_eval_transform_scale_maps_predictions_back() -> None:
    image, words = draw_text_image(np.random.default_rng(3), size=(300, 200))
    sample = TextEvalTransform(128, MEAN, STD)(image, [p for p, _ in words], [d for _, d in words])
    assert sample.image.shape == (3, 128, 128) and sample.dropped == 0
    assert sample.scale == pytest.approx(128 / 300)
    assert torch.all(sample.image[:, 86:, :] == 0)  # padding below the 128 x 85 picture
    for (points, _), mapped in zip(words, sample.polygons, strict=True):
        assert np.allclose(mapped / sample.scale, points, atol=1.5)
    prob = db_targets(sample.polygons, [False] * len(sample.polygons), 128, 128)["gt"]
    back = 1 / sample.scale
    plain = polygons_from_prob(prob, min_size=2)
    mapped = polygons_from_prob(prob, min_size=2, scale=(back, back))
    assert len(plain) == len(mapped) > 0
    for (p, s), (q, t) in zip(plain, mapped, strict=True):
        assert s == t and np.allclose(p * back, q, atol=1e-3)


# ------------------------------------------------------------------------------------------ data, export


def test_synthetic_icdar_project_imports(tmp_path: Path) -> None:
    from backend.datasets.canonical import ImportReport
    from backend.datasets.formats import parse_upload

    written = write_icdar_project(tmp_path / "src", 4, seed=5, size=(160, 120))
    assert (tmp_path / "src" / "img_1.png").is_file() and (tmp_path / "src" / "gt_img_4.txt").is_file()
    out = tmp_path / "out"
    out.mkdir()
    dataset = parse_upload(tmp_path / "src", "icdar", out, ImportReport())
    assert len(dataset.images) == 4
    assert len(dataset.annotations) == sum(len(w) for w in written)
    assert sum(a.ignore for a in dataset.annotations) == sum(d for w in written for _, d in w)
    assert all(a.text for a in dataset.annotations)


def test_onnx_and_torchscript_match_pytorch(tmp_path: Path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_dbnet("resnet18", neck_channels=32).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = model(x)["prob"]
    path = tmp_path / "dbnet.onnx"
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(1, 3, 64, 64),),
            str(path),
            input_names=["input"],
            output_names=["prob"],
            dynamic_axes={
                "input": {0: "batch", 2: "height", 3: "width"},
                "prob": {0: "batch", 2: "height", 3: "width"},
            },
            dynamo=False,
        )
        traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), strict=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["prob"], {"input": x.numpy()})
    assert got.shape == (2, 1, 64, 96)
    assert float(np.abs(got - ref.numpy()).max()) < 1e-4
    with torch.no_grad():
        assert float((traced(x)["prob"] - ref).abs().max()) < 1e-4


# --------------------------------------------------------------------------------------- learning (slow)

LEARN_SEED = 0
LEARN_ITERATIONS, LEARN_BATCH, LEARN_LR = 140, 4, 3e-3


@pytest.mark.timeout(600)
def test_slow_dbnet_learns_synthetic_words() -> None:
    """The slowest test here (about 50 s on two idle cores): a plain loop — the train transform,
    db_targets, DBLoss, AdamW with a one-cycle schedule — trains DBNet (ResNet-18 from scratch, neck 64, 128
    px inputs) for 140 steps of 4 images drawn from 48 synthetic ones; on 16 held-out images the default
    post-processing must find the words: one-to-one IoU > 0.5 matches with recall and precision >= 0.5
    (measured about 0.9 for both)."""
    started = time.monotonic()
    rng = np.random.default_rng(LEARN_SEED)
    # words 11-18 % of the side: at 128 px their kernels are a few stride-4 cells tall
    data = [draw_text_image(rng, size=(256, 256), words=(2, 5), font_share=(0.11, 0.18)) for _ in range(64)]
    train, held_out = data[:48], data[48:]
    torch.manual_seed(LEARN_SEED)
    model = build_dbnet("resnet18", neck_channels=64)
    steps = [
        {"name": "rotate", "p": 0.3, "degrees": 10.0},
        {"name": "random_crop", "p": 0.3, "min_side_ratio": 0.5},
        {"name": "color_jitter", "p": 0.5},
    ]
    transform = TextTrainTransform(steps, 128, MEAN, STD)
    loss_fn = DBLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARN_LR, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARN_LR, total_steps=LEARN_ITERATIONS, pct_start=0.15
    )
    aug_rng = np.random.default_rng(LEARN_SEED + 1)
    model.train()
    for _ in range(LEARN_ITERATIONS):
        picks = aug_rng.choice(len(train), LEARN_BATCH, replace=False)
        batch = [
            transform(image, [p for p, _ in words], [d for _, d in words], aug_rng)
            for image, words in (train[i] for i in picks)
        ]
        images, targets = collate_text(batch)
        loss, _ = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    evaluate = TextEvalTransform(128, MEAN, STD)
    matches = counted = n_words = 0
    for image, words in held_out:
        sample = evaluate(image)
        with torch.no_grad():
            prob = model(sample.image[None])["prob"][0, 0].numpy()
        found = polygons_from_prob(prob, scale=(1 / sample.scale, 1 / sample.scale))
        m, c, n = match_count([p for p, _ in found], words)
        matches, counted, n_words = matches + m, counted + c, n_words + n
    recall, precision = matches / n_words, matches / max(counted, 1)
    print(
        f"DBNet learning check: recall {recall:.3f} precision {precision:.3f} "
        f"({matches}/{n_words} words, {counted} detections) in {time.monotonic() - started:.0f}s"
    )
    assert recall >= 0.5 and precision >= 0.5, (recall, precision)
