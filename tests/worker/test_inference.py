"""Inference on trained models: loading, predict, Grad-CAM (CNN and both ViT layouts), verified exports,
FLOPs, refusing checkpoints that carry code, and importing a bare state dict."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from worker.analysis import count_flops, model_complexity
from worker.cam import grad_cam, reshape_transform_for
from worker.data import eval_transform, read_image
from worker.engine.checkpoint import UnsafeCheckpoint, save_model_file
from worker.export import ExportMismatch, export_onnx, export_torchscript, max_abs_diff
from worker.models import LoadedModel, load_model, preprocess
from worker.predict import predict_image, prediction_overlay, probabilities
from worker.serving.cache import ModelCache
from worker.zoo import build_model

CLASSES = ["circle", "square", "triangle"]
NORMALIZE = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def picture(width: int = 50, height: int = 40, seed: int = 0) -> Image.Image:
    """A shape on a noisy background, so a heat map has something to find."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 60, (height, width, 3), dtype=np.uint8))
    ImageDraw.Draw(img).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(230, 200, 40)
    )
    return img


def save_tiny(path: Path, *, input_size: int = 32, seed: int = 0) -> nn.Module:
    """A tiny_cnn with a few SGD steps (so BatchNorm statistics are not the defaults), saved as model.pt."""
    torch.manual_seed(seed)
    model = build_model("tiny_cnn", len(CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        x, y = torch.randn(8, 3, input_size, input_size), torch.randint(0, len(CLASSES), (8,))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    save_model_file(
        path,
        state_dict=model.state_dict(),
        architecture="tiny_cnn",
        task="classification",
        class_names=CLASSES,
        input_size=input_size,
        mean=NORMALIZE["mean"],
        std=NORMALIZE["std"],
        options={"dropout": 0.0},
    )
    return model


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "model.pt"
    save_tiny(path)
    return path


# ------------------------------------------------------------------------------------------ predict


def test_load_and_predict_give_ordered_probabilities(tiny_file: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny_file)
    assert loaded.class_names == CLASSES and loaded.input_size == 32 and not loaded.model.training
    img = picture()
    x = preprocess(img, loaded.input_size, loaded.normalize)
    assert x.shape == (1, 3, 32, 32)
    # The single-picture path equals evaluation's decode + eval transform of the same file.
    img.save(tmp_path / "p.png")
    from_file = eval_transform(32, NORMALIZE["mean"], NORMALIZE["std"])(read_image(tmp_path / "p.png"))
    assert torch.allclose(x[0], from_file, atol=1e-6)

    probs = probabilities(loaded, x)[0]
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5) and (probs >= 0).all()
    top = predict_image(loaded, img, k=3)
    assert [p.score for p in top] == sorted((p.score for p in top), reverse=True)
    assert sum(p.score for p in top) == pytest.approx(1.0, abs=1e-5)
    assert top[0].index == int(probs.argmax()) and top[0].name == CLASSES[top[0].index]
    assert len(predict_image(loaded, img, k=2)) == 2

    overlay = prediction_overlay(img, top)
    assert overlay.size == img.size and np.any(np.asarray(overlay) != np.asarray(img))


def test_warm_cache_reuses_until_the_file_changes(tmp_path: Path) -> None:
    tiny_file = tmp_path / "model.pt"
    save_tiny(tiny_file)
    cache = ModelCache(1 << 30)
    first = cache.get(41, tiny_file)
    assert cache.get(41, tiny_file) is first and cache.loads == 1
    later = tiny_file.stat().st_mtime + 5
    os.utime(tiny_file, (later, later))
    assert cache.get(41, tiny_file) is not first and cache.loads == 2


# ------------------------------------------------------------------------------------------ Grad-CAM


def _differs(a: Image.Image, b: Image.Image) -> float:
    return float(
        np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b.convert("RGB"), dtype=np.float32)).mean()
    )


def test_grad_cam_on_a_cnn(tiny_file: Path) -> None:
    loaded = load_model(tiny_file)
    img = picture(50, 40)
    out = grad_cam(loaded, img)
    assert out.overlay.size == img.size and _differs(out.overlay, img) > 5
    assert out.target_layer == "features.4"  # the catalog's default
    assert out.target_index == out.predicted_index and out.heatmap.shape == (32, 32)

    chosen = grad_cam(loaded, img, target_class="triangle", target_layer="features.2")
    assert chosen.target_class == "triangle" and chosen.target_layer == "features.2"
    with pytest.raises(ValueError, match=r"features\.4"):
        grad_cam(loaded, img, target_layer="features.44")
    with pytest.raises(ValueError, match="no class 'hexagon'"):
        grad_cam(loaded, img, target_class="hexagon")


