"""Overlays and cached thumbnails: colour lands where the shapes are, and nowhere else."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.datasets.canonical import Annotation, CanonicalDataset, ImageRecord, ShapeType, Task
from backend.datasets.rasterize import mask_bbox, shape_mask
from backend.datasets.render import render_overlay, thumbnail

GREY = (128, 128, 128)
W, H = 120, 80


def ann(
    ann_id: int, cat: int, shape_type: str, points: list[list[float]], ignore: bool = False
) -> Annotation:
    mask = shape_mask(H, W, shape_type, points)
    return Annotation(
        id=ann_id,
        image_id=1,
        category_id=0 if ignore else cat,
        shape_type=ShapeType(shape_type),
        points=points,
        bbox=mask_bbox(mask),
        area=float(mask.sum()),
        ignore=ignore,
    )


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, CanonicalDataset]:
    ds_dir = tmp_path / "ds"
    (ds_dir / "images").mkdir(parents=True)
    Image.new("RGB", (W, H), GREY).save(ds_dir / "images" / "000001.png")
    Image.new("RGB", (W, H), GREY).save(ds_dir / "images" / "000002.png")
    anns = [
        ann(1, 1, "rectangle", [[20, 20], [50, 50]]),
        ann(2, 2, "point", [[100, 10]]),
        ann(3, 2, "line", [[70, 70], [110, 70]]),
        ann(4, 0, "rectangle", [[0, 60], [10, 79]], ignore=True),
    ]
    images = [
        ImageRecord(id=1, file_name="images/000001.png", source="one.png", width=W, height=H),
        ImageRecord(id=2, file_name="images/000002.png", source="two.png", width=W, height=H),
    ]
    # A class name that is not Latin and looks like markup: drawn as text, never interpreted.
    ds = CanonicalDataset(
        classes=["猫 {0} %s", "wire"], tasks=[Task.semantic_segmentation], images=images, annotations=anns
    )
    return ds_dir, ds


def test_overlay_colours_the_shapes_only(scene: tuple[Path, CanonicalDataset]) -> None:
    ds_dir, ds = scene
    img = render_overlay(ds_dir, ds, 1)
    assert img.size == (W, H) and img.mode == "RGB"
    px = np.asarray(img).astype(int)
    # Inside the rectangle: grey blended with class 1's VOC red (128, 0, 0).
    r, g, b = px[35, 35]
    assert r > g + 20 and abs(g - b) <= 2
    # Background far from any shape is untouched.
    assert px[5, 60].tolist() == list(GREY)
    # The point (radius 5) and the 10-pixel line are visible in class 2's green.
    for y, x in ((10, 100), (70, 90)):
        r, g, b = px[y, x]
        assert g > r + 20 and g > b + 20
    # The ignore region is tinted too (VOC colour 255), so the user sees it.
    assert px[70, 5].tolist() != list(GREY)
    # The rectangle's outline is drawn in full colour.
    assert px[35, 20].tolist() == [128, 0, 0]


def test_overlay_without_labels_is_the_image(scene: tuple[Path, CanonicalDataset]) -> None:
    ds_dir, ds = scene
    assert (np.asarray(render_overlay(ds_dir, ds, 2)) == np.array(GREY)).all()


def test_overlay_scales_down_to_max_size(scene: tuple[Path, CanonicalDataset]) -> None:
    ds_dir, ds = scene
    img = render_overlay(ds_dir, ds, 1, max_size=60)
    assert img.size == (60, 40)
    r, g, _ = np.asarray(img).astype(int)[17, 17]
    assert r > g + 20


def test_unknown_image_is_a_key_error(scene: tuple[Path, CanonicalDataset]) -> None:
    ds_dir, ds = scene
    with pytest.raises(KeyError):
        render_overlay(ds_dir, ds, 99)


def test_thumbnail_is_a_cached_jpeg(scene: tuple[Path, CanonicalDataset]) -> None:
    ds_dir, ds = scene
    data = thumbnail(ds_dir, ds, 1, size=64)
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and max(img.size) == 64
    cached = ds_dir / ".cache" / "thumbs" / "1_64_overlay.jpg"
    assert cached.read_bytes() == data
    # A second call is served from the cache file, not redrawn.
    cached.write_bytes(b"cached")
    assert thumbnail(ds_dir, ds, 1, size=64) == b"cached"
    plain = Image.open(io.BytesIO(thumbnail(ds_dir, ds, 1, size=64, overlay=False)))
    assert plain.size == (64, 43) or plain.size == (64, 42)
    r, g, _ = np.asarray(plain.convert("RGB")).astype(int)[18, 18]
    assert abs(r - g) < 8  # no tint on the plain thumbnail
    assert sorted(p.name for p in cached.parent.iterdir()) == ["1_64_overlay.jpg", "1_64_plain.jpg"]
