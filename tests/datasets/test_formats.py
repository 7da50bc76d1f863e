"""Import formats, checked on small data drawn here: each test builds an upload folder, calls
``parse_upload`` directly and checks what a user cares about (classes, ids, areas and boxes equal to the
drawn geometry, masks, tags, splits, image normalisation). Bad inputs are in test_formats_bad.py."""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from backend.datasets.canonical import CanonicalDataset, ImportFailed, ImportReport, ShapeType, Task
from backend.datasets.formats import detect_format, infer_tasks, parse_upload
from backend.datasets.images import normalise_image
from backend.datasets.rasterize import mask_bbox, shape_mask
from tests.datasets.synth import (
    make_coco_project,
    make_filelist_project,
    make_icdar_project,
    make_image_folder,
    make_labelme_project,
    make_voc_project,
    save_image,
    write_voc_xml,
)

IMAGE_NAME = re.compile(r"^\d{6}\.(jpg|png)$")


def shape(label: str, shape_type: str, points: list[list[float]], **extra: Any) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "shape_type": shape_type,
        "flags": {},
        "description": "",
        "mask": None,
        **extra,
    }


def write_labelme(
    root: Path,
    name: str,
    shapes: list[dict[str, Any]],
    width: int = 32,
    height: int = 24,
    image: bool = True,
    **fields: Any,
) -> Path:
    """``root/name.jpg`` (unless ``image`` is False) and ``root/name.json`` describing it."""
    root.mkdir(parents=True, exist_ok=True)
    if image:
        save_image(root / f"{name}.jpg", width, height)
    doc: dict[str, Any] = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": f"{name}.jpg",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
    doc.update(fields)
    path = root / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def png_b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def run_import(root: Path, fmt: str, out_dir: Path) -> tuple[CanonicalDataset, ImportReport]:
    report = ImportReport()
    ds = parse_upload(root, fmt, out_dir, report)
    assert_only_images(out_dir)
    return ds, report


def run_failing(root: Path, fmt: str, out_dir: Path) -> ImportReport:
    report = ImportReport()
    with pytest.raises(ImportFailed) as info:
        parse_upload(root, fmt, out_dir, report)
    assert info.value.report is report
    assert_only_images(out_dir)
    return report


def assert_only_images(out_dir: Path) -> None:
    """Parsers write nothing but ``images/NNNNNN.ext`` into the staging folder."""
    if not out_dir.exists():
        return
    for path in out_dir.rglob("*"):
        if path.is_file():
            parts = path.relative_to(out_dir).parts
            assert len(parts) == 2 and parts[0] == "images" and IMAGE_NAME.match(parts[1]), path


def codes(report: ImportReport) -> set[str]:
    return {f.code for f in report.findings}


# --- labelme ------------------------------------------------------------------------------------------


def test_labelme_classes_from_labels_txt_and_drawn_geometry(tmp_path: Path) -> None:
    root = tmp_path / "up" / "my_project"  # a single wrapping folder, as zipping a folder makes
    labels = ["__ignore__", "_background_", "triangle", "circle", "square"]
    drawn = make_labelme_project(root, n_images=4, labels_txt=labels, nested=True)
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert ds.classes == ["triangle", "circle", "square"]
    assert [c.id for c in ds.categories()] == [1, 2, 3]
    assert not report.errors
    assert len(ds.images) == 4 and ds.split_source == "seeded"
    assert {i.split for i in ds.images} == {"train"}
    by_source = {i.source: i for i in ds.images}
    for item in drawn:
        image = by_source[item.name + ".jpg"]
        anns = [a for a in ds.annotations if a.image_id == image.id]
        assert len(anns) == len(item.shapes)
        for ann, s in zip(anns, item.shapes, strict=True):
            assert ds.classes[ann.category_id - 1] == s.label
            mask = shape_mask(image.height, image.width, s.shape_type, s.points)
            assert ann.area == mask.sum() and ann.bbox == mask_bbox(mask)
            assert ann.points == s.points
    assert set(ds.tasks) == {Task.semantic_segmentation, Task.instance_segmentation, Task.object_detection}
    # An upright RGB JPEG keeps its bytes.
    first = ds.images[0]
    assert (tmp_path / "out" / first.file_name).read_bytes() == (root / first.source).read_bytes()
    json.dumps(ds.model_dump())


