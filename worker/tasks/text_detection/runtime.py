"""Text detection's runtime: DBNet (DBNet++ with the ``asf`` option) on a torchvision backbone, trained on
the DB label maps with DBNet's loss, validated by the ICDAR 2015 protocol (hmean, precision, recall and
their curve over score thresholds), with the worst validation images drawn with their true and found
words. The score threshold a model keeps is the best one on the validation split, never the test's."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from backend.files import atomic_write_bytes
from backend.jobs.kinds import AugmentPreviewConfig, PredictConfig
from backend.models.contract import ArtifactKind
from backend.models.evaluation import Item, Kind
from backend.specs.catalog import CatalogEntry
from backend.tasks.text_detection import METRICS, TextDetectionConfig
from worker.context import JobContext
from worker.engine.callbacks import LossPartsLogger
from worker.models import LoadedModel
from worker.tasks.protocol import Finished, Plan
from worker.tasks.text_detection.data import TextImage, build_text_data, eval_loader, open_rgb, text_images
from worker.tasks.text_detection.loss import DBLoss
from worker.tasks.text_detection.metrics import TextDetectionMetrics
from worker.tasks.text_detection.model import DBNet
from worker.tasks.text_detection.postprocess import polygons_from_prob
from worker.tasks.text_detection.transforms import TextEvalTransform
from worker.training.recipe import TRAIN_SPAN, DatasetInfo, Fitted, shutdown_loaders

if TYPE_CHECKING:
    from worker.cam import CamOutput
    from worker.serving.answer import Picture

TRUE, FOUND, DONT_CARE = (40, 200, 90), (240, 60, 40), (150, 150, 150)
EVAL_BATCH = 4


class StudioDBNet(DBNet):
    """DBNet whose eval-mode output is the probability map itself, (B, 1, H, W): what export, Grad-CAM
    and FLOP counting take. Training still returns every map the loss needs."""

    studio_heads = ("prob_head", "thresh_head")  # what ``load_from`` may re-initialise (one class: never)

    def forward(self, x: torch.Tensor) -> Any:
        out = super().forward(x)
        return out if self.training else out["prob"]


def _settings(inference: dict[str, Any]) -> dict[str, Any]:
    return {
        "bin_thresh": float(inference.get("binary_threshold", 0.3)),
        "unclip_ratio": float(inference.get("unclip_ratio", 1.5)),
        "polygon": bool(inference.get("polygons", False)),
    }


def find_words(prob: torch.Tensor, inference: dict[str, Any], scale: float = 1.0) -> dict[str, Any]:
    """Words of one probability map (1, H, W) or (H, W), every score kept (the curve sweeps them), in the
    original image's pixels (``scale``: network pixels per original pixel)."""
    found = polygons_from_prob(prob.detach().float().cpu().numpy(), min_score=0.0, **_settings(inference))
    return {"polygons": [p / scale for p, _ in found], "scores": [float(s) for _, s in found]}


