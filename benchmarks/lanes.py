"""The light and inference lanes beside a busy training lane: what a user waits for while a CPU training
run takes the machine, against the same on the idle studio, side by side in one run.

One `studio up` (every lane, embedded broker, SQLite, in a temp dir) is measured twice: idle, then while
a ResNet-18 training job runs on the training lane (CPU). Each time:
  import   a 100-image labelme project: from the upload's first byte until the dataset is ready
  predict  one 256x256 picture through a ResNet-18 (224 px) on the inference lane, median of N
  cam      a Grad-CAM of one picture, as PNG, median of N
Target: each busy/idle ratio <= 1.5x (on two cores; see backend/supervisor.py for the thread budget).

    .venv/bin/python benchmarks/lanes.py [--predicts 30] [--cams 15] [--imports 5] [--broker redis]

With ``--broker redis`` the studio runs on Redis (db 11) instead. On the embedded broker a predict's
latency comes in steps (the worker polls the queue every 0.1 s, the API reads the result file up to 50 ms
apart), so its median can jump a step either way and hide, or fake, the effect of the training run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _studio import (
    CpuMeter,
    Studio,
    announce,
    exit_on_sigterm,
    pct,
    picture_png,
    resnet18_file,
    timed,
    wait_for,
)

TARGET = 1.5
REDIS_URL = "redis://127.0.0.1:6379/11"  # with --broker redis; the tests use 15, the other benchmarks 12-14
TERMINAL = ("succeeded", "failed", "cancelled")


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _upload(studio: Studio, archive: Path, name: str) -> int:
    assert studio.client is not None
    r = studio.client.post(
        "/api/datasets", files={"file": (archive.name, archive.read_bytes())}, data={"name": name}
    )
    if r.status_code not in (201, 202):
        raise RuntimeError(f"upload {name}: {r.status_code} {r.text[:500]}")
    return int(r.json()["dataset"]["id"])


def _ready(studio: Studio, dataset_id: int, timeout: float = 300) -> dict[str, Any]:
    assert studio.client is not None
    c = studio.client
    ds = wait_for(
        f"dataset {dataset_id} to be imported",
        lambda: (d := c.get(f"/api/datasets/{dataset_id}").json())["status"] != "importing" and d,
        timeout,
        0.05,
    )
    if ds["status"] != "ready":
        raise RuntimeError(f"dataset {dataset_id}: {ds['status']}: {ds.get('report')}")
    return ds  # type: ignore[no-any-return]


def _quiet(studio: Studio, timeout: float = 120) -> None:
    """Wait until no light-lane job is queued or running (an import's follow-ups included)."""
    assert studio.client is not None
    c = studio.client

    def quiet() -> bool:
        jobs = c.get("/api/jobs", params={"limit": 50}).json()
        return not any(j["queue"] != "training" and j["status"] in ("queued", "running") for j in jobs)

    wait_for("the light lane to be quiet", quiet, timeout, 0.2)


def measure(
    studio: Studio, model_id: int, project: Path, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    assert studio.client is not None
    c = studio.client
    png = picture_png()
    out: dict[str, list[float]] = {"import": [], "predict": [], "cam": []}
    meter = CpuMeter(studio.processes)

    def predict() -> Any:
        return c.post(f"/api/models/{model_id}/predict", files={"image": ("p.png", png, "image/png")})

    def cam() -> Any:
        return c.post(f"/api/models/{model_id}/cam", files={"image": ("p.png", png, "image/png")})

    with announce(f"{tag}: {args.predicts} predicts"):
        for _ in range(3):  # warm-up: the model into the lane's cache, the first forward's allocations
            timed(predict, "application/json")
        out["predict"] = [timed(predict, "application/json") for _ in range(args.predicts)]
    with announce(f"{tag}: {args.cams} CAMs"):
        for _ in range(2):
            timed(cam, "image/png")
        out["cam"] = [timed(cam, "image/png") for _ in range(args.cams)]
    with announce(f"{tag}: {args.imports} imports of a 100-image labelme project"):
        for i in range(args.imports):
            _quiet(studio)
            started = time.perf_counter()
            dataset_id = _upload(studio, project, f"{tag}-{i}")
            ds = _ready(studio, dataset_id)
            out["import"].append(time.perf_counter() - started)
            if ds["stats"].get("images", 100) != 100:
                raise RuntimeError(f"dataset {dataset_id} has {ds['stats']} (100 images expected)")
    return {"times": out, "cpu": meter.report()}


def start_training(studio: Studio, dataset_id: int) -> int:
    assert studio.client is not None
    c = studio.client
    config = {
        "model": {"architecture": "resnet18"},
        "data": {"dataset_id": dataset_id, "input_size": 224, "batch_size": 16},
        "schedule": {"epochs": 1000},
        # Evaluate and checkpoint rarely: the run is there to keep the CPU busy with training steps.
        "runtime": {"device": "cpu", "eval_interval": 500, "checkpoint_interval": 500, "log_interval": 1},
    }
    r = c.post("/api/jobs", json={"kind": "train", "config": config})
    if r.status_code != 201:
        raise RuntimeError(f"train job: {r.status_code} {r.text[:800]}")
    job_id = int(r.json()["id"])

    def stepping() -> bool:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            raise RuntimeError(f"training job {job_id} ended before the busy phase: {job}")
        if job["status"] != "running":
            return False
        return bool(c.get(f"/api/jobs/{job_id}/metrics").json())

    with announce(f"training job {job_id}: waiting for its first logged steps"):
        wait_for(f"training job {job_id} to log its first steps", stepping, 300, 0.5)
    return job_id


def stop_training(studio: Studio, job_id: int) -> str:
    assert studio.client is not None
    c = studio.client
    c.post(f"/api/jobs/{job_id}/cancel")
    try:
        job = wait_for(
            f"training job {job_id} to stop",
            lambda: (j := c.get(f"/api/jobs/{job_id}").json())["status"] in TERMINAL and j,
            60,
            0.5,
        )
        return str(job["status"])
    except TimeoutError:
        return "still running 60 s after cancel"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predicts", type=int, default=30)
    parser.add_argument("--cams", type=int, default=15)
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--broker", choices=["embedded", "redis"], default="embedded")
    args = parser.parse_args()
    exit_on_sigterm()
    t0 = time.monotonic()

    from tests.datasets.synth import make_image_folder, make_labelme_project, zip_folder

    with tempfile.TemporaryDirectory(prefix="studio-bench-lanes-") as work_dir:
        work = Path(work_dir)
        make_labelme_project(work / "labelme", n_images=100)
        project = zip_folder(work / "labelme", work / "labelme100.zip")
        make_image_folder(work / "folders", per_class=40, size=(96, 96))
        train_zip = zip_folder(work / "folders", work / "train.zip")
        model_file = resnet18_file(work / "resnet18.pt")

        env = (
            {"STUDIO_BROKER_URL": REDIS_URL, "STUDIO_REDIS_URL": REDIS_URL} if args.broker == "redis" else {}
        )
        if env:
            _flush_redis()
        studio = Studio("lanes", env)
        try:
            with announce(f"starting the studio (every lane, {args.broker} broker, SQLite)"):
                studio.start()
            model_id = studio.put_model(model_file)
            with announce("importing the training set (120 images, 3 class folders)"):
                train_set = _ready(studio, _upload(studio, train_zip, "train-set"))["id"]
            _quiet(studio)
            idle = measure(studio, model_id, project, args, "idle")
            job_id = start_training(studio, int(train_set))
            busy = measure(studio, model_id, project, args, "busy")
            job = studio.client.get(f"/api/jobs/{job_id}").json()  # type: ignore[union-attr]
            still_running = job["status"] == "running"
            ended = stop_training(studio, job_id)
        except Exception:
            print(f"--- studio log (tail) ---\n{studio.log_tail()}", file=sys.stderr)
            raise
        finally:
            with announce("stopping the studio"):
                studio.stop()
            if env:
                _flush_redis()

    print(f"lanes beside a CPU training run: one `studio up` ({args.broker} broker, SQLite), idle then busy")
    print(
        f"machine CPU use (of all cores): idle phase {idle['cpu'][0]:.0f}% ({idle['cpu'][1]:.0f}% by other "
        f"work), busy phase {busy['cpu'][0]:.0f}% ({busy['cpu'][1]:.0f}% by other work)"
    )
    print(f"{'':<30}{'idle':>10}{'busy':>10}{'busy/idle':>11}{'target':>9}")

    def median(v: list[float]) -> float:
        return statistics.median(v)

    def p95(v: list[float]) -> float:
        return pct(v, 95)

    rows: list[tuple[str, str, str, float, Callable[[list[float]], float]]] = [
        ("import, 100 labelme images", "import", "s", 1.0, median),
        (f"predict, median of {args.predicts}", "predict", "ms", 1000.0, median),
        ("predict, p95", "predict", "ms", 1000.0, p95),
        (f"cam, median of {args.cams}", "cam", "ms", 1000.0, median),
        ("cam, p95", "cam", "ms", 1000.0, p95),
    ]
    verdicts = []
    for label, key, unit, scale, stat in rows:
        a, b = stat(idle["times"][key]) * scale, stat(busy["times"][key]) * scale
        ratio = b / a
        gated = "p95" not in label
        target = f"<= {TARGET}x" if gated else ""
        if gated:
            verdicts.append((key, ratio <= TARGET))
        fmt = ".2f" if unit == "s" else ".1f"
        print(f"{label + ' (' + unit + ')':<30}{a:>10{fmt}}{b:>10{fmt}}{ratio:>10.2f}x{target:>9}")
    if args.imports > 1:
        idle_i = ", ".join(f"{v:.2f}" for v in idle["times"]["import"])
        busy_i = ", ".join(f"{v:.2f}" for v in busy["times"]["import"])
        print(f"imports one by one (s): idle {idle_i}; busy {busy_i}")
    print(
        f"training job {job_id}: {'running' if still_running else job['status']} through the busy phase; "
        f"after cancel: {ended}"
    )
    met = [k for k, ok in verdicts if ok]
    missed = [k for k, ok in verdicts if not ok]
    print(f"within target: {', '.join(met) or 'none'}; over target: {', '.join(missed) or 'none'}")
    print(f"(benchmark took {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