def test_labelme_rectangle_area_and_box(tmp_path: Path) -> None:
    write_labelme(tmp_path / "up", "a", [shape("box", "rectangle", [[10, 10], [29, 19]])], 48, 32)
    ds, _ = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    (ann,) = ds.annotations
    assert ann.area == 200 and ann.bbox == [10, 10, 20, 10]
    assert ann.segmentation == [[10, 10, 29, 10, 29, 19, 10, 19]]
    assert ds.classes == ["box"]


def test_labelme_sorted_classes_ignore_background_group_and_all_shape_types(tmp_path: Path) -> None:
    shapes = [
        shape("zebra", "polygon", [[2, 2], [12, 2], [7, 10]], group_id=3),
        shape("ant", "circle", [[20, 12], [24, 12]]),
        shape("ant", "line", [[1, 20], [30, 20]]),
        shape("ant", "linestrip", [[1, 1], [5, 5], [9, 1]]),
        shape("ant", "point", [[28, 4]]),
        shape("__ignore__", "rectangle", [[0, 0], [3, 3]]),
        shape("_background_", "rectangle", [[4, 4], [5, 5]]),
    ]
    write_labelme(tmp_path / "up", "a", shapes)
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert ds.classes == ["ant", "zebra"]
    assert [a.category_id for a in ds.annotations] == [2, 1, 1, 1, 1, 0, 0]
    assert ds.annotations[0].group_id == 3
    assert ds.annotations[5].ignore and not ds.annotations[6].ignore
    image = ds.images[0]
    for ann, s in zip(ds.annotations, shapes, strict=True):
        mask = shape_mask(image.height, image.width, s["shape_type"], s["points"])
        assert ann.area == mask.sum()
    assert (
        ds.annotations[1].segmentation and len(ds.annotations[1].segmentation[0]) == 64
    )  # circle, 32 points
    assert ds.annotations[2].segmentation == []  # lines have no outline
    assert not report.findings


def test_labelme_image_data_only(tmp_path: Path) -> None:
    make_labelme_project(tmp_path / "up", n_images=2, embed=True)
    assert not list((tmp_path / "up").glob("*.jpg"))
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert len(ds.images) == 2 and not report.errors
    assert all((tmp_path / "out" / i.file_name).is_file() for i in ds.images)
    assert ds.images[0].source.endswith("#imageData")


def test_labelme_mask_shape(tmp_path: Path) -> None:
    region = np.zeros((5, 6), dtype=np.uint8)
    region[1:4, 1:5] = 1  # 3 x 4 = 12 pixels
    mask_shape = shape("blob", "mask", [[4, 3], [9, 7]], mask=png_b64(Image.fromarray(region)))
    write_labelme(tmp_path / "up", "a", [mask_shape])
    ds, _ = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    (ann,) = ds.annotations
    assert ann.shape_type == ShapeType.mask and ann.area == 12 and ann.bbox == [5, 4, 4, 3]
    assert ann.mask_rle is not None and isinstance(ann.mask_rle["counts"], str)
    assert ann.mask_rle["size"] == [24, 32]
    assert Task.semantic_segmentation in ds.tasks
    json.dumps(ann.model_dump())


def test_labelme_flags_make_a_classification_dataset(tmp_path: Path) -> None:
    for i, flag in enumerate(["dog", "cat", "dog"]):
        flags = {"dog": flag == "dog", "cat": flag == "cat"}
        write_labelme(tmp_path / "up", f"im{i}", [], flags=flags)
    ds, _ = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert ds.classes == ["dog", "cat"]  # labelme's --flags order
    assert [i.tags for i in ds.images] == [["dog"], ["cat"], ["dog"]]
    assert ds.tasks == [Task.classification]


def test_labelme_flags_are_tags_beside_shapes(tmp_path: Path) -> None:
    write_labelme(
        tmp_path / "up",
        "a",
        [shape("car", "rectangle", [[1, 1], [5, 5]])],
        flags={"night": True, "rain": False},
    )
    ds, _ = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert ds.classes == ["car"] and ds.images[0].tags == ["night"]
    assert Task.classification not in ds.tasks


