"""Segmentation parts: metrics equal mmseg's numpy intersect-and-union, one-window sliding inference
equals whole-image inference, the joint pipeline keeps image and mask aligned, every catalog entry
builds and runs, and the losses ignore 255."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.specs.catalog import list_models
from backend.tasks.segmentation import SegDataSpec, SegLossSpec, SegLossTerm
from worker.tasks.segmentation.inference import InferenceSettings, segment_logits, window_starts
from worker.tasks.segmentation.losses import SegmentationLoss
from worker.tasks.segmentation.metrics import SegmentationMetrics, confusion_matrix, scores
from worker.tasks.segmentation.transforms import SegTrainTransform
from worker.zoo import build_model, list_buildable, load_weights

SEG_ENTRIES = list_models("semantic_segmentation")


def numpy_intersect_and_union(
    preds: list[np.ndarray], labels: list[np.ndarray], n: int, ignore: int = 255
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mmseg's ``intersect_and_union`` summed over images, in numpy."""
    totals = [np.zeros(n) for _ in range(4)]
    for pred, label in zip(preds, labels, strict=True):
        keep = label != ignore
        p, t = pred[keep], label[keep]
        inter = p[p == t]
        a_i = np.histogram(inter, bins=n, range=(0, n - 1))[0]
        a_p = np.histogram(p, bins=n, range=(0, n - 1))[0]
        a_t = np.histogram(t, bins=n, range=(0, n - 1))[0]
        for acc, v in zip(totals, (a_i, a_i + 0, a_p, a_t), strict=True):
            acc += v
    inter, _, area_p, area_t = totals
    return inter, area_p + area_t - inter, area_p, area_t


def test_metrics_equal_the_numpy_intersect_and_union() -> None:
    rng = np.random.default_rng(0)
    n = 5
    labels = [rng.integers(0, n, (37, 41)).astype(np.uint8) for _ in range(6)]
    for label in labels:
        label[rng.random(label.shape) < 0.1] = 255
    labels[0][labels[0] == 4] = 0  # class 4 absent from one image only
    preds = [
        np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, n - 1, t.shape)).astype(np.uint8)
        for t in labels
    ]
    preds = [np.where(p == 255, 0, p) for p in preds]
    inter, union, area_p, area_t = numpy_intersect_and_union(preds, labels, n)

    metrics = SegmentationMetrics([f"c{i}" for i in range(n)])
    for p, t in zip(preds, labels, strict=True):
        logits = torch.nn.functional.one_hot(torch.from_numpy(p).long(), n).permute(2, 0, 1)[None].float()
        metrics.update(logits, torch.from_numpy(t).long()[None])
    out = metrics.compute()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou, dice, acc = inter / union, 2 * inter / (area_p + area_t), inter / area_t
    assert out["mIoU"] == pytest.approx(np.nanmean(iou), abs=1e-12)
    assert out["mDice"] == pytest.approx(np.nanmean(dice), abs=1e-12)
    assert out["mAcc"] == pytest.approx(np.nanmean(acc), abs=1e-12)
    assert out["aAcc"] == pytest.approx(inter.sum() / area_t.sum(), abs=1e-12)
    for i in range(n):
        assert out["per_class"][f"c{i}"]["iou"] == pytest.approx(iou[i], abs=1e-12)
        assert out["per_class"][f"c{i}"]["pixels"] == area_t[i]
    cm = np.array(out["confusion_matrix"])
    assert cm.sum() == sum(int((t != 255).sum()) for t in labels)
    assert len(out["worst_images"]) == 6 and out["samples"] == 6


def test_absent_classes_are_nan_and_left_out_of_the_means() -> None:
    cm = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 255]), 3)
    s = scores(cm)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert torch.isnan(s["iou"][2]) and float(s["iou"][:2].mean()) == 1.0


class _Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def test_slide_on_an_image_of_one_crop_equals_whole() -> None:
    model = build_model("unet_light", 4).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        whole = segment_logits(model, x, InferenceSettings("whole", 64, multiple=8))
        slide = segment_logits(model, x, InferenceSettings("slide", 64, stride=32, multiple=8))
    assert torch.equal(whole.argmax(1), slide.argmax(1))
    assert torch.allclose(whole, slide, atol=1e-5)


