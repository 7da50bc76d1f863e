"""The inference lane's serving cost, side by side in one run, on Redis and on the embedded broker.

P6  REST predict at batch 1 against the same work in process: median latency of POST
    /api/models/{id}/predict (one 256x256 PNG, ResNet-18 at 224 px) on a `studio up --lanes inference`,
    against decoding the same PNG and ``worker.serving.answer.predict_pictures`` on the model loaded with
    ``worker.models.load_model`` here, with torch on the lane's thread count (STUDIO_INFERENCE_THREADS,
    1 by default). The two alternate request by request, so other work on the machine weighs on both
    alike. Target: on Redis, REST p50 <= in-process p50 + 15 ms.
P7  16 concurrent clients (threads, one httpx client each) sending K predicts each: requests per second
    with micro-batching (default settings) against without (STUDIO_INFERENCE_MAX_BATCH=1), p50 and p95
    latency beside each. Both studios run at once and take turns, round by round, for the same reason.
    Target: at least 2x the throughput with micro-batching.

Each configuration is its own studio (temp dir, SQLite, inference lane only); Redis uses dbs 12 and 13.

    .venv/bin/python benchmarks/serving.py [--requests 50] [--clients 16] [--per-client 4] [--rounds 3]
        [--brokers redis,embedded]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _studio import CpuMeter, Studio, announce, exit_on_sigterm, pct, picture_png, resnet18_file, timed

REDIS = {"batched": "redis://127.0.0.1:6379/13", "unbatched": "redis://127.0.0.1:6379/12"}  # tests: 15
CONFIGS = {"batched": {}, "unbatched": {"STUDIO_INFERENCE_MAX_BATCH": "1"}}
P6_MARGIN_MS = 15.0
P7_TARGET = 2.0


def _flush_redis() -> None:
    import redis

    for url in REDIS.values():
        redis.Redis.from_url(url).flushdb()


def _broker_env(broker: str, config: str) -> dict[str, str]:
    if broker == "redis":
        return {"STUDIO_BROKER_URL": REDIS[config], "STUDIO_REDIS_URL": REDIS[config]}
    return {"STUDIO_BROKER_URL": "", "STUDIO_REDIS_URL": ""}


# ------------------------------------------------------------------------------------------ in process


class Local:
    """The in-process side: the model loaded with ``load_model``, torch on the lane's threads."""

    def __init__(self, model_file: Path, png: bytes, work: Path) -> None:
        import torch
        from PIL import Image

        from backend.settings import Settings
        from worker.models import load_model, preprocess

        self.threads = Settings().inference_threads
        torch.set_num_threads(self.threads)  # this process does nothing else with torch
        self.png, self.model_file, self.work = png, model_file, work
        self.loaded = load_model(model_file)
        picture = Image.open(io.BytesIO(png)).convert("RGB")
        self.x = preprocess(picture, self.loaded.input_size, self.loaded.normalize)
        self.x8 = torch.cat([self.x] * 8)

    def answer(self) -> None:
        """What the lane's batcher runs for one picture, plus decoding the upload."""
        from PIL import Image

        from worker.serving.answer import Picture, predict_pictures

        image = Image.open(io.BytesIO(self.png)).convert("RGB")
        predict_pictures(self.loaded, [Picture(image, 5, False)])

    def forward(self, x: Any) -> Callable[[], None]:
        import torch

        def run() -> None:
            with torch.inference_mode():
                self.loaded.model(x)

        return run

    def lane_handle(self) -> Callable[[], None]:
        """``worker.serving.lane.handle`` on one request, as the inference worker runs a studio.infer
        task (warm cache, the picture read from the requests folder, the batcher, the reply), no Celery.
        Points this process's settings at a folder under ``work`` until a studio's replace them."""
        from backend.models.contract import requests_dir
        from backend.settings import get_settings
        from worker.serving.lane import handle

        os.environ.update({"STUDIO_DATA_DIR": str(self.work / "lane-data"), "STUDIO_DATABASE_URL": ""})
        get_settings.cache_clear()
        name = f"images/{'0' * 32}.png"
        path = requests_dir(get_settings().data_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.png)
        raw = {
            "op": "predict",
            "model_id": 1,
            "checkpoint": str(self.model_file),
            "checkpoint_mtime": self.model_file.stat().st_mtime,
            "images": [name],
            "top_k": 5,
        }

        def run() -> None:
            reply = handle(raw)
            if reply.get("error"):
                raise RuntimeError(f"lane handle: {reply['error']}")

        return run

    def reference(self, n: int) -> dict[str, list[float]]:
        """Alone, before any studio: the answer, the bare forward at batch 1 and 8, the lane's handle()."""
        steps = {
            "answer": (self.answer, n),
            "forward": (self.forward(self.x), n),
            "forward8": (self.forward(self.x8), max(5, n // 4)),
            "handle": (self.lane_handle(), n),
        }
        out: dict[str, list[float]] = {}
        for name, (fn, times) in steps.items():
            for _ in range(3):
                fn()
            out[name] = []
            for _ in range(times):
                started = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - started)
        return out


# ------------------------------------------------------------------------------------------ over REST


def _predict(c: httpx.Client, model_id: int, png: bytes) -> Callable[[], httpx.Response]:
    return lambda: c.post(f"/api/models/{model_id}/predict", files={"image": ("p.png", png, "image/png")})


def warm_up(studio: Studio, model_id: int, png: bytes) -> None:
    """The model into the lane's warm cache and the first forwards' allocations."""
    assert studio.client is not None
    for _ in range(5):
        timed(_predict(studio.client, model_id, png), "application/json")


def paired(studio: Studio, model_id: int, png: bytes, local: Local, n: int) -> dict[str, Any]:
    """``n`` REST predicts and ``n`` in-process answers, alternating."""
    assert studio.client is not None
    predict = _predict(studio.client, model_id, png)
    time.sleep(0.3)  # the warm-up's log lines land before the count below
    before = len(studio.task_seconds())
    meter = CpuMeter(studio.processes)
    rest, here = [], []
    for _ in range(n):
        rest.append(timed(predict, "application/json"))
        started = time.perf_counter()
        local.answer()
        here.append(time.perf_counter() - started)
    cpu = meter.report()
    c = studio.client
    floor = [timed(lambda: c.get(f"/api/models/{model_id}"), "application/json") for _ in range(n)]
    return {"rest": rest, "local": here, "cpu": cpu, "floor": floor, "tasks": task_times(studio, before, n)}


def task_times(studio: Studio, before: int, n: int, timeout: float = 10) -> list[float]:
    """The worker's run times of the ``n`` infer tasks logged after the first ``before``."""
    deadline = time.monotonic() + timeout
    while len(got := studio.task_seconds()[before:]) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def burst(studio: Studio, model_id: int, png: bytes, clients: int, per_client: int) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, sending ``per_client`` predicts one after
    another, all released at once; the wall time is from the release until the last answer."""
    assert studio.client is not None
    base = studio.client
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client_loop() -> None:
        mine: list[float] = []
        try:
            with httpx.Client(
                base_url=str(base.base_url), cookies=base.cookies, headers=dict(base.headers), timeout=120
            ) as c:
                predict = _predict(c, model_id, png)
                timed(predict, "application/json")  # the connection and its first request, not counted
                barrier.wait(timeout=300)
                for _ in range(per_client):
                    mine.append(timed(predict, "application/json"))
        except Exception as exc:
            barrier.abort()
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    while barrier.n_waiting < clients and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the log lines of the clients' first requests land before the count below
    before = len(studio.task_seconds())
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: its error is raised below
        barrier.wait(timeout=300)
    meter = CpuMeter(studio.processes)
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - started
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"{studio.label}: {len(errors)} client(s) failed: {errors[:3]}")
    n = clients * per_client
    return {
        "latencies": latencies,
        "wall": wall,
        "cpu": meter.report(),
        "tasks": task_times(studio, before, n),
    }


def run_broker(
    broker: str, model_file: Path, png: bytes, local: Local, args: argparse.Namespace
) -> dict[str, Any]:
    """Both configurations' studios up at once: P6 on the default one, then P7 round by round."""
    if broker == "redis":
        _flush_redis()
    studios = {
        name: Studio(f"{broker}, {name}", {**_broker_env(broker, name), **env}, lanes="inference")
        for name, env in CONFIGS.items()
    }
    out: dict[str, Any] = {"rounds": {name: [] for name in studios}}
    try:
        models = {}
        for name, studio in studios.items():
            with announce(f"{studio.label}: starting `studio up --lanes inference`"):
                studio.start()
            models[name] = studio.put_model(model_file)
            warm_up(studio, models[name], png)
        with announce(f"{broker}: {args.requests} REST predicts alternating with in-process answers"):
            out["p6"] = paired(studios["batched"], models["batched"], png, local, args.requests)
        for r in range(args.rounds):
            order = list(studios) if r % 2 == 0 else list(studios)[::-1]
            for name in order:
                with announce(f"{broker}: round {r + 1}, {name}: {args.clients} x {args.per_client}"):
                    got = burst(studios[name], models[name], png, args.clients, args.per_client)
                    out["rounds"][name].append(got)
    except Exception:
        for studio in studios.values():
            print(f"--- {studio.label}: studio log (tail) ---\n{studio.log_tail()}", file=sys.stderr)
        raise
    finally:
        for studio in studios.values():
            with announce(f"{studio.label}: stopping the studio"):
                studio.stop()
        if broker == "redis":
            _flush_redis()
    return out


# -------------------------------------------------------------------------------------------- report


def _ms(values: list[float], q: float = 50) -> float:
    return (statistics.median(values) if q == 50 else pct(values, q)) * 1000


def _p50_col(values: list[float], width: int) -> str:
    return f"{_ms(values):>{width}.1f}" if values else f"{'n/a':>{width}}"


def report(
    local_ref: dict[str, list[float]], threads: int, results: dict[str, Any], args: argparse.Namespace
) -> None:
    ans, fwd, fwd8, hdl = (local_ref[k] for k in ("answer", "forward", "forward8", "handle"))
    print(f"P6: predict at batch 1, ResNet-18 at 224 px, one 256x256 PNG, {args.requests} requests")
    print(
        f"    in process alone ({threads} torch thread): decode + predict_pictures p50 {_ms(ans):.1f} ms, "
        f"bare forward {_ms(fwd):.1f} ms, the lane's handle() (no Celery) {_ms(hdl):.1f} ms"
    )
    one, eight = statistics.median(fwd), statistics.median(fwd8) / 8
    print(
        f"    forward per image at batch 8: {eight * 1000:.1f} ms "
        f"({one / eight:.2f}x the batch-1 throughput: what batching can add to the forward itself "
        f"on {threads} thread)"
    )
    print(
        f"    {'broker':<10}{'REST p50':>10}{'p95':>8}{'in-process':>12}{'REST - in':>11}{'target':>12}"
        f"{'worker task':>13}{'API floor':>11}{'others':>8}"
    )
    for broker, res in results.items():
        p6 = res["p6"]
        rest, here = _ms(p6["rest"]), _ms(p6["local"])
        target = f"<= +{P6_MARGIN_MS:.0f} ms" if broker == "redis" else ""
        print(
            f"    {broker:<10}{rest:>10.1f}{_ms(p6['rest'], 95):>8.1f}{here:>12.1f}{rest - here:>+11.1f}"
            f"{target:>12}{_p50_col(p6['tasks'], 13)}{_ms(p6['floor']):>11.1f}{p6['cpu'][1]:>7.0f}%"
        )
    print(
        "    (ms; in-process: decode + predict_pictures, alternating with the REST requests; worker task: "
        "run time of studio.infer in the worker, from its log; API floor: GET /api/models/{id}; others: "
        "CPU of all cores used outside the studio and this script)"
    )
    if "redis" in results:
        p6 = results["redis"]["p6"]
        diff = _ms(p6["rest"]) - _ms(p6["local"])
        verdict = "met" if diff <= P6_MARGIN_MS else "missed"
        print(
            f"    P6 target (Redis REST p50 <= in-process p50 + {P6_MARGIN_MS:.0f} ms): {verdict} "
            f"({diff:+.1f} ms)"
        )

    total = args.clients * args.per_client * args.rounds
    print()
    print(
        f"P7: {args.clients} concurrent clients x {args.per_client} predicts, {args.rounds} rounds taken in "
        f"turn ({total} requests per configuration); micro-batching on (defaults) vs off (MAX_BATCH=1)"
    )
    print(
        f"    {'broker, batching':<22}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'task p50':>10}{'CPU':>6}"
        f"{'others':>8}  req/s by round"
    )
    for broker, res in results.items():
        for name, rounds in res["rounds"].items():
            lat = [v for r in rounds for v in r["latencies"]]
            tasks = [v for r in rounds for v in r["tasks"]]
            wall = sum(r["wall"] for r in rounds)
            cpu = sum(r["cpu"][0] * r["wall"] for r in rounds) / wall
            others = sum(r["cpu"][1] * r["wall"] for r in rounds) / wall
            per_round = ", ".join(f"{len(r['latencies']) / r['wall']:.1f}" for r in rounds)
            print(
                f"    {broker + ', ' + name:<22}{len(lat) / wall:>8.1f}{_ms(lat):>9.0f}{_ms(lat, 95):>9.0f}"
                f"{_p50_col(tasks, 10)}{cpu:>5.0f}%{others:>7.0f}%  {per_round}"
            )
    for broker, res in results.items():
        rps = {}
        for name, rounds in res["rounds"].items():
            rps[name] = sum(len(r["latencies"]) for r in rounds) / sum(r["wall"] for r in rounds)
        ratio = rps["batched"] / rps["unbatched"]
        verdict = "met" if ratio >= P7_TARGET else "missed"
        print(
            f"    {broker}: throughput with / without micro-batching {ratio:.2f}x "
            f"(target >= {P7_TARGET:.0f}x): {verdict}"
        )
    print(
        "    (task p50: run time of studio.infer in the worker, its wait for a batch included; CPU: of all "
        "cores, during the bursts; others: used outside the studio and this script)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50, help="P6: requests each way, after a warm-up")
    parser.add_argument("--clients", type=int, default=16, help="P7: concurrent clients")
    parser.add_argument("--per-client", type=int, default=4, help="P7: predicts each client sends a round")
    parser.add_argument("--rounds", type=int, default=3, help="P7: rounds, the configurations in turn")
    parser.add_argument("--brokers", default="redis,embedded", help="Comma-separated: redis, embedded")
    args = parser.parse_args()
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    for b in brokers:
        if b not in ("redis", "embedded"):
            parser.error(f"unknown broker {b!r}; choose from redis, embedded")
    exit_on_sigterm()
    t0 = time.monotonic()
    png = picture_png()

    with tempfile.TemporaryDirectory(prefix="studio-bench-serving-") as work_dir:
        model_file = resnet18_file(Path(work_dir) / "resnet18.pt")
        local = Local(model_file, png, Path(work_dir))
        with announce(f"in process, alone: {args.requests} answers, forwards and lane handles"):
            local_ref = local.reference(args.requests)
        results = {b: run_broker(b, model_file, png, local, args) for b in brokers}

    report(local_ref, local.threads, results, args)
    print(f"(benchmark took {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