def test_the_heat_map_lands_where_the_eval_crop_came_from() -> None:
    """At 32 px the eval pipeline resizes the short side to 37 and centre-crops 32: of a 100x60 picture
    it sees x in [24.0, 75.9]. A map hot on the crop's left half must be hot there, cold elsewhere."""
    from worker.cam import eval_crop_box, overlay_on_image

    assert eval_crop_box(100, 60, 32) == pytest.approx((24.05, 4.05, 75.95, 55.95), abs=0.01)
    heat = np.zeros((32, 32), np.float32)
    heat[:, :16] = 1.0
    grey = Image.new("RGB", (100, 60), (128, 128, 128))
    red = np.asarray(overlay_on_image(grey, heat, 32), dtype=np.int32)[30, :, 0]  # the middle row
    assert red[28:48].min() > red[:20].max() and red[28:48].min() > red[54:].max()


def _loaded(model: nn.Module, architecture: str, size: int, names: list[str]) -> LoadedModel:
    return LoadedModel(
        model=model.eval(),
        architecture=architecture,
        task="classification",
        class_names=names,
        input_size=size,
        normalize=NORMALIZE,
        options={},
        path=Path("model.pt"),
    )


def test_grad_cam_on_a_timm_vit() -> None:
    torch.manual_seed(0)
    loaded = _loaded(build_model("vit_tiny_patch16_224", 3), "vit_tiny_patch16_224", 224, CLASSES)
    img = picture(240, 224)
    out = grad_cam(loaded, img)
    assert out.target_layer == "blocks.11.norm1"
    assert out.overlay.size == img.size and _differs(out.overlay, img) > 5
    assert out.heatmap.shape == (224, 224) and out.heatmap.max() > out.heatmap.min()


def test_vit_token_layouts_become_grids() -> None:
    """timm keeps its prefix tokens (class + registers) first and says how many; torchvision's ViT has
    exactly one class token. Both turn into a (B, C, 14, 14) map at 224 px with 16 px patches."""
    import timm
    from torchvision.models.vision_transformer import VisionTransformer

    timm_vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=3, reg_tokens=4, depth=1
    )
    tokens = torch.arange(2 * (5 + 196) * 8, dtype=torch.float32).reshape(2, 5 + 196, 8)
    grid = reshape_transform_for(timm_vit, 224)(tokens)
    assert grid.shape == (2, 8, 14, 14) and torch.equal(grid[:, :, 0, 0], tokens[:, 5, :])

    tv_vit = VisionTransformer(
        image_size=224, patch_size=16, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16
    )
    tokens = torch.randn(2, 1 + 196, 8)
    grid = reshape_transform_for(tv_vit, 224)(tokens)
    assert grid.shape == (2, 8, 14, 14) and torch.equal(grid[:, :, 0, 1], tokens[:, 2, :])


def test_grad_cam_on_a_torchvision_vit() -> None:
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(
        image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=3
    )
    loaded = _loaded(model, "vit_b_16", 64, CLASSES)
    img = picture(80, 64)
    out = grad_cam(loaded, img, target_layer="encoder.layers.encoder_layer_1.ln_1")
    assert out.overlay.size == img.size and _differs(out.overlay, img) > 5


# -------------------------------------------------------------------------------------------- export


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exports_match_pytorch_and_a_sabotaged_check_fails(tiny_file: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny_file)
    ts = export_torchscript(loaded.model, 32, tmp_path / "out" / "model.pt")
    assert ts.max_abs_diff <= 1e-4 and ts.path.is_file()
    scripted = torch.jit.load(str(ts.path))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(x), loaded.model(x), atol=1e-4)

    onnx_file = export_onnx(loaded.model, 32, tmp_path / "out" / "model.onnx")
    assert onnx_file.max_abs_diff <= 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # a dynamic batch axis
    got = session.run(["logits"], {"input": x.numpy()})[0]
    with torch.no_grad():
        assert max_abs_diff(got, loaded.model(x)) <= 1e-4

    def off_by(a: Any, b: torch.Tensor) -> float:
        return max_abs_diff(a, b) + 0.01

    with pytest.raises(ExportMismatch, match=r"max abs difference 0\.01\d* > tolerance 0\.0001"):
        export_torchscript(loaded.model, 32, tmp_path / "bad" / "model.pt", compare=off_by)
    with pytest.raises(ExportMismatch, match="ONNX export differs"):
        export_onnx(loaded.model, 32, tmp_path / "bad" / "model.onnx", compare=off_by)
    assert list((tmp_path / "bad").iterdir()) == []  # nothing half-verified is left behind