def kept_words(found: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """The words at or above the model's score threshold, as answers give them (corners to 0.1 px)."""
    return [
        {"points": np.round(p, 1).tolist(), "score": s}
        for p, s in zip(found["polygons"], found["scores"], strict=True)
        if s >= threshold
    ]


class TextInfer:
    """``Trainer.evaluate``'s forward pass: the probability maps, post-processed into words."""

    def __init__(self, inference: dict[str, Any]) -> None:
        self.inference = inference

    def __call__(
        self, model: nn.Module, images: torch.Tensor, targets: dict[str, Any]
    ) -> list[dict[str, Any]]:
        prob = model(images)
        return [find_words(prob[i, 0], self.inference) for i in range(prob.shape[0])]


class SplitMetrics:
    """The ICDAR 2015 metrics fed from a batch: the targets' outlines are in the network's pixels, as the
    found words are (the same resize for both, so every IoU is the original one)."""

    def __init__(self, score_threshold: float, keep_items: bool = False) -> None:
        self.metrics = TextDetectionMetrics(score_threshold=score_threshold)
        self.keep_items = keep_items  # keep each image's words, in the picture's pixels, for ``items``
        self._words: dict[int, tuple[list[Any], list[Any], list[float]]] = {}

    def reset(self) -> None:
        self.metrics.reset()
        self._words = {}

    def update(self, outputs: list[dict[str, Any]], targets: dict[str, Any]) -> None:
        if self.keep_items:
            for out, polygons, image_id, scale in zip(
                outputs, targets["polygons"], targets["image_ids"], targets["scales"], strict=True
            ):
                self._words[int(image_id)] = (
                    [_in_picture(p, scale) for p in polygons],
                    [_in_picture(p, scale) for p in out.get("polygons", [])],
                    [float(s) for s in out.get("scores", [])],
                )
        self.metrics.update(
            outputs,
            [
                {"polygons": polygons, "ignore": ignore, "image_id": image_id}
                for polygons, ignore, image_id in zip(
                    targets["polygons"], targets["ignore"], targets["image_ids"], strict=True
                )
            ],
        )

    def compute(self) -> dict[str, Any]:
        return self.metrics.compute()

    def items(self) -> list[Item]:
        """At the metrics' score threshold: each word found (its detection, the word it matched), each
        false word (a detection outside any don't-care region that matched none) and each missed word,
        with their outlines (x, y points in the picture's pixels) in ``detail``."""
        out: list[Item] = []
        for result in self.metrics.image_results():
            truths, found, scores = self._words.get(result.image_id, ([], [], []))
            for g, d in result.matches:
                detail = {"polygon": found[d], "true_polygon": truths[g]}
                out.append(Item(result.image_id, 0, 0, scores[d], kind=Kind.detection.value, detail=detail))
            for d in result.false_words:
                detail = {"polygon": found[d]}
                out.append(
                    Item(result.image_id, None, 0, scores[d], kind=Kind.detection.value, detail=detail)
                )
            for g in result.missed_words:
                detail = {"true_polygon": truths[g]}
                out.append(Item(result.image_id, 0, None, None, kind=Kind.missed.value, detail=detail))
        return out


def _in_picture(points: Any, scale: float) -> list[list[float]]:
    """An outline in the network's pixels as ``[[x, y], ...]`` in the picture's."""
    array = np.asarray(
        points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64
    )
    return [[round(float(x) / scale, 1), round(float(y) / scale, 1)] for x, y in array.reshape(-1, 2)]


def _measure(
    model: nn.Module,
    loader: Any,
    metrics: SplitMetrics,
    infer: TextInfer,
    device: torch.device | str = "cpu",
    check: Callable[[], None] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> None:
    """Every batch of ``loader`` through ``model`` (in eval mode) into ``metrics``."""
    n = len(loader)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i, (batch, targets) in enumerate(loader):
                if check is not None:
                    check()
                metrics.update(infer(model, batch.to(device), targets), targets)
                if progress is not None:
                    progress((i + 1) / n, f"batch {i + 1}/{n}")
    finally:
        shutdown_loaders(loader)
        model.train(was_training)


class TextStep:
    """``Trainer``'s train step: DBNet's loss; keeps its parts for logging and counts the words the crops
    dropped."""

    def __init__(self, loss: DBLoss) -> None:
        self.loss = loss
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.dropped = 0

    def __call__(self, model: nn.Module, images: torch.Tensor, targets: dict[str, Any]) -> torch.Tensor:
        self.dropped += int(targets.get("dropped", 0))
        total, parts = self.loss(model(images), targets)
        for name, value in parts.items():
            self.parts.setdefault(name, []).append(value.detach())
        return total

    def take_means(self) -> dict[str, float]:
        means = {k: float(torch.stack(v).float().mean()) for k, v in self.parts.items() if v}
        self.parts.clear()
        return means


def _draw(image: Image.Image, words: list[np.ndarray], colours: list[tuple[int, int, int]]) -> Image.Image:
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(1, round(min(out.size) / 200))
    for points, colour in zip(words, colours, strict=True):
        pts = [(float(x), float(y)) for x, y in np.asarray(points).reshape(-1, 2)]
        if len(pts) >= 2:
            draw.line([*pts, pts[0]], fill=colour, width=width)
    return out


def words_overlay(image: Image.Image, polygons: list[np.ndarray]) -> Image.Image:
    return _draw(image, polygons, [FOUND] * len(polygons))


def truth_overlay(image: Image.Image, item: TextImage) -> Image.Image:
    return _draw(image, item.polygons, [DONT_CARE if i else TRUE for i in item.ignore])


class TextDetectionRuntime:
    def build_model(
        self, entry: CatalogEntry, num_classes: int, options: dict[str, Any], pretrained: bool
    ) -> nn.Module:
        return StudioDBNet(
            str(entry.fixed["backbone"]),
            asf=bool(options["asf"]),
            neck_channels=int(options["neck_channels"]),
            pretrained_backbone=pretrained,
        )

    def plan(
        self, ctx: JobContext, config: TextDetectionConfig, ds: DatasetInfo, device: torch.device
    ) -> Plan:
        from worker.zoo import build_model

        best = config.runtime.best_metric
        if best not in METRICS:
            raise ValueError(f"runtime.best_metric: choose one of {', '.join(METRICS)}, not {best!r}")
        class_names = ["text"]
        data = build_text_data(
            ds.root, ds.canonical, config.data, seed=config.runtime.seed, pin_memory=device.type == "cuda"
        )
        if data.train.words == 0:
            raise ValueError(f"data.dataset_id: dataset {ds.id} has no words outlined in its train split")
        model = build_model(
            config.model.architecture, 1, config.model.options, pretrained=config.model.pretrained
        )
        ev, spec = config.evaluation, config.loss
        inference = {
            "score_threshold": ev.score_threshold,
            "binary_threshold": ev.binary_threshold,
            "unclip_ratio": ev.unclip_ratio,
            "polygons": ev.polygons,
        }
        step = TextStep(DBLoss(alpha=spec.prob_weight, beta=spec.thresh_weight, ohem_ratio=spec.ohem_ratio))
        return Plan(
            config=config,
            class_names=class_names,
            data=data,
            model=model,
            flops_size=config.data.input_size,
            train_step=step,
            metrics=SplitMetrics(ev.score_threshold) if data.val_loader is not None else None,
            infer=TextInfer(inference),
            callbacks=[LossPartsLogger(ctx, step, config.runtime.log_interval)],
            checkpoint_extra=lambda: {"dropped_words": step.dropped},
            inference=inference,
        )

    def finish(self, ctx: JobContext, plan: Plan, fitted: Fitted, device: torch.device) -> Finished:
        config, data, best = plan.config, plan.data, fitted.best_metrics
        assert isinstance(plan.train_step, TextStep) and plan.inference is not None  # noqa: S101 - plan()
        chosen = best.get("best_threshold") if config.evaluation.choose_threshold else None
        if chosen and chosen.get("threshold") is not None:
            # The threshold the model keeps: the best on validation (the test split never chooses it).
            plan.inference["score_threshold"] = float(chosen["threshold"])
        drawn: list[dict[str, Any]] = []
        if data.val is not None and best.get("worst_images"):
            ctx.progress(TRAIN_SPAN[1], "drawing the worst validation images", force=True)
            plan.model.load_state_dict(fitted.weights)
            by_id = {im.record.id: im for im in data.val.images}
            worst = [by_id[w["image_id"]] for w in best["worst_images"] if w["image_id"] in by_id]
            drawn = _render_worst(plan.model, worst, config.data, plan.inference, ctx.work_dir, device)
        summary = {
            "worst_images": best.get("worst_images", []),
            "dropped_words": plan.train_step.dropped,
            "score_threshold": plan.inference["score_threshold"],
            "words": {"train": data.train.words, "val": data.val.words if data.val is not None else 0},
        }
        items = []
        if data.val_loader is not None:
            ctx.progress(TRAIN_SPAN[1], "listing the validation words behind each figure", force=True)
            plan.model.load_state_dict(fitted.weights)
            listed = SplitMetrics(plan.inference["score_threshold"], keep_items=True)
            _measure(plan.model, data.val_loader, listed, TextInfer(plan.inference), device, ctx.check)
            items = listed.items()
        return Finished(summary=summary, result=dict(summary), drawn=drawn, items=items)

    def evaluate(
        self, ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        images = text_images(ds.root, ds.canonical, [split])
        if not images:
            raise ValueError(f"split: dataset {ds.id} has no images in its {split} split")
        metrics = SplitMetrics(float(loaded.inference.get("score_threshold", 0.5)), keep_items=True)
        loader = eval_loader(images, loaded.input_size, loaded.normalize, EVAL_BATCH)
        with loaded.lock:
            _measure(
                loaded.model,
                loader,
                metrics,
                TextInfer(loaded.inference),
                check=ctx.check,
                progress=lambda f, m: ctx.progress(f * 0.95, m),
            )
        return metrics.compute(), {"images": len(images), "items": metrics.items()}

    def predict_split(self, ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
        """ICDAR 2015's submission format: a zip of ``res_<image>.txt``, one word a line as its four
        corners ``x1,y1,...,x4,y4`` (polygons: every vertex), clockwise from the top-left, in the image's
        pixels; and the same words with their scores as JSON."""
        from worker.jobs.common import owned_dataset, record_artifact

        folder, canonical = owned_dataset(ctx, cfg.dataset_id)
        splits = ["train", "val", "test"] if cfg.split == "all" else [cfg.split]
        images = text_images(folder, canonical, splits)
        threshold = float(loaded.inference.get("score_threshold", 0.5))
        loader = eval_loader(images, loaded.input_size, loaded.normalize, EVAL_BATCH)
        rows: list[dict[str, Any]] = []
        by_id = {im.record.id: im for im in images}
        try:
            with loaded.lock, torch.inference_mode():
                loaded.model.eval()
                for batch, targets in loader:
                    ctx.check()
                    prob = loaded.model(batch)
                    for i, (image_id, scale) in enumerate(
                        zip(targets["image_ids"], targets["scales"], strict=True)
                    ):
                        kept = kept_words(find_words(prob[i, 0], loaded.inference, scale), threshold)
                        rows.append(
                            {"image_id": image_id, "file": by_id[image_id].record.file_name, "words": kept}
                        )
                    ctx.progress(len(rows) / max(1, len(images)), f"{len(rows)}/{len(images)} images")
        finally:
            shutdown_loaders(loader)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for row in rows:
                stem = PurePosixPath(row["file"]).stem
                lines = [",".join(str(round(v)) for pt in w["points"] for v in pt) for w in row["words"]]
                zf.writestr(f"res_{stem}.txt", "\n".join(lines) + ("\n" if lines else ""))
        zip_path, json_path = ctx.work_dir / "submission.zip", ctx.work_dir / "predictions.json"
        atomic_write_bytes(zip_path, buf.getvalue())
        words = sum(len(r["words"]) for r in rows)
        summary = {"images": len(rows), "words": words, "score_threshold": threshold}
        document = {"model_id": cfg.model_id, "dataset_id": cfg.dataset_id, "split": cfg.split, **summary}
        atomic_write_bytes(json_path, json.dumps({**document, "rows": rows}).encode())
        ids = [
            record_artifact(
                ctx,
                kind=ArtifactKind.predictions,
                name=p.name,
                path=p,
                media_type=media,
                model_id=cfg.model_id,
            )
            for p, media in ((zip_path, "application/zip"), (json_path, "application/json"))
        ]
        ctx.progress(1.0, f"{len(rows)} images, {words} words", force=True)
        return {**document, "artifact_ids": ids}

    def answer(self, loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
        from worker.serving.answer import save_answer_image

        transform = TextEvalTransform(loaded.input_size, loaded.normalize["mean"], loaded.normalize["std"])
        samples = [transform(p.image.convert("RGB")) for p in pictures]
        threshold = float(loaded.inference.get("score_threshold", 0.5))
        with loaded.lock, torch.inference_mode():
            loaded.model.eval()
            prob = loaded.model(torch.stack([s.image for s in samples]))
        answers = []
        for i, (picture, sample) in enumerate(zip(pictures, samples, strict=True)):
            words = kept_words(find_words(prob[i, 0], loaded.inference, sample.scale), threshold)
            best = max((w["score"] for w in words), default=None)
            answer: dict[str, Any] = {
                "top_k": [{"index": 0, "name": "text", "score": best}] if best is not None else [],
                "words": words,
                "score_threshold": threshold,
                "width": picture.image.width,
                "height": picture.image.height,
            }
            if picture.overlay:
                polygons = [np.asarray(w["points"]) for w in words]
                answer["overlay"] = save_answer_image(words_overlay(picture.image, polygons))
            answers.append(answer)
        return answers

    def explain(
        self,
        loaded: LoadedModel,
        image: Image.Image,
        target_class: str | None,
        target_layer: str | None,
        **detector: Any,
    ) -> CamOutput:
        """Grad-CAM of the probability map over the pixels the model calls text (a one-class map, as a
        segmenter's class region): what the backbone and neck looked at to find the words."""
        from worker.tasks.text_detection.cam import text_map_cam

        return text_map_cam(loaded, image, target_layer)

    def preview(
        self, ctx: JobContext, job: AugmentPreviewConfig, config: TextDetectionConfig
    ) -> dict[str, Any]:
        """The training transforms on a few images, each drawn with its words (don't-care in grey) and
        labelled with the words kept and those the crop dropped."""
        import random

        from worker.jobs.common import owned_dataset
        from worker.previews import save_preview, to_pil
        from worker.tasks.text_detection.transforms import TextTrainTransform

        root, canonical = owned_dataset(ctx, config.data.dataset_id)
        images = text_images(root, canonical, ["train"])
        if not images:
            raise ValueError(f"config.data.dataset_id: dataset {config.data.dataset_id} has no train images")
        spec = config.data
        transform = TextTrainTransform(
            [s.model_dump() for s in spec.augment], spec.input_size, spec.normalize_mean, spec.normalize_std
        )
        chosen = random.Random(job.seed).sample(range(len(images)), min(job.count, len(images)))  # noqa: S311
        rng = np.random.default_rng(job.seed)
        out = []
        for index, i in enumerate(chosen):
            ctx.check()
            item = images[i]
            sample = transform(open_rgb(item.path), item.polygons, item.ignore, rng)
            picture = _draw(
                to_pil(sample.image, spec.normalize_mean, spec.normalize_std),
                sample.polygons,
                [DONT_CARE if ig else TRUE for ig in sample.ignore],
            )
            kept = len(sample.ignore) - sum(sample.ignore)
            label = f"{kept} word{'s' if kept != 1 else ''}" + (
                f", {sample.dropped} dropped" if sample.dropped else ""
            )
            out.append(
                {"artifact_id": save_preview(ctx, index, picture), "label": label, "source": item.path.name}
            )
            ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
        return {"images": out}


def _render_worst(
    model: nn.Module,
    worst: list[TextImage],
    spec: Any,
    inference: dict[str, Any],
    folder: Any,
    device: torch.device,
) -> list[dict[str, Any]]:
    """For each worst image: its true words (don't-care in grey) and the words found, drawn on it."""
    from worker.training.worst import WORST_DIR, png_bytes

    transform = TextEvalTransform(spec.input_size, spec.normalize_mean, spec.normalize_std)
    threshold = float(inference["score_threshold"])
    was_training = model.training
    model.eval()
    out = []
    try:
        for item in worst:
            picture = open_rgb(item.path)
            sample = transform(picture)
            with torch.inference_mode():
                prob = model(sample.image[None].to(device))
            found = find_words(prob[0, 0], inference, sample.scale)
            kept = [p for p, s in zip(found["polygons"], found["scores"], strict=True) if s >= threshold]
            files = {}
            for suffix, drawn in (
                ("true.png", truth_overlay(picture, item)),
                ("pred.png", words_overlay(picture, kept)),
            ):
                path = folder / WORST_DIR / str(item.record.id) / suffix
                atomic_write_bytes(path, png_bytes(drawn))
                files[suffix] = path
            out.append({"image_id": item.record.id, "iou": math.nan, "files": files})
    finally:
        model.train(was_training)
    return out


RUNTIME = TextDetectionRuntime()