def test_labelme_clipped_shape_keeps_points_and_clips_box(tmp_path: Path) -> None:
    write_labelme(tmp_path / "up", "a", [shape("box", "rectangle", [[-5, 10], [9, 40]])], 32, 24)
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    (ann,) = ds.annotations
    assert ann.points == [[-5, 10], [9, 40]]
    assert ann.bbox == [0, 10, 10, 14] and ann.area == 140
    assert ann.segmentation == [[0, 10, 9, 10, 9, 24, 0, 24]]
    assert codes(report) == {"shape_clipped"} and report.findings[0].shape == 0
    assert ds.images[0].problems == ["shape_clipped"]


def test_labelme_shapes_that_reach_the_images_border_are_not_warned(tmp_path: Path) -> None:
    """A circle whose edge is the last column (x = 32 of a 32-px image) and a rectangle over the whole
    picture cut nothing off: no warning; a shape a pixel beyond the border is still warned of."""
    write_labelme(
        tmp_path / "up",
        "a",
        [
            shape("disc", "circle", [[22, 12], [32, 12]]),
            shape("box", "rectangle", [[0, 0], [32, 24]]),
            shape("box", "rectangle", [[-0.5, -0.5], [31.5, 23.5]]),
        ],
        32,
        24,
    )
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert report.findings == [] and len(ds.annotations) == 3
    write_labelme(tmp_path / "beyond", "a", [shape("box", "rectangle", [[4, 4], [33, 12]])], 32, 24)
    _, beyond = run_import(tmp_path / "beyond", "labelme", tmp_path / "out2")
    assert codes(beyond) == {"shape_clipped"}


def test_labelme_skip_bad_shapes_lands_the_rest_and_lists_each_skipped_shape(tmp_path: Path) -> None:
    """By default one bad shape fails the project; told to skip bad shapes, the import leaves out each one
    (a polygon of two points, a shape whose points are not numbers, a bad label), says so shape by shape,
    and lands the rest with their own indexes in the report. An error that is not a shape's still fails."""
    root = tmp_path / "up"
    write_labelme(
        root,
        "a",
        [
            shape("box", "rectangle", [[1, 1], [9, 9]]),
            shape("box", "polygon", [[1, 1], [9, 9]]),  # two points
            shape("box", "polygon", [["x", 1], [9, 9], [4, 4]]),  # not numbers: fails validation
            shape("bad<img>", "rectangle", [[2, 2], [6, 6]]),  # a label with characters not allowed
            shape("box", "rectangle", [[10, 10], [20, 20]]),
        ],
    )
    write_labelme(root, "b", [shape("box", "rectangle", [[3, 3], [8, 8]])])
    failing = run_failing(root, "labelme", tmp_path / "out1")
    assert failing.errors and failing.skipped == []

    report = ImportReport.skipping_bad_shapes()
    ds = parse_upload(root, "labelme", tmp_path / "out2", report)
    assert report.errors == []
    skipped = sorted((f.file, f.shape, f.code) for f in report.skipped)
    assert skipped == [
        ("a.json", 1, "polygon_too_few_points"),
        ("a.json", 2, "labelme_invalid"),
        ("a.json", 3, "label_invalid"),
    ], report.findings
    assert all(f.level == "warning" and f.message.endswith("the shape was skipped.") for f in report.skipped)
    first = next(i for i in ds.images if i.source.startswith("a."))
    assert sorted(a.bbox for a in ds.annotations if a.image_id == first.id) == [
        [1.0, 1.0, 9.0, 9.0],
        [10.0, 10.0, 11.0, 11.0],
    ]
    assert len(ds.images) == 2

    (root / "b.json").write_text("{ not json")  # a file's error, not a shape's: still fails
    with pytest.raises(ImportFailed):
        parse_upload(root, "labelme", tmp_path / "out3", ImportReport.skipping_bad_shapes())


def test_labelme_split_folders(tmp_path: Path) -> None:
    write_labelme(tmp_path / "up" / "train", "a", [shape("x", "rectangle", [[1, 1], [4, 4]])])
    write_labelme(tmp_path / "up" / "val", "b", [shape("x", "rectangle", [[1, 1], [4, 4]])])
    ds, _ = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert [i.split for i in ds.images] == ["train", "val"] and ds.split_source == "source"


