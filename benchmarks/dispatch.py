"""Enqueue-to-running latency of jobs, per broker, side by side in one run.

For each broker a real ``studio worker`` process is started on a fresh data dir; one-step probe jobs are
created one after another through the studio's own job service, and the time from the job row's
``created_at`` to its ``started_at`` (the worker's lease) is measured.

    .venv/bin/python benchmarks/dispatch.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name: (broker URL, seconds between polls of a broker that polls)
BROKERS = {
    "filesystem, 0.1 s poll": ("filesystem://", "0.1"),
    "filesystem, 1 s poll": ("filesystem://", "1.0"),
    "sqlalchemy, 1 s poll": ("sqla+sqlite:///{data}/broker.db", ""),
    "redis": ("redis://127.0.0.1:6379/14", ""),
}


def _env(data: Path, broker: str, polling: str) -> dict[str, str]:
    return {
        "STUDIO_BROKER_POLLING_SECONDS": polling or "0.1",
        "STUDIO_DATA_DIR": str(data),
        "STUDIO_DATABASE_URL": "",
        "STUDIO_BROKER_URL": broker.format(data=data),
        "STUDIO_REDIS_URL": "",
        "STUDIO_CANARY_INTERVAL_SECONDS": "3600",
    }


def measure(name: str, broker: str, polling: str, jobs: int) -> list[float]:
    from backend.auth.service import create_user
    from backend.db.migrate import upgrade
    from backend.db.session import session_factory, session_scope
    from backend.db.tables import Job
    from backend.jobs.service import create_job
    from backend.settings import get_settings

    data = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ.update(_env(data, broker, polling))
    get_settings.cache_clear()
    upgrade()
    if broker.startswith("redis"):
        import redis

        redis.Redis.from_url(broker).flushdb()
    with session_scope() as s:
        user = create_user(s, "bench@example.com", "benchmark")
    log = (data / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker", "--queues", "light", "--loglevel", "WARNING"],
        env={**os.environ},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    latencies: list[float] = []
    try:
        for i in range(jobs + 3):  # the first three warm the worker up and are not counted
            with session_factory()() as s:  # create_job commits, then enqueues
                job_id = create_job(s, user, "probe", {"steps": 1, "step_seconds": 0}).id
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with session_scope() as s:
                    job = s.get(Job, job_id)
                    assert job is not None
                    if job.finished_at is not None and job.started_at is not None:
                        if i >= 3:
                            latencies.append((job.started_at - job.created_at).total_seconds() * 1000)
                        break
                time.sleep(0.005)
            else:
                raise RuntimeError(f"{name}: job {job_id} did not finish; see {data / 'worker.log'}")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    results = {name: measure(name, url, poll, args.jobs) for name, (url, poll) in BROKERS.items()}
    base = statistics.median(results["redis"])
    print(f"enqueue-to-running latency, {args.jobs} one-step probe jobs per broker, one worker (solo pool)")
    print(f"{'broker':<24}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'p50 / redis':>14}")
    for name, values in results.items():
        p50 = statistics.median(values)
        print(f"{name:<24}{p50:>10.1f}{pct(values, 95):>10.1f}{max(values):>10.1f}{p50 / base:>13.2f}x")


if __name__ == "__main__":
    main()
