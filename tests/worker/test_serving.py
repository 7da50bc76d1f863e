"""The inference lane: warm models bounded by memory and loaded once, micro-batching that answers what
one-by-one answers, and predict / batch / CAM through a real inference worker on both brokers."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import sign_up
from tests.worker.test_inference import CLASSES, picture, save_tiny
from worker.models import load_model
from worker.serving.answer import Picture, predict_pictures
from worker.serving.batcher import Batcher
from worker.serving.cache import ModelCache, model_bytes


def test_a_model_asked_for_at_once_by_many_is_loaded_once(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_tiny(path)
    started = threading.Barrier(8)

    def slow_load(p: Path) -> Any:
        time.sleep(0.3)  # every caller arrives while the first load is still reading
        return load_model(p)

    cache = ModelCache(1 << 30, loader=slow_load)

    def ask(_: int) -> Any:
        started.wait()
        return cache.get(7, path)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, range(8)))
    assert cache.loads == 1 and all(g is got[0] for g in got)


def test_the_memory_cap_drops_the_least_recently_used_model(tmp_path: Path) -> None:
    paths = [tmp_path / f"m{i}.pt" for i in range(3)]
    for i, p in enumerate(paths):
        save_tiny(p, seed=i)
    one = model_bytes(load_model(paths[0]).model)
    cache = ModelCache(int(2.5 * one))  # room for two
    cache.get(0, paths[0])
    cache.get(1, paths[1])
    cache.get(0, paths[0])  # 0 is now the most recently used
    cache.get(2, paths[2])
    assert cache.ids() == [0, 2] and cache.evictions == 1 and cache.held_bytes() <= 2.5 * one
    tiny = ModelCache(1)  # smaller than any model: the one asked for stays, alone
    tiny.get(0, paths[0])
    tiny.get(1, paths[1])
    assert tiny.ids() == [1]


def test_the_batcher_groups_concurrent_requests_of_one_key_and_keeps_order() -> None:
    seen: list[tuple[str, list[int]]] = []

    def run(key: Any, payloads: list[Any]) -> list[Any]:
        seen.append((key, list(payloads)))
        if -1 in payloads:
            raise ValueError("bad payload")
        return [p * 10 for p in payloads]

    batcher = Batcher(run, max_batch=4, max_wait=0.2)
    futures = [batcher.submit("a", i) for i in range(6)] + [batcher.submit("b", 100)]
    assert [f.result(5) for f in futures] == [0, 10, 20, 30, 40, 50, 1000]
    assert [(k, len(p)) for k, p in seen] == [("a", 4), ("a", 2), ("b", 1)]
    bad = [batcher.submit("c", 1), batcher.submit("c", -1)]
    for f in bad:
        with pytest.raises(ValueError, match="bad payload"):
            f.result(5)
    assert batcher.submit("d", 2, max_batch=1).result(5) == 20  # the loop survived the error


def test_micro_batched_answers_equal_one_by_one_answers(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_tiny(path)
    loaded = load_model(path)
    pictures = [Picture(picture(50 + 3 * i, 40 + i, seed=i), 3, False) for i in range(6)]
    together = predict_pictures(loaded, pictures)
    alone = [predict_pictures(loaded, [p])[0] for p in pictures]
    for a, b in zip(together, alone, strict=True):
        assert [c["name"] for c in a["top_k"]] == [c["name"] for c in b["top_k"]]
        for x, y in zip(a["top_k"], b["top_k"], strict=True):
            assert abs(x["score"] - y["score"]) < 1e-5


# --------------------------------------------------------------------------- through a real worker


def _png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    picture(50, 40, seed=seed).save(buf, format="PNG")
    return buf.getvalue()


def _ready_model(client: TestClient, tmp_path: Path, worker: Any) -> int:
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel
    from backend.models.contract import model_dir
    from backend.settings import get_settings

    me = client.get("/api/auth/me").json()["id"]
    with session_scope() as s:
        row = TrainedModel(
            owner_id=me, name="tiny", task="classification", architecture="tiny_cnn",
            class_names=CLASSES, status="ready", input_size=32,
        )  # fmt: skip
        s.add(row)
        s.flush()
        model_id = int(row.id)
        path = model_dir(get_settings().data_dir, model_id) / "model.pt"
        save_tiny(path)
        row.checkpoint_path = str(path)
    return model_id


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_predict_batch_and_cam_through_the_inference_lane(
    full_stack: Any, client: TestClient, start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker(full_stack, "inference", pool="threads")
    sign_up(client)
    model_id = _ready_model(client, tmp_path, worker)
    loaded = load_model(_checkpoint(model_id))

    one = client.post(
        f"/api/models/{model_id}/predict", files={"image": ("a.png", _png())}, params={"top_k": 2}
    )
    assert one.status_code == 200, one.text + worker.output()[-3000:]
    expected = predict_pictures(loaded, [Picture(Image.open(io.BytesIO(_png())).convert("RGB"), 2, False)])[0]
    assert [c["name"] for c in one.json()["top_k"]] == [c["name"] for c in expected["top_k"]]
    assert abs(one.json()["top_k"][0]["score"] - expected["top_k"][0]["score"]) < 1e-5
    assert client.get("/api/jobs").json() == []  # a picture is not a job

    png = client.post(
        f"/api/models/{model_id}/predict", files={"image": ("a.png", _png())}, params={"overlay": 1}
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (50, 40)

    files = [("images", (f"p{i}.png", _png(i), "image/png")) for i in range(5)]
    batch = client.post(f"/api/models/{model_id}/predict/batch", files=files, params={"top_k": 3})
    assert batch.status_code == 200, batch.text
    singles = [
        client.post(
            f"/api/models/{model_id}/predict", files={"image": ("x.png", _png(i))}, params={"top_k": 3}
        )
        for i in range(5)
    ]
    for got, single in zip(batch.json()["answers"], singles, strict=True):
        assert [c["name"] for c in got["top_k"]] == [c["name"] for c in single.json()["top_k"]]
        assert abs(got["top_k"][0]["score"] - single.json()["top_k"][0]["score"]) < 1e-5

    # 16 clients at once: every answer is the one-by-one answer.
    def ask(i: int) -> Any:
        return client.post(f"/api/models/{model_id}/predict", files={"image": ("c.png", _png(i % 5))}).json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(16)))
    for i, a in enumerate(answers):
        assert a["top_k"][0]["name"] == singles[i % 5].json()["top_k"][0]["name"], a

    cam = client.post(
        f"/api/models/{model_id}/cam", files={"image": ("a.png", _png())}, data={"target_class": "circle"}
    )
    assert cam.status_code == 200 and cam.headers["content-type"] == "image/png", cam.text
    assert cam.headers["x-cam-target-class"] == "circle" and cam.headers["x-cam-target-layer"] == "features.4"
    bad_layer = client.post(
        f"/api/models/{model_id}/cam", files={"image": ("a.png", _png())}, data={"target_layer": "nowhere.7"}
    )
    assert bad_layer.status_code == 422 and "nowhere" in bad_layer.json()["detail"], bad_layer.text

    # A batch with one corrupt image names it by index; one over the cap is refused; nothing is kept.
    broken = [*files[:2], ("images", ("broken.png", _png()[:40], "image/png"))]
    r = client.post(f"/api/models/{model_id}/predict/batch", files=broken)
    assert r.status_code == 422 and r.json()["index"] == 2 and "broken.png" in r.json()["detail"], r.text
    too_many = [("images", (f"p{i}.png", _png(), "image/png")) for i in range(17)]
    r = client.post(f"/api/models/{model_id}/predict/batch", files=too_many)
    assert r.status_code == 413 and "17" in r.json()["detail"], r.text

    # The weights deleted under a ready model: a 410 naming it, and the worker lives on.
    Path(_checkpoint(model_id)).unlink()
    r = client.post(f"/api/models/{model_id}/predict", files={"image": ("a.png", _png())})
    assert r.status_code == 410 and f"model {model_id}" in r.json()["detail"]
    assert worker.proc.poll() is None

    from backend.models.contract import requests_dir
    from backend.settings import get_settings

    assert not [p for p in requests_dir(get_settings().data_dir).rglob("*.*") if p.is_file()]


def _checkpoint(model_id: int) -> str:
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel

    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        assert row is not None and row.checkpoint_path
        return row.checkpoint_path


def test_torch_takes_the_lane_thread_count_from_the_environment() -> None:
    """The supervisor sets OMP_NUM_THREADS per lane; torch reads it at import in the worker process."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"
    assert torch.get_num_threads() >= 1