# --- images ------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    up = tmp_path / "up"
    up.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    img = Image.new("RGB", (40, 20), (10, 200, 10))
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left: ends up on top
    img.save(up / "a.jpg", exif=exif, quality=95)
    write_labelme(up, "a", [shape("x", "rectangle", [[1, 1], [5, 5]])], 20, 40, image=False)
    ds, report = run_import(up, "labelme", tmp_path / "out")
    image = ds.images[0]
    assert (image.width, image.height) == (20, 40)
    assert "exif_rotated" in codes(report) and image.file_name.endswith(".png")
    stored = Image.open(tmp_path / "out" / image.file_name)
    assert stored.size == (20, 40) and stored.getpixel((10, 2))[0] > 200  # type: ignore[index]


def sixteen_bit_rgb_png(width: int, height: int, value: int) -> bytes:
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + struct.pack(">H", value) * 3 * width
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "make", "mode_word", "pixel"),
    [
        ("cmyk.jpg", lambda p: Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(p), "CMYK", (255, 0, 0)),
        (
            "grey16.png",
            lambda p: Image.fromarray(np.full((12, 16), 65535, dtype=np.uint16)).save(p),
            "16-bit",
            (255, 255, 255),
        ),
        ("rgb16.png", lambda p: p.write_bytes(sixteen_bit_rgb_png(16, 12, 32896)), "16-bit", (128, 128, 128)),
        (
            "palette.png",
            lambda p: Image.new("RGB", (16, 12), (0, 0, 255)).convert("P").save(p),
            "palette",
            (0, 0, 255),
        ),
        ("grey.png", lambda p: Image.new("L", (16, 12), 77).save(p), "grayscale", (77, 77, 77)),
        ("alpha.png", lambda p: Image.new("RGBA", (16, 12), (0, 0, 0, 0)).save(p), "RGBA", (255, 255, 255)),
        ("first.gif", lambda p: Image.new("RGB", (16, 12), (255, 0, 0)).save(p), "palette", (255, 0, 0)),
    ],
)
def test_modes_are_converted_to_rgb(
    tmp_path: Path, name: str, make: Any, mode_word: str, pixel: tuple[int, int, int]
) -> None:
    folder = tmp_path / "up" / "things"
    folder.mkdir(parents=True)
    make(folder / name)
    ds, report = run_import(tmp_path / "up", "folder", tmp_path / "out")
    (image,) = ds.images
    converted = [f for f in report.findings if f.code == "image_converted"]
    assert converted and mode_word in converted[0].message and name in converted[0].message
    stored = Image.open(tmp_path / "out" / image.file_name)
    assert stored.format == "PNG" and stored.mode == "RGB" and image.file_name.endswith(".png")
    got = stored.getpixel((8, 6))
    assert isinstance(got, tuple) and all(abs(a - b) <= 2 for a, b in zip(got, pixel, strict=True))


def test_format_is_checked_by_content_not_extension(tmp_path: Path) -> None:
    folder = tmp_path / "up" / "things"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "really_a_png.jpg", format="PNG")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "bitmap.bmp")
    ds, _ = run_import(tmp_path / "up", "folder", tmp_path / "out")
    assert sorted(i.file_name for i in ds.images) == ["images/000001.png", "images/000002.png"]


def test_normalise_image_from_bytes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (9, 7)).save(buf, format="JPEG")
    report = ImportReport()
    assert normalise_image(buf.getvalue(), "x.jpg", tmp_path, "000042", report) == ("images/000042.jpg", 9, 7)
    assert normalise_image(b"GIF89a-not-really", "y.gif", tmp_path, "000043", report) is None
    assert [f.code for f in report.findings] == ["image_unreadable"]
    with pytest.raises(ValueError, match="unsafe"):
        normalise_image(buf.getvalue(), "x.jpg", tmp_path, "../evil", report)


# --- image folders, file lists ------------------------------------------------------------------------


