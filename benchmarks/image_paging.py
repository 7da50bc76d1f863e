"""The image grid's pages at 10,000 images against the same pages at 100: a page (60 thumbnails' records,
optionally filtered by split and class) is answered by the API in time that does not grow with the
dataset beyond reading its cached summaries. Prints the median latency of each and their ratio
(target: at most 3x for 100x the images), through the real app and database.

    .venv/bin/python benchmarks/image_paging.py [--images 10000] [--pages 50]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient


def _dataset(owner_id: int, n: int, data_dir: Path) -> int:
    from backend.datasets.canonical import Annotation, CanonicalDataset, ImageRecord
    from backend.db.session import session_scope
    from backend.db.tables import Dataset

    classes = ["circle", "square", "triangle"]
    rng = random.Random(n)
    images, annotations = [], []
    for i in range(1, n + 1):
        split = rng.choice(["train", "train", "train", "val", "test"])
        images.append(
            ImageRecord(
                id=i, file_name=f"images/{i:06d}.jpg", source=f"{i}.jpg", width=64, height=48, split=split
            )
        )
        for _ in range(rng.randint(1, 3)):
            cat = rng.randint(1, 3)
            annotations.append(
                Annotation(
                    id=len(annotations) + 1,
                    image_id=i,
                    category_id=cat,
                    shape_type="rectangle",
                    points=[[1, 1], [10, 10]],
                    bbox=[1, 1, 9, 9],
                    area=81,
                )
            )
    canonical = CanonicalDataset(
        classes=classes, tasks=["object_detection"], images=images, annotations=annotations
    )
    with session_scope() as s:
        row = Dataset(
            owner_id=owner_id, name=f"d{n}", status="ready", classes=classes, tasks=["object_detection"]
        )
        s.add(row)
        s.flush()
        folder = data_dir / "datasets" / str(row.id)
        folder.mkdir(parents=True)
        canonical.save(folder)
        row.path = str(folder)
        return int(row.id)


def _pages(client: TestClient, dataset_id: int, n: int, pages: int) -> list[float]:
    rng = random.Random(0)
    times: list[float] = []
    for i in range(pages + 3):  # the first requests fill the summary cache and are not counted
        params: dict[str, str | int] = {"page": rng.randint(1, max(1, n * 3 // 10 // 60)), "page_size": 60}
        if i % 2:
            params.update({"split": "train", "class": "circle"})
        started = time.perf_counter()
        r = client.get(f"/api/datasets/{dataset_id}/images", params=params)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200 and r.json()["images"], r.text
        if i >= 3:
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="studio-paging-"))
    os.environ.update({"STUDIO_DATA_DIR": str(data), "STUDIO_DATABASE_URL": "", "STUDIO_REDIS_URL": ""})
    from backend.app import create_app
    from backend.db.migrate import upgrade
    from backend.settings import get_settings

    get_settings.cache_clear()
    upgrade()
    client = TestClient(create_app())
    r = client.post("/api/auth/register", json={"email": "bench@example.com", "password": "benchmark-pass"})
    assert r.status_code in (200, 201), r.text
    owner = int(client.get("/api/auth/me").json()["id"])
    small = _dataset(owner, 100, data)
    large = _dataset(owner, args.images, data)
    t_small = statistics.median(_pages(client, small, 100, args.pages))
    t_large = statistics.median(_pages(client, large, args.images, args.pages))
    print(f"{'images':>8} {'median page (ms)':>18}")
    print(f"{100:>8} {t_small * 1000:>18.2f}")
    print(f"{args.images:>8} {t_large * 1000:>18.2f}")
    print(f"\n{args.images} vs 100 images: {t_large / t_small:.2f}x per page (target <= 3x)")


if __name__ == "__main__":
    main()
