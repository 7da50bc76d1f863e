"""The model zoo builds every catalog entry; weights load safely and a differing head is re-initialised."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from backend.specs.catalog import list_models
from worker.engine.checkpoint import (
    UnsafeCheckpoint,
    load_file,
    load_model_file,
    save_model_file,
    weights_from_file,
)
from worker.zoo import build_model, head_name, list_buildable, load_weights

ENTRIES = list_models("classification")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_catalog_entry_builds_and_runs(entry: object) -> None:
    from backend.specs.catalog import CatalogEntry

    assert isinstance(entry, CatalogEntry)
    assert entry.name in list_buildable()
    model = build_model(entry.name, 7, {"dropout": 0.1}).eval()
    size = entry.min_input_size
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 7)
    head = model.get_submodule(head_name(model))
    assert isinstance(head, torch.nn.Linear) and head.out_features == 7
    if entry.cam_layer:
        model.get_submodule(entry.cam_layer)  # the catalog's Grad-CAM layer exists


def test_unknown_options_and_architectures_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        build_model("tiny_cnn", 3, {"depth": 5})
    with pytest.raises(ValueError, match="outside"):
        build_model("tiny_cnn", 3, {"dropout": 1.5})
    with pytest.raises(KeyError, match="unknown architecture"):
        build_model("lenet", 3)


def test_head_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 3, {"dropout": 0.5})  # dropout through a hook on fc
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    keys = set(build_model("resnet18", 3).state_dict())
    assert set(model.state_dict()) == keys  # the option never changes the checkpoint's keys


def test_load_weights_reinitialises_a_head_of_another_size() -> None:
    torch.manual_seed(0)
    source = build_model("tiny_cnn", 3)
    target = build_model("tiny_cnn", 5)
    missing, unexpected = load_weights(target, source.state_dict())
    assert sorted(missing) == ["classifier.1.bias", "classifier.1.weight"] and unexpected == []
    src, dst = source.state_dict(), target.state_dict()
    assert torch.equal(src["features.4.0.weight"], dst["features.4.0.weight"])
    assert dst["classifier.1.weight"].shape == (5, 96)


def test_load_weights_reports_keys_and_refuses_another_architecture() -> None:
    model = build_model("tiny_cnn", 3)
    state = dict(model.state_dict())
    state["extra.weight"] = torch.zeros(1)
    del state["features.0.0.weight"]
    missing, unexpected = load_weights(build_model("tiny_cnn", 3), state)
    assert missing == ["features.0.0.weight"] and unexpected == ["extra.weight"]
    with pytest.raises(ValueError, match=r"features\.0\.0\.weight has shape"):
        load_weights(build_model("tiny_cnn", 3), {"features.0.0.weight": torch.zeros(1, 3, 3, 3)})


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned-by-checkpoint",))


def test_a_checkpoint_with_code_in_it_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": build_model("tiny_cnn", 3).state_dict(), "hook": _Evil()}, path)
    for read in (load_file, weights_from_file, load_model_file):
        with pytest.raises(UnsafeCheckpoint, match="weights_only"):
            read(path)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnsafeCheckpoint, match="not a readable"):
        load_file(tmp_path / "junk.pt")


def test_model_file_round_trip(tmp_path: Path) -> None:
    model = build_model("tiny_cnn", 3).eval()
    path = tmp_path / "model.pt"
    save_model_file(
        path,
        state_dict=model.state_dict(),
        architecture="tiny_cnn",
        task="classification",
        class_names=["circle", "square", "triangle"],
        input_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        options={"dropout": 0.0},
    )
    data = load_model_file(path)
    assert data["format"] == "studio-model/1" and data["class_names"] == ["circle", "square", "triangle"]
    assert data["normalize"] == {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    rebuilt = build_model(data["architecture"], len(data["class_names"]), data["options"]).eval()
    rebuilt.load_state_dict(data["state_dict"])
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x))
    assert weights_from_file(path).keys() == model.state_dict().keys()


DETECTION_ENTRIES = list_models("object_detection") + list_models("instance_segmentation")


@pytest.mark.parametrize("entry", DETECTION_ENTRIES, ids=[e.name for e in DETECTION_ENTRIES])
def test_every_detection_entry_builds_trains_and_detects(entry: object) -> None:
    """A training step gives the detector's losses; evaluation gives boxes (and masks) in input pixels."""
    from backend.specs.catalog import CatalogEntry

    assert isinstance(entry, CatalogEntry)
    assert entry.name in list_buildable(None)
    names = {o.name for o in entry.options}
    small = {"min_size": 64, "max_size": 96, "rpn_proposals_train": 50, "rpn_proposals_test": 20}
    options = {k: v for k, v in small.items() if k in names}
    if "detections_per_image" in names:
        options["detections_per_image"] = 5
    model = build_model(entry.name, 2, options)
    torch.manual_seed(0)
    images = [torch.rand(3, 64, 80), torch.rand(3, 72, 64)]
    targets = [
        {
            "boxes": torch.tensor([[5.0, 6.0, 40.0, 50.0]]),
            "labels": torch.tensor([2]),
            "masks": torch.zeros(1, 64, 80, dtype=torch.uint8),
        },
        {  # a negative image: no objects
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.int64),
            "masks": torch.zeros(0, 72, 64, dtype=torch.uint8),
        },
    ]
    losses = model(images, targets)
    total = sum(losses.values())
    assert torch.isfinite(total) and total.requires_grad
    if entry.task == "instance_segmentation":
        assert "loss_mask" in losses
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for det, image in zip(out, images, strict=True):
        assert det["boxes"].shape[1:] == (4,) and len(det["boxes"]) <= 5
        assert (det["labels"] >= 1).all() and (det["labels"] <= 2).all()
        if len(det["boxes"]):
            assert float(det["boxes"][:, 2].max()) <= image.shape[-1] + 1e-3
        if entry.task == "instance_segmentation":
            assert det["masks"].shape[1:] == (1, *image.shape[-2:])
    # load_from with other classes: the class-dependent heads are re-initialised, the rest loads
    other = build_model(entry.name, 4, options)
    missing, unexpected = load_weights(other, model.state_dict())
    assert missing and not unexpected