def test_image_folder_with_splits(tmp_path: Path) -> None:
    counts = make_image_folder(tmp_path / "up", per_class=3, splits=True)
    ds, _ = run_import(tmp_path / "up", "folder", tmp_path / "out")
    assert ds.classes == sorted(counts) and ds.tasks == [Task.classification]
    assert ds.split_source == "source"
    assert {i.split for i in ds.images} == {"train", "val"}
    assert all(len(i.tags) == 1 and i.tags[0] in i.source for i in ds.images)
    assert sum(i.split == "val" for i in ds.images) == len(counts)


def test_image_folder_without_splits_is_seeded(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "up", per_class=2)
    ds, _ = run_import(tmp_path / "up", "folder", tmp_path / "out")
    assert ds.split_source == "seeded" and {i.split for i in ds.images} == {"train"}


def test_filelist(tmp_path: Path) -> None:
    make_filelist_project(tmp_path / "up")
    ds, report = run_import(tmp_path / "up", "filelist", tmp_path / "out")
    assert ds.classes == ["cat", "dog"] and ds.tasks == [Task.classification]
    assert [(i.split, i.tags) for i in ds.images] == [
        ("train", ["cat"]),
        ("train", ["dog"]),
        ("val", ["dog"]),
        ("val", ["cat"]),
    ]
    assert ds.split_source == "source" and not report.findings


# --- COCO, VOC, ICDAR ---------------------------------------------------------------------------------


def test_coco(tmp_path: Path) -> None:
    make_coco_project(tmp_path / "up")
    ds, report = run_import(tmp_path / "up", "coco", tmp_path / "out")
    assert ds.classes == ["cat", "dog"]  # COCO ids 3 and 7, re-indexed by id
    assert [i.split for i in ds.images] == ["train", "val"] and ds.split_source == "source"
    polygon, crowd, box = ds.annotations[:3]
    assert (polygon.category_id, polygon.shape_type, polygon.area, polygon.bbox) == (
        2,
        ShapeType.polygon,
        100,
        [5, 5, 10, 10],
    )
    assert (crowd.category_id, crowd.shape_type, crowd.iscrowd, crowd.area, crowd.bbox) == (
        1,
        ShapeType.mask,
        1,
        40,
        [30, 20, 8, 5],
    )
    assert (box.shape_type, box.area, box.bbox) == (ShapeType.rectangle, 24, [20, 2, 6, 4])
    assert not report.findings