# --------------------------------------------------------------------------------------------- FLOPs


def test_flops_of_a_conv_and_a_linear_are_the_hand_count() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    conv = 2 * (4 * 8 * 8) * (3 * 3 * 3)  # two FLOPs per multiply-add, per output element
    linear = 2 * (4 * 8 * 8) * 10
    params = (4 * 3 * 3 * 3 + 4) + (4 * 8 * 8 * 10 + 10)
    assert model_complexity(model, 8) == (params, conv + linear)
    assert count_flops(model, 8, batch=3) == 3 * (conv + linear)
    assert model.training  # the count leaves the mode as it found it


def test_catalog_analysis_job_adds_to_the_stats_file(sqlite_stack: Any, tmp_path: Path) -> None:
    from backend.specs.stats import CatalogStats, EntryStats, read_catalog_stats, write_catalog_stats
    from worker.jobs.analyze_catalog import run_analyze_catalog

    data_dir = sqlite_stack.data_dir
    kept = EntryStats(input_size=224, params=1, flops=2)
    write_catalog_stats(data_dir, CatalogStats(entries={"resnet18": kept}))
    owner, job, _ = _user_job_and_model("analyze_catalog", architecture="tiny_cnn", class_names=CLASSES)
    config = {"architectures": ["tiny_cnn", "no_such_net"]}
    result = run_analyze_catalog(_ctx(owner, job, "analyze_catalog", config, tmp_path / "w"))
    assert result["counted"] == ["tiny_cnn"] and "no_such_net" in result["errors"]
    stats = read_catalog_stats(data_dir)
    assert stats is not None and stats.entries["resnet18"] == kept
    tiny = stats.entries["tiny_cnn"]
    model = build_model("tiny_cnn", 1000)
    assert (tiny.input_size, tiny.params, tiny.flops) == (64, *model_complexity(model, 64))


# ------------------------------------------------------------------------------ unsafe checkpoints