def test_slide_averages_overlapping_windows() -> None:
    assert window_starts(100, 64, 32) == [0, 32, 36]
    assert window_starts(50, 64, 32) == [0]
    model = _Conv().eval()  # translation-equivariant away from borders: windows agree in their middles
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        whole = segment_logits(model, x, InferenceSettings("whole", 32, multiple=1))
        slide = segment_logits(model, x, InferenceSettings("slide", 32, stride=16, multiple=1))
        flipped = segment_logits(model, x, InferenceSettings("slide", 32, stride=16, flip=True, multiple=1))
    assert slide.shape == whole.shape == flipped.shape == (1, 4, 70, 90)
    assert (slide.argmax(1) == whole.argmax(1)).float().mean() > 0.95


def test_joint_pipeline_keeps_image_and_mask_aligned() -> None:
    torch.manual_seed(0)
    spec = SegDataSpec(
        dataset_id=1,
        input_size=48,
        scale=80,
        augment=[
            {"name": "random_resize", "ratio_range": (0.5, 1.5)},  # type: ignore[list-item]
            {"name": "random_crop", "cat_max_ratio": 0.75},  # type: ignore[list-item]
            {"name": "horizontal_flip"},  # type: ignore[list-item]
            {"name": "pad"},  # type: ignore[list-item]
        ],
        normalize_mean=(0.0, 0.0, 0.0),
        normalize_std=(1.0, 1.0, 1.0),
    )
    transform = SegTrainTransform(spec)
    mask = torch.zeros(1, 60, 80, dtype=torch.uint8)
    mask[:, 10:40, 20:50] = 2
    image = (mask.expand(3, -1, -1) * 100).clone()  # the image is the mask, painted
    for _ in range(20):
        img, msk = transform(image, mask)
        msk = msk.squeeze(0)  # the dataset drops the mask's channel axis
        assert img.shape == (3, 48, 48) and msk.shape == (48, 48) and msk.dtype == torch.int64
        labelled = msk != 255
        painted = img[0] > 0.5
        agree = (painted == (msk == 2))[labelled].float().mean()
        assert agree > 0.95  # only edge pixels, resampled differently (bilinear vs nearest), may differ
        assert (img[:, ~labelled] == 0).all()  # padding: black image, ignored mask


def test_losses_ignore_255_and_add_up() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :2] = 255
    for name in ("cross_entropy", "dice", "focal", "lovasz"):
        loss = SegmentationLoss(SegLossSpec(terms=[SegLossTerm(name=name)]), 3)(logits, target)
        assert torch.isfinite(loss) and loss > 0
        grad = torch.autograd.grad(loss, logits)[0]
        assert float(grad[:, :, :2].abs().sum()) == 0.0  # ignored pixels teach nothing
    both = SegmentationLoss(
        SegLossSpec(terms=[SegLossTerm(name="cross_entropy"), SegLossTerm(name="dice", weight=0.5)]), 3
    )
    ce = SegmentationLoss(SegLossSpec(terms=[SegLossTerm(name="cross_entropy")]), 3)
    dice = SegmentationLoss(SegLossSpec(terms=[SegLossTerm(name="dice")]), 3)
    logits = logits.detach()
    assert float(both(logits, target)) == pytest.approx(
        float(ce(logits, target)) + 0.5 * float(dice(logits, target))
    )
    aux = float(ce((logits, logits), target))
    assert aux == pytest.approx(1.4 * float(ce(logits, target)), rel=1e-6)


@pytest.mark.parametrize("entry", SEG_ENTRIES, ids=[e.name for e in SEG_ENTRIES])
def test_every_segmentation_entry_builds_and_runs(entry: object) -> None:
    from backend.specs.catalog import CatalogEntry

    assert isinstance(entry, CatalogEntry)
    assert entry.name in list_buildable("semantic_segmentation")
    model = build_model(entry.name, 5).eval()
    size = entry.min_input_size
    assert size % entry.input_multiple == 0
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 5, size, size)
    if entry.cam_layer:
        model.get_submodule(entry.cam_layer)
    other = build_model(entry.name, 3)
    missing, unexpected = load_weights(other, model.state_dict())  # other classes: heads re-initialised
    assert missing and not unexpected and all(k.startswith(other.studio_heads) for k in missing)


@pytest.mark.parametrize("encoder", ["mobilenet_v2", "efficientnet-b0", "mit_b0", "tu-convnext_tiny"])
def test_encoders_are_options_of_a_head(encoder: str) -> None:
    model = build_model("fpn", 3, {"encoder": encoder}).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="not one of"):
        build_model("unetplusplus", 3, {"encoder": "mit_b0"})


def test_torchvision_aux_head_trains_and_exports_one_output() -> None:
    model = build_model("fcn_resnet50", 3, {"aux": True})
    out = model.train()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and len(out) == 2
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