def test_coco_multi_part_polygon_shares_group(tmp_path: Path) -> None:
    docs = make_coco_project(tmp_path / "up", splits=("train",))
    doc = docs["train"]
    doc["annotations"] = [
        {
            "id": 9,
            "image_id": 10,
            "category_id": 7,
            "iscrowd": 0,
            "segmentation": [[1, 1, 4, 1, 4, 4], [10, 10, 14, 10, 14, 14]],
        }
    ]
    (tmp_path / "up" / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    ds, _ = run_import(tmp_path / "up", "coco", tmp_path / "out")
    assert [a.group_id for a in ds.annotations] == [9, 9]


def test_voc_segmentation(tmp_path: Path) -> None:
    make_voc_project(tmp_path / "up" / "VOCdevkit")
    ds, report = run_import(tmp_path / "up", "voc", tmp_path / "out")
    assert ds.classes == ["cat", "dog"] and ds.split_source == "source"
    assert [i.split for i in ds.images] == ["train", "val"]
    anns = [a for a in ds.annotations if a.image_id == 1]
    assert [(a.category_id, a.area, a.bbox, a.ignore) for a in anns] == [
        (1, 100, [3, 2, 10, 10], False),
        (2, 50, [20, 15, 10, 5], False),
        (0, 80, [0, 22, 40, 2], True),
    ]
    assert all(a.shape_type == ShapeType.mask and a.mask_rle for a in anns)
    assert set(ds.tasks) == {Task.semantic_segmentation, Task.instance_segmentation, Task.object_detection}
    assert not report.errors


def test_voc_class_masks_only_are_semantic(tmp_path: Path) -> None:
    make_voc_project(tmp_path / "up")
    for path in (tmp_path / "up" / "SegmentationObject").iterdir():
        path.unlink()
    (tmp_path / "up" / "SegmentationObject").rmdir()
    ds, _ = run_import(tmp_path / "up", "voc", tmp_path / "out")
    assert ds.tasks == [Task.semantic_segmentation]
    assert [a.area for a in ds.annotations if a.image_id == 1] == [100, 50, 80]


def test_voc_boxes(tmp_path: Path) -> None:
    up = tmp_path / "up"
    save_image(up / "JPEGImages" / "a.jpg", 40, 30)
    write_voc_xml(
        up / "Annotations" / "a.xml", "a", 40, 30, [("dog", (11, 11, 30, 20)), ("cat", (1, 1, 5, 5))]
    )
    ds, _ = run_import(up, "voc", tmp_path / "out")
    assert ds.classes == ["cat", "dog"] and ds.split_source == "seeded"
    dog = ds.annotations[0]
    assert (dog.category_id, dog.shape_type, dog.area, dog.bbox) == (
        2,
        ShapeType.rectangle,
        200,
        [10, 10, 20, 10],
    )
    assert dog.attributes == {"difficult": "0"}


def test_icdar(tmp_path: Path) -> None:
    make_icdar_project(tmp_path / "up")
    ds, report = run_import(tmp_path / "up", "icdar", tmp_path / "out")
    assert ds.classes == ["text"] and ds.tasks == [Task.text_detection]
    assert not report.findings
    assert ds.split_source == "source"
    assert sorted(i.split for i in ds.images) == ["test", "train"]
    texts = [(a.text, a.ignore, a.category_id, len(a.points)) for a in ds.annotations[:2]]
    assert texts == [("Hello, world", False, 1, 4), ("###", True, 0, 4)]


def test_icdar_without_bom(tmp_path: Path) -> None:
    make_icdar_project(tmp_path / "up", bom=False)
    ds, _ = run_import(tmp_path / "up", "icdar", tmp_path / "out")
    assert ds.annotations[0].text == "Hello, world"


# --- detection and tasks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("labelme", lambda r: make_labelme_project(r / "wrapper", n_images=1)),
        ("folder", lambda r: make_image_folder(r, per_class=1)),
        ("folder", lambda r: make_image_folder(r, per_class=2, splits=True)),
        ("filelist", make_filelist_project),
        ("coco", make_coco_project),
        ("voc", lambda r: make_voc_project(r / "VOCdevkit" / "VOC2012")),
        ("icdar", make_icdar_project),
    ],
)
def test_detect_format(tmp_path: Path, fmt: str, make: Any) -> None:
    make(tmp_path)
    assert detect_format(tmp_path) == fmt


def test_detect_format_names_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImportFailed) as info:
        detect_format(tmp_path)
    (finding,) = info.value.report.findings
    assert finding.code == "format_unknown" and "labelme" in finding.message and "VOC" in finding.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFailed) as info:
        detect_format(tmp_path / "empty")
    assert info.value.report.findings[0].code == "dataset_empty"


def test_infer_tasks_points_only_is_no_task(tmp_path: Path) -> None:
    write_labelme(tmp_path / "up", "a", [shape("dot", "point", [[3, 3]])])
    ds, report = run_import(tmp_path / "up", "labelme", tmp_path / "out")
    assert ds.tasks == [] and infer_tasks(ds) == []
    assert "tasks_none" in codes(report)


def test_labelme_embedded_image_beside_its_file_and_windows_paths(tmp_path: Path) -> None:
    up = tmp_path / "up"
    save_image(up / "images" / "b.jpg")
    write_labelme(
        up / "json",
        "b",
        [shape("x", "rectangle", [[1, 1], [4, 4]])],
        image=False,
        imagePath="..\\images\\b.jpg",
    )
    embedded = (up / "images" / "b.jpg").read_bytes()
    save_image(up / "json" / "c.jpg")
    write_labelme(
        up / "json", "c", [], image=False, imagePath="c.jpg", imageData=base64.b64encode(embedded).decode()
    )
    ds, report = run_import(up, "labelme", tmp_path / "out")
    assert [i.source for i in ds.images] == ["images/b.jpg", "json/c.json#imageData"]
    assert not report.findings  # c.jpg is labelled by c.json even though the embedded copy is used