@pytest.mark.parametrize(
    ("architecture", "backbone", "prefix"),
    [
        ("fasterrcnn_mobilenet_v3_large_fpn", "mobilenet_v3_large", "features."),
        ("fcos_resnet50_fpn", "resnet50", ""),
    ],
)
def test_pretrained_backbone_comes_from_the_hub_cache(
    architecture: str, backbone: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pretrained`` loads the backbone's ImageNet file from the torch hub cache (here a file this test
    saves under the name torchvision gives it; the tests are offline, so a missing one is an error naming
    the file); heads start afresh."""
    import torchvision
    from torchvision.models import get_weight

    from backend.specs.catalog import get_entry

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    entry = get_entry(architecture)
    assert entry.pretrained_weights
    with pytest.raises(
        FileNotFoundError, match=r"downloads are off \(STUDIO_OFFLINE\): put the file at .*checkpoints"
    ):
        build_model(architecture, 2, pretrained=True)

    torch.manual_seed(7)
    imagenet = getattr(torchvision.models, backbone)(weights=None).state_dict()
    url = get_weight(entry.pretrained_weights).url
    (tmp_path / "checkpoints").mkdir()
    torch.save(imagenet, tmp_path / "checkpoints" / os.path.basename(url))
    model = build_model(architecture, 2, pretrained=True)
    body = model.net.backbone.body.state_dict()
    first = next(k for k in body if k.endswith("weight"))
    assert torch.equal(body[first], imagenet[prefix + first])
    assert all(torch.equal(v, imagenet[prefix + k]) for k, v in body.items() if "num_batches" not in k)
    fresh = build_model(architecture, 2)
    assert not torch.equal(fresh.net.backbone.body.state_dict()[first], imagenet[prefix + first])


def test_weights_are_downloaded_once_into_the_hub_cache_hash_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where downloads are allowed, a weights file missing from the torch hub cache is fetched into it as
    torchvision fetches it (here from a local HTTP server), its name's hash prefix checked; once there it
    is read from the cache even offline. A file whose bytes do not match its name's hash, or a server
    that is not there, is an error naming the file and the folder, and leaves no file behind."""
    import hashlib
    import http.server
    import socket
    import threading

    from worker.zoo import weights_file_state

    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(3)
    state = {"w": torch.randn(4, 3), "b": torch.zeros(4)}
    torch.save(state, served / "plain.pth")
    digest = hashlib.sha256((served / "plain.pth").read_bytes()).hexdigest()
    (served / "plain.pth").rename(served / f"tiny-{digest[:8]}.pth")
    (served / "liar-0123abcd.pth").write_bytes((served / f"tiny-{digest[:8]}.pth").read_bytes())

    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    try:
        got = weights_file_state(f"{base}/tiny-{digest[:8]}.pth", "tiny", offline=False)
        assert set(got) == {"w", "b"} and torch.equal(got["w"], state["w"])
        assert (tmp_path / "hub" / "checkpoints" / f"tiny-{digest[:8]}.pth").is_file()
        again = weights_file_state(f"{base}/tiny-{digest[:8]}.pth", "tiny", offline=True)  # from the cache
        assert torch.equal(again["w"], state["w"])

        with pytest.raises(
            FileNotFoundError, match=r"could not download pretrained weights liar .*liar-0123abcd"
        ):
            weights_file_state(f"{base}/liar-0123abcd.pth", "liar", offline=False)
        assert not (tmp_path / "hub" / "checkpoints" / "liar-0123abcd.pth").exists()
        silent = socket.create_server(("127.0.0.1", 0))  # accepts, then never answers
        monkeypatch.setattr("worker.zoo.DOWNLOAD_TIMEOUT_SECONDS", 0.5)
        with pytest.raises(
            FileNotFoundError, match=r"could not download pretrained weights mute .*timed out"
        ):
            weights_file_state(
                f"http://127.0.0.1:{silent.getsockname()[1]}/mute-0123abcd.pth", "mute", offline=False
            )
        silent.close()
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FileNotFoundError, match=r"could not download pretrained weights gone"):
        weights_file_state(f"{base}/gone-0123abcd.pth", "gone", offline=False)
    with pytest.raises(FileNotFoundError, match=r"downloads are off \(STUDIO_OFFLINE\)"):
        weights_file_state(f"{base}/other-0123abcd.pth", "other", offline=True)