class _Payload:
    """Unpickling this would create ``marker``: what a malicious checkpoint does with code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _evil_checkpoint(path: Path, marker: Path, *, bare: bool = False) -> Path:
    weights = build_model("tiny_cnn", 3).state_dict()
    obj: dict[str, Any] = (
        {**weights, "hook": _Payload(marker)}
        if bare
        else {"format": "studio-model/1", "architecture": "tiny_cnn", "task": "classification",
              "class_names": CLASSES, "input_size": 32, "normalize": NORMALIZE, "options": {},
              "state_dict": weights, "extra": _Payload(marker)}
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def test_a_checkpoint_with_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeCheckpoint, match="weights_only"):
        load_model(evil)
    assert not marker.exists()


# ------------------------------------------------------------------------------- jobs on a database


def _user_job_and_model(kind: str, **model: Any) -> tuple[int, int, int]:
    from backend.db.session import session_scope
    from backend.db.tables import Job, TrainedModel, User

    with session_scope() as s:
        user = User(email=f"{time.monotonic_ns()}@example.com", password_hash="x")
        s.add(user)
        s.flush()
        job = Job(owner_id=user.id, kind=kind, queue="light")
        row = TrainedModel(owner_id=user.id, name="m", task="classification", **model)
        s.add_all([job, row])
        s.flush()
        return user.id, job.id, row.id


def _ctx(owner_id: int, job_id: int, kind: str, config: dict[str, Any], work: Path) -> Any:
    from worker.context import JobContext

    work.mkdir(parents=True, exist_ok=True)
    return JobContext(
        job_id=job_id, owner_id=owner_id, kind=kind, config=config, attempt=1, worker="test",
        work_dir=work, stop_event=threading.Event(), lease_lost=threading.Event(),
    )  # fmt: skip


def _point_at(model_id: int, path: Path) -> None:
    """Point a model row at its uploaded file, as ``POST /api/models`` does."""
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel

    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        assert row is not None
        row.checkpoint_path = str(path)


def _model_row(model_id: int) -> Any:
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel

    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        s.expunge(row)
        return row


def test_import_accepts_a_bare_state_dict_and_refuses_code(sqlite_stack: Any, tmp_path: Path) -> None:
    from backend.models.contract import model_dir
    from worker.jobs.import_model import run_import_model

    data_dir = sqlite_stack.data_dir
    trained = build_model("tiny_cnn", 3).eval()
    owner, job, model_id = _user_job_and_model(
        "import_model", architecture="tiny_cnn", class_names=CLASSES, input_size=48, status="importing"
    )
    upload = model_dir(data_dir, model_id) / "checkpoint.pth"
    upload.parent.mkdir(parents=True)
    torch.save({f"module.{k}": v for k, v in trained.state_dict().items()}, upload)  # as DataParallel saves
    _point_at(model_id, upload)
    result = run_import_model(_ctx(owner, job, "import_model", {"model_id": model_id}, tmp_path / "w"))
    row = _model_row(model_id)
    assert row.status == "ready" and row.error is None and row.input_size == 48
    assert row.params == sum(p.numel() for p in trained.parameters()) and row.flops == result["flops"] > 0
    assert not upload.exists()
    loaded = load_model(row.checkpoint_path)  # a studio model file now
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), trained(x))

    from safetensors.torch import save_file

    owner, job, st_id = _user_job_and_model(
        "import_model", architecture="tiny_cnn", class_names=CLASSES, input_size=32, status="importing"
    )
    st = model_dir(data_dir, st_id) / "checkpoint.safetensors"
    st.parent.mkdir(parents=True)
    save_file(trained.state_dict(), str(st))
    _point_at(st_id, st)
    run_import_model(_ctx(owner, job, "import_model", {"model_id": st_id}, tmp_path / "w1"))
    assert _model_row(st_id).status == "ready"

    marker = tmp_path / "pwned"
    owner, job, evil_id = _user_job_and_model(
        "import_model", architecture="tiny_cnn", class_names=CLASSES, input_size=32, status="importing"
    )
    evil = _evil_checkpoint(model_dir(data_dir, evil_id) / "checkpoint.pt", marker, bare=True)
    _point_at(evil_id, evil)
    with pytest.raises(UnsafeCheckpoint):
        run_import_model(_ctx(owner, job, "import_model", {"model_id": evil_id}, tmp_path / "w2"))
    assert not marker.exists()
    row = _model_row(evil_id)
    assert row.status == "failed" and "weights_only" in row.error

    owner, job, wrong_id = _user_job_and_model(
        "import_model", architecture="tiny_cnn", class_names=["a", "b"], input_size=32, status="importing"
    )
    wrong = model_dir(data_dir, wrong_id) / "checkpoint.pt"
    wrong.parent.mkdir(parents=True)
    torch.save(trained.state_dict(), wrong)
    _point_at(wrong_id, wrong)
    with pytest.raises(ValueError, match="3 outputs, the upload names 2"):
        run_import_model(_ctx(owner, job, "import_model", {"model_id": wrong_id}, tmp_path / "w3"))
    assert _model_row(wrong_id).status == "failed"


def _dataset(owner_id: int, root: Path) -> int:
    """A ready classification dataset of five pictures in its test split (one without a label)."""
    from backend.datasets.canonical import CanonicalDataset, ImageRecord, Task
    from backend.db.session import session_scope
    from backend.db.tables import Dataset

    (root / "images").mkdir(parents=True)
    records = []
    for i in range(5):
        picture(48, 40, seed=i).save(root / "images" / f"{i}.png")
        tags = [CLASSES[i % 3]] if i < 4 else []
        records.append(
            ImageRecord(id=i + 1, file_name=f"images/{i}.png", source=f"{i}.png", width=48, height=40,
                        split="test", tags=tags)
        )  # fmt: skip
    CanonicalDataset(classes=CLASSES, tasks=[Task.classification], images=records, annotations=[]).save(root)
    with session_scope() as s:
        row = Dataset(owner_id=owner_id, name="shapes", status="ready", path=str(root), classes=CLASSES)
        s.add(row)
        s.flush()
        return row.id


def _artifacts(job_id: int) -> list[Any]:
    from sqlalchemy import select

    from backend.db.session import session_scope
    from backend.db.tables import Artifact

    with session_scope() as s:
        rows = list(s.scalars(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.id)))
        s.expunge_all()
        return rows


def test_predict_cam_and_export_jobs_record_their_artifacts(sqlite_stack: Any, tmp_path: Path) -> None:
    import csv

    from worker.jobs.cam import run_cam
    from worker.jobs.export import run_export
    from worker.jobs.predict import run_predict

    model_file = sqlite_stack.data_dir / "models" / "m" / "model.pt"
    save_tiny(model_file)
    owner, job, model_id = _user_job_and_model(
        "predict", architecture="tiny_cnn", class_names=CLASSES, input_size=32, status="ready",
        checkpoint_path=str(model_file),
    )  # fmt: skip
    dataset_id = _dataset(owner, sqlite_stack.data_dir / "datasets" / "d")

    config = {"model_id": model_id, "dataset_id": dataset_id, "split": "test", "top_k": 2}
    result = run_predict(_ctx(owner, job, "predict", config, tmp_path / "predict"))
    assert result["images"] == 5 and result["labelled"] == 4 and 0 <= result["accuracy"] <= 1
    arts = _artifacts(job)
    assert [(a.kind, a.name, a.media_type) for a in arts] == [
        ("predictions", "predictions.csv", "text/csv"),
        ("predictions", "predictions.json", "application/json"),
    ]
    with open(arts[0].path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == ["circle", "square", "triangle", "circle", ""]
    assert list(rows[0]) == ["image_id", "file", "split", "label", "predicted", "score", "class_2", "score_2"]
    assert result["accuracy"] == sum(r["label"] == r["predicted"] for r in rows) / 4

    # Another user's model is refused as if it did not exist.
    stranger, other_job, _ = _user_job_and_model("predict", architecture="tiny_cnn", class_names=CLASSES)
    with pytest.raises(PermissionError, match=f"model {model_id}"):
        run_predict(_ctx(stranger, other_job, "predict", config, tmp_path / "stranger"))

    _, cam_job, _ = _user_job_and_model("cam", architecture="tiny_cnn", class_names=CLASSES)
    cam_cfg = {"model_id": model_id, "dataset_id": dataset_id, "split": "test", "limit": 3}
    cam = run_cam(_ctx(owner, cam_job, "cam", {**cam_cfg, "target_class": "square"}, tmp_path / "cam"))
    assert [o["image_id"] for o in cam["overlays"]] == [1, 2, 3] and cam["target_layer"] == "features.4"
    assert {o["target_class"] for o in cam["overlays"]} == {"square"}
    pngs = _artifacts(cam_job)
    assert [a.kind for a in pngs] == ["cam"] * 3 and all(Image.open(a.path).size == (48, 40) for a in pngs)

    export = run_export(_ctx(owner, job, "export", {"model_id": model_id, "format": "onnx"}, tmp_path / "x"))
    assert export["max_abs_diff"] <= 1e-4
    again = run_export(_ctx(owner, job, "export", {"model_id": model_id, "format": "onnx"}, tmp_path / "x"))
    assert again["artifact_id"] == export["artifact_id"]  # one verified file per model and format
    exported = [a for a in _artifacts(job) if a.kind == "export_onnx"]
    assert len(exported) == 1 and exported[0].model_id == model_id and Path(exported[0].path).is_file()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_upload_predict_cam_and_export_through_a_worker(
    sqlite_stack: Any, client: Any, start_worker: Any, tmp_path: Path
) -> None:
    """The user's path: upload a bare state dict, then predict, explain and export it via the API."""
    import io

    from tests.helpers import sign_up, wait_for

    start_worker(sqlite_stack)
    sign_up(client)
    buf = io.BytesIO()
    torch.save(build_model("tiny_cnn", 3).state_dict(), buf)
    r = client.post(
        "/api/models",
        files={"file": ("tiny.pth", buf.getvalue())},
        data={"architecture": "tiny_cnn", "class_names": "\n".join(CLASSES), "input_size": "32"},
    )
    assert r.status_code == 201, r.text
    model_id = r.json()["model"]["id"]
    model = wait_for(
        lambda: (m := client.get(f"/api/models/{model_id}").json())["status"] != "importing" and m,
        90,
        what="the import",
    )
    assert model["status"] == "ready", model
    assert model["params"] > 0 and model["flops"] > 0

    png = io.BytesIO()
    picture(50, 40).save(png, format="PNG")
    image = {"image": ("p.png", png.getvalue(), "image/png")}
    r = client.post(f"/api/models/{model_id}/predict", files=image, params={"top_k": 2})
    assert r.status_code == 200, r.text
    top = r.json()["top_k"]
    assert [t["name"] for t in top] == [CLASSES[t["index"]] for t in top] and top[0]["score"] >= top[1][
        "score"
    ]

    r = client.post(f"/api/models/{model_id}/cam", files=image, data={"target_class": "circle"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    assert Image.open(io.BytesIO(r.content)).size == (50, 40)

    r = client.get(f"/api/models/{model_id}/export", params={"format": "torchscript"})
    assert r.status_code == 202, r.text
    job = wait_for(
        lambda: (
            (j := client.get(f"/api/jobs/{r.json()['job_id']}").json())["status"] in ("succeeded", "failed")
            and j
        ),
        90,
        what="the export",
    )
    assert job["status"] == "succeeded" and job["result"]["max_abs_diff"] <= 1e-4, job
    r = client.get(f"/api/models/{model_id}/export", params={"format": "torchscript"})
    assert r.status_code == 200
    scripted = torch.jit.load(io.BytesIO(r.content))
    assert scripted(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
