"""Detection pieces without training: objects from labelme shapes (groups, negatives), transforms that keep
boxes valid, the aspect-ratio batch sampler, COCO numbers identical to pycocotools, the confusion matrix
and missed objects, and the run checks' 422s before anything is queued."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torchvision import tv_tensors

from backend.datasets.canonical import CanonicalDataset
from backend.db.session import session_scope
from backend.db.tables import Dataset
from backend.tasks.detection import det_augment_step
from tests.helpers import sign_up
from tests.test_specs_api import make_dataset, me
from tests.worker.detection_data import import_detection_dataset, make_detection_project
from worker.tasks.detection.data import AspectRatioBatchSampler, DetectionDataset, detection_samples
from worker.tasks.detection.metrics import COCO_NUMBERS, DetectionMetrics, coco_evaluate
from worker.tasks.detection.transforms import DetEvalTransform, DetTrainTransform, RandomCropKeepingBoxes


def _canonical(tmp_path: Path, n: int = 12) -> tuple[Path, CanonicalDataset, list[Any]]:
    from backend.datasets.canonical import ImportReport
    from backend.datasets.formats import parse_upload

    drawn = make_detection_project(tmp_path / "src", n, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    return out, parse_upload(tmp_path / "src", "labelme", out, ImportReport()), drawn


def test_objects_follow_labelme_groups_and_negatives_stay(tmp_path: Path) -> None:
    folder, canonical, drawn = _canonical(tmp_path)
    samples = detection_samples(folder, canonical)
    by_source = {Path(img.source).stem: img.id for img in canonical.images}
    for i, shapes in enumerate(drawn):
        sample = next(s for s in samples if s.image_id == by_source[f"img_{i:04d}"])
        groups = {s.group_id for s in shapes if s.group_id is not None}
        assert len(sample.objects) == len([s for s in shapes if s.group_id is None]) + len(groups)
    assert any(len(s.shapes) == 2 for sample in samples for s in sample.objects), "no grouped disc drawn"
    data = DetectionDataset(folder, canonical, None, DetEvalTransform(), masks=True, training=False)
    assert data.negatives == 3
    image, target = data[0]
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0
    assert len(target["boxes"]) == 0 and target["masks"].shape == (0, 128, 128)  # a negative
    for i in range(3, len(data)):
        _, target = data[i]
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            # the box covers the mask (grouped halves included) to within the pen's pixel
            assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1 and ys.max() <= box[3] + 1


def test_training_transforms_keep_boxes_valid_and_count_what_they_drop(tmp_path: Path) -> None:
    folder, canonical, _ = _canonical(tmp_path, n=16)
    steps = [
        det_augment_step("random_crop", p=1.0, min_scale=0.3, min_visible=0.6),
        det_augment_step("horizontal_flip"),
        det_augment_step("vertical_flip"),
        det_augment_step("zoom_out", p=0.5),
        det_augment_step("photometric_distortion", p=1.0),
    ]
    transform = DetTrainTransform(steps, [64, 96, 160], max_size=200, min_box_size=2.0)
    data = DetectionDataset(folder, canonical, None, transform, masks=True, training=True)
    torch.manual_seed(0)
    dropped = 0
    for _ in range(3):
        for i in range(len(data)):
            image, target = data[i]
            h, w = image.shape[-2:]
            assert max(h, w) <= 200  # the long-side cap, else a short side of one of the scales
            assert max(h, w) >= 199 or any(abs(min(h, w) - s) <= 1 for s in (64, 96, 160))
            boxes = target["boxes"]
            assert boxes.shape[1:] == (4,) and len(boxes) == len(target["labels"]) == len(target["masks"])
            assert (boxes[:, 2] - boxes[:, 0] >= 2).all() and (boxes[:, 3] - boxes[:, 1] >= 2).all()
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
            assert target["masks"].shape[-2:] == (h, w)
            for box, mask in zip(boxes, target["masks"], strict=True):
                assert mask.any()  # every kept box still has its object's pixels
                ys, xs = torch.nonzero(mask, as_tuple=True)
                assert xs.min() >= box[0] - 2 and xs.max() <= box[2] + 2 and ys.max() <= box[3] + 2
            dropped += target["dropped"]
    assert dropped > 0  # crops down to 30% of each side cut objects off, and they are counted


def test_crop_drops_a_box_it_mostly_cuts_away() -> None:
    image = tv_tensors.Image(torch.zeros(3, 100, 100, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[10.0, 10, 30, 30], [60, 60, 100, 100]]), format="XYXY", canvas_size=(100, 100)
    )
    crop = RandomCropKeepingBoxes(min_scale=0.5, min_visible=0.9)
    params = {"top": 0, "left": 0, "height": 70, "width": 70, "keep": torch.tensor([True, False])}
    out = crop.transform(boxes, params)
    assert out.tolist()[0] == [10, 10, 30, 30]
    assert out[1, 2] == out[1, 0]  # emptied: sanitising removes it with its label
    assert crop.transform(image, params).shape == (3, 70, 70)


def test_batches_group_aspect_ratios_and_cover_every_image() -> None:
    ratios = [0.6] * 5 + [1.0] * 6 + [1.7] * 7
    gen = torch.Generator().manual_seed(0)
    sampler = AspectRatioBatchSampler(ratios, 4, gen)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 + 2 + 2
    assert sorted(i for b in batches for i in b) == list(range(len(ratios)))
    for b in batches:
        assert len({ratios[i] for i in b}) == 1
    gen.manual_seed(0)
    assert list(sampler) == batches  # the same seed, the same epoch


def _random_coco(
    rng: random.Random, images: int, per_image: int, masks: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from pycocotools import mask as mask_utils

    def rle(box: list[float], h: int = 64, w: int = 64) -> dict[str, Any]:
        m = np.zeros((h, w), dtype=np.uint8, order="F")
        x, y, bw, bh = (int(v) for v in box)
        m[y : y + max(1, bh), x : x + max(1, bw)] = 1
        r = mask_utils.encode(m)
        r["counts"] = r["counts"].decode()
        return dict(r)

    gt: dict[str, Any] = {
        "images": [{"id": i + 1, "width": 64, "height": 64} for i in range(images)],
        "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
        "annotations": [],
    }
    dts = []
    for i in range(images):
        for _ in range(rng.randint(0, 4)):
            x, y = rng.uniform(0, 40), rng.uniform(0, 40)
            box = [x, y, rng.uniform(3, 24), rng.uniform(3, 24)]
            ann = {
                "id": len(gt["annotations"]) + 1,
                "image_id": i + 1,
                "category_id": rng.randint(1, 3),
                "bbox": box,
                "area": box[2] * box[3],
                "iscrowd": int(rng.random() < 0.05),
            }
            if masks:
                ann["segmentation"] = rle(box)
            gt["annotations"].append(ann)
        for _ in range(per_image):
            box = [rng.uniform(0, 40), rng.uniform(0, 40), rng.uniform(3, 24), rng.uniform(3, 24)]
            det = {"image_id": i + 1, "category_id": rng.randint(1, 3), "bbox": box, "score": rng.random()}
            if masks:
                det["segmentation"] = rle(box)
            dts.append(det)
    # Some detections close to the truth, so AP is neither 0 nor 1.
    for ann in gt["annotations"][::2]:
        box = [v + rng.uniform(-2, 2) for v in ann["bbox"]]
        det = {
            "image_id": ann["image_id"],
            "category_id": ann["category_id"],
            "bbox": box,
            "score": 0.5 + rng.random() / 2,
        }
        if masks:
            det["segmentation"] = rle([max(0.0, v) for v in box])
        dts.append(det)
    return gt, dts


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_numbers_are_identical_to_pycocotools(iou_type: str) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dts = _random_coco(random.Random(7), images=40, per_image=12, masks=iou_type == "segm")
    ours = coco_evaluate(gt, dts, iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = COCO()
        reference.dataset = copy.deepcopy(gt)
        reference.createIndex()
        ev = COCOeval(reference, reference.loadRes(copy.deepcopy(dts)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert len(ours.stats) == len(COCO_NUMBERS) == 12
    assert 0.05 < ours.stats[1] < 0.95  # a test that could tell them apart
    np.testing.assert_allclose(ours.stats, ev.stats, atol=1e-12)
    np.testing.assert_allclose(ours.precision, ev.eval["precision"], atol=1e-12)


def test_confusion_and_missed_objects() -> None:
    metrics = DetectionMetrics(["cat", "dog"], score_threshold=0.5)
    target = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]]),
        "labels": torch.tensor([1, 2, 2]),
        "iscrowd": torch.tensor([False, False, False]),
        "image_id": 5,
        "height": 64,
        "width": 64,
    }
    out = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [21, 21, 40, 40], [0, 40, 10, 50], [50, 50, 60, 60]]),
        "scores": torch.tensor([0.9, 0.8, 0.7, 0.2]),  # the last is under the threshold
        "labels": torch.tensor([1, 1, 2, 2]),
    }
    metrics.update([out], [target])
    result = metrics.compute()
    # rows: true cat, dog, background; columns: predicted cat, dog, background (missed)
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    assert result["worst_images"] == [
        {"image_id": 5, "missed": 2, "objects": 3, "detections": 3, "false_detections": 1}
    ]
    assert result["per_class"]["dog"]["objects"] == 2 and result["bbox/per_class"]["cat"]["AP"] == 1.0
    assert result["bbox/mAP_l"] != result["bbox/mAP_l"]  # no large object: COCO's -1 becomes NaN


# ----------------------------------------------------------------------------------- run checks (422)


def det_run(dataset_id: int, **sections: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task": "object_detection",
        "model": {"architecture": "fasterrcnn_mobilenet_v3_large_fpn"},
        "data": {"dataset_id": dataset_id, "batch_size": 2},
        "schedule": {"epochs": 1},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def _post(client: TestClient, config: dict[str, Any]) -> Any:
    return client.post("/api/jobs", json={"kind": "train", "config": config})


def _rewrite(dataset_id: int, change: Any) -> None:
    with session_scope() as s:
        row = s.get(Dataset, dataset_id)
        assert row is not None and row.path
        folder = Path(row.path)
    canonical = CanonicalDataset.load(folder)
    change(canonical)
    canonical.save(folder)


@pytest.mark.usefixtures("sqlite_stack")
def test_detection_runs_are_checked_before_they_are_queued(client: TestClient, tmp_path: Path) -> None:
    sign_up(client)
    owner = me(client)
    ds = import_detection_dataset(owner, tmp_path, n_images=12)

    r = _post(client, det_run(ds))
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert config["runtime"]["best_metric"] == "bbox/mAP" and config["evaluation"]["score_threshold"] == 0.5
    masks = client.post(
        "/api/configs/validate",
        json=det_run(
            ds, task="instance_segmentation", model={"architecture": "maskrcnn_mobilenet_v3_large_fpn"}
        ),
    )
    assert masks.status_code == 200, masks.text
    assert masks.json()["config"]["runtime"]["best_metric"] == "segm/mAP"

    def detail(config: dict[str, Any], status: int = 422) -> str:
        r = _post(client, config)
        assert r.status_code == status, r.text
        return str(r.json()["detail"])

    classification_only = make_dataset(owner, tasks=("classification",))
    assert detail(det_run(classification_only)).startswith("config.task: dataset")
    assert "config.model.architecture" in detail(
        det_run(ds, model={"architecture": "maskrcnn_mobilenet_v3_large_fpn"})
    )
    assert "config.model.options.fpn_channels" in detail(det_run(ds, model={"options": {"fpn_channels": 4}}))
    assert "config.runtime.best_metric" in detail(det_run(ds, runtime={"best_metric": "segm/mAP"}))
    assert "config.data.scales.0" in detail(det_run(ds, data={"dataset_id": ds, "scales": [8]}))
    ssd = {"architecture": "ssdlite320_mobilenet_v3_large", "pretrained": True}
    assert "no pretrained backbone weights" in detail(det_run(ds, model=ssd))
    assert _post(client, det_run(ds, model={"pretrained": True})).status_code == 201  # MobileNetV3's

    def zero_area(c: CanonicalDataset) -> None:
        c.annotations[0].bbox[2] = 0.0

    _rewrite(ds, zero_area)
    message = detail(det_run(ds))
    assert message.startswith("config.data.dataset_id") and "zero area" in message
    assert "img_0003.png" in message

    def only_in_val(c: CanonicalDataset) -> None:
        c.annotations[0].bbox[2] = 5.0
        split = {img.id: img.split for img in c.images}
        disc = c.classes.index("disc") + 1
        for img in c.images:
            if any(a.image_id == img.id and a.category_id == disc for a in c.annotations):
                img.split = "val"
        assert any(split[a.image_id] == "train" for a in c.annotations if a.category_id == disc)

    _rewrite(ds, only_in_val)
    message = detail(det_run(ds))
    assert "class disc appears only in the val split" in message


# ----------------------------------------------------------------------------------- the one Trainer


def test_detector_trains_evaluates_and_resumes_through_the_one_trainer(tmp_path: Path) -> None:
    """The ``train_step`` hook: list batches, the detector's own losses; evaluation has no loss (NaN)
    and COCO metrics; a run stopped after its epoch-2 checkpoint resumes to the uninterrupted weights."""
    from tests.worker.test_engine import StubContext
    from worker.engine.callbacks import Checkpointer, Evaluator
    from worker.engine.checkpoint import load_file
    from worker.engine.loop import Trainer
    from worker.tasks.detection.runtime import DetectionStep
    from worker.training.recipe import no_loss
    from worker.zoo import build_model

    folder, canonical, _ = _canonical(tmp_path, n=8)
    tiny = {
        "min_size": 64,
        "max_size": 64,
        "fpn_channels": 16,
        "box_head_size": 32,
        "rpn_proposals_train": 30,
        "rpn_proposals_test": 10,
        "box_samples_per_image": 16,
    }

    def trainer(work: Path, ctx: Any) -> tuple[Trainer, DetectionStep]:
        from worker.tasks.detection.data import eval_loader, train_loader

        torch.manual_seed(0)
        model = build_model("fasterrcnn_mobilenet_v3_large_fpn", 2, tiny)
        transform = DetTrainTransform([det_augment_step("horizontal_flip")], [64], 64, 2.0)
        train = DetectionDataset(folder, canonical, None, transform, masks=False, training=True)
        val = DetectionDataset(folder, canonical, None, DetEvalTransform(), masks=False, training=False)
        step = DetectionStep()
        callbacks = [
            Evaluator(ctx, eval_loader(val, 4), DetectionMetrics(["box", "disc"]), interval=2),
            Checkpointer(ctx, work, 1, "bbox/mAP_50"),
        ]
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = train_loader(train, 4, 0, seed=0, group=True)
        run = Trainer(
            model, opt, no_loss, loader, callbacks=callbacks, max_epochs=4, epoch_seed=0, train_step=step
        )
        return run, step

    whole, step = trainer(tmp_path / "whole", StubContext())
    whole.fit()
    assert step.take_means().keys() >= {"loss_classifier", "loss_box_reg", "loss_objectness"}
    metrics = whole.state.last_metrics
    assert math.isnan(metrics["loss"]) and 0 <= metrics["bbox/mAP_50"] <= 1 and metrics["samples"] == 8

    class StopAfter(Checkpointer):
        def on_epoch_end(self, trainer: Any) -> None:
            super().on_epoch_end(trainer)
            if trainer.state.epoch == 2:
                raise KeyboardInterrupt

    first, _ = trainer(tmp_path / "run", StubContext())
    first.callbacks = [
        StopAfter(c.ctx, c.folder, 1, "bbox/mAP_50") if isinstance(c, Checkpointer) else c
        for c in first.callbacks
    ]
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    torch.manual_seed(123)
    second, _ = trainer(tmp_path / "run", StubContext())
    second.load_state_dict(load_file(tmp_path / "run" / "last.pt"))
    second.fit()
    for (key, a), b in zip(whole.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), key
