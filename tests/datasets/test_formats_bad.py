"""Bad uploads, one per case: each must give its finding code, at the level a user expects (errors stop the
import, warnings let it land), with a message naming the file (and shape / field where there is one), and
must write nothing into the staging folder but images."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.datasets import images
from backend.datasets.canonical import ImportFailed, ImportReport
from backend.datasets.formats import parse_upload
from tests.datasets.synth import (
    make_coco_project,
    make_filelist_project,
    make_icdar_project,
    make_image_folder,
    make_voc_project,
    save_image,
    write_voc_xml,
)
from tests.datasets.test_formats import assert_only_images, png_b64, shape, write_labelme

RECT = [shape("box", "rectangle", [[1, 1], [5, 5]])]


@dataclass
class Case:
    id: str
    fmt: str
    make: Callable[[Path], object]
    code: str
    level: str = "error"
    names: str = ""  # text the message must contain: the file
    shape: int | None = None
    field: str | None = None  # text the finding's field must contain


def _labelme_with(extra: Callable[[Path], object]) -> Callable[[Path], object]:
    """A valid one-image labelme project plus one bad thing."""

    def make(root: Path) -> None:
        write_labelme(root, "good", RECT)
        extra(root)

    return make


def _json(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)


def _labels(root: Path, *labels: str) -> None:
    (root / "labels.txt").write_text("\n".join(labels) + "\n")


def _coco_edit(edit: Callable[[dict[str, object]], None]) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        doc = make_coco_project(root, splits=("train",))["train"]
        edit(doc)
        (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))

    return make


def _voc_edit(edit: Callable[[Path], None]) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        make_voc_project(root)
        edit(root)

    return make


def _filelist_line(line: str, list_name: str = "train.txt") -> Callable[[Path], object]:
    def make(root: Path) -> None:
        make_filelist_project(root)
        with (root / list_name).open("a") as fh:
            fh.write(line + "\n")

    return make


def _icdar_edit(edit: Callable[[Path], None]) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        make_icdar_project(root)
        edit(root)

    return make


def _rgb_mask(root: Path) -> None:
    Image.new("RGB", (40, 30)).save(root / "SegmentationClass" / "2024_0000.png")


def _mask_value(root: Path) -> None:
    arr = np.zeros((30, 40), dtype=np.uint8)
    arr[0:2, 0:2] = 9
    Image.fromarray(arr, mode="L").save(root / "SegmentationClass" / "2024_0000.png")


def _mask_size(root: Path) -> None:
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8), mode="L").save(
        root / "SegmentationObject" / "2024_0001.png"
    )


BOMB_XML = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    "<annotation><object><name>&lol2;</name></object></annotation>"
)

CASES = [
    # labelme
    Case(
        "json_invalid",
        "labelme",
        _labelme_with(lambda r: _json(r, "bad.json", '{"shapes": [\n  {"label": ')),
        "json_invalid",
        names="bad.json",
        field="line 2",
    ),
    Case(
        "json_not_utf8",
        "labelme",
        _labelme_with(lambda r: (r / "bad.json").write_bytes(b'{"shapes": [], "x": "\xe9"}')),
        "encoding_invalid",
        names="bad.json",
    ),
    Case(
        "not_labelme",
        "labelme",
        _labelme_with(lambda r: _json(r, "config.json", '{"lr": 0.1}')),
        "not_labelme",
        level="warning",
        names="config.json",
    ),
    Case(
        "points_not_numbers",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", [RECT[0], shape("a", "polygon", "oops")])),  # type: ignore[arg-type]
        "labelme_invalid",
        names="bad.json",
        shape=1,
        field="points",
    ),
    Case(
        "image_path_outside",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", RECT, image=False, imagePath="../../etc/passwd")),
        "image_path_outside",
        names="bad.json",
        field="imagePath",
    ),
    Case(
        "image_path_missing",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", RECT, image=False, imagePath="nowhere.jpg")),
        "image_missing",
        names="bad.json",
        field="imagePath",
    ),
    Case(
        "json_without_image",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", RECT, image=False, imagePath=None)),
        "image_missing",
        names="bad.json",
        field="imagePath",
    ),
    Case(
        "image_data_not_base64",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", RECT, image=False, imageData="%%%")),
        "image_data_invalid",
        names="bad.json",
        field="imageData",
    ),
    Case(
        "image_size_mismatch",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", RECT, imageWidth=99)),
        "image_size_mismatch",
        names="bad.json",
        field="imageWidth",
    ),
    Case(
        "polygon_two_points",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", [RECT[0], shape("a", "polygon", [[1, 1], [4, 4]])])),
        "polygon_too_few_points",
        names="bad.json",
        shape=1,
        field="points",
    ),
    Case(
        "rectangle_three_points",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", [shape("a", "rectangle", [[1, 1], [4, 4], [5, 5]])])),
        "shape_points_invalid",
        names="bad.json",
        shape=0,
        field="points",
    ),
    Case(
        "coordinates_nan",
        "labelme",
        _labelme_with(
            lambda r: _json(
                r,
                "bad.json",
                json.dumps(
                    {
                        "shapes": [
                            {"label": "a", "points": [[float("nan"), 1], [2, 2]], "shape_type": "rectangle"}
                        ],
                        "imagePath": "good.jpg",
                    }
                ).replace("good.jpg", "good.jpg"),
            )
        ),
        "coordinates_not_finite",
        names="bad.json",
        shape=0,
        field="points",
    ),
    Case(
        "shape_clipped",
        "labelme",
        lambda r: write_labelme(r, "a", [RECT[0], shape("box", "rectangle", [[20, 20], [50, 50]])]),
        "shape_clipped",
        level="warning",
        names="a.json",
        shape=1,
        field="points",
    ),
    Case(
        "shape_outside",
        "labelme",
        lambda r: write_labelme(
            r, "a", [RECT[0], shape("box", "polygon", [[100, 100], [120, 100], [110, 120]])]
        ),
        "shape_outside",
        level="warning",
        names="a.json",
        shape=1,
        field="points",
    ),
    Case(
        "shape_type_unknown",
        "labelme",
        lambda r: write_labelme(r, "a", [RECT[0], shape("box", "hexagon", [[1, 1], [2, 2]])]),
        "shape_type_unknown",
        level="warning",
        names="a.json",
        shape=1,
        field="shape_type",
    ),
    Case(
        "label_not_in_labels_txt",
        "labelme",
        _labelme_with(
            lambda r: (
                _labels(r, "__ignore__", "box"),
                write_labelme(r, "bad", [RECT[0], shape("boat", "rectangle", [[1, 1], [3, 3]])]),
            )
        ),
        "label_unknown",
        names="bad.json",
        shape=1,
        field="label",
    ),
    Case(
        "label_bad_characters",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", [shape("<script>", "rectangle", [[1, 1], [3, 3]])])),
        "label_invalid",
        names="bad.json",
        shape=0,
        field="label",
    ),
    Case(
        "label_too_long",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "bad", [shape("x" * 101, "rectangle", [[1, 1], [3, 3]])])),
        "label_invalid",
        names="bad.json",
        shape=0,
        field="label",
    ),
    Case(
        "labels_txt_bad_line",
        "labelme",
        _labelme_with(lambda r: _labels(r, "box", "bad\tname")),
        "label_invalid",
        names="labels.txt",
        field="line 2",
    ),
    Case(
        "two_json_one_image",
        "labelme",
        _labelme_with(lambda r: write_labelme(r, "copy", RECT, image=False, imagePath="good.jpg")),
        "duplicate_file",
        names="good.json",
        field="imagePath",
    ),
    Case(
        "image_without_json",
        "labelme",
        _labelme_with(lambda r: save_image(r / "lonely.png")),
        "image_unlabelled",
        level="warning",
        names="lonely.png",
    ),
    Case(
        "mask_wrong_size",
        "labelme",
        _labelme_with(
            lambda r: write_labelme(
                r, "bad", [shape("m", "mask", [[1, 1], [4, 4]], mask=png_b64(Image.new("L", (2, 2), 1)))]
            )
        ),
        "mask_invalid",
        names="bad.json",
        shape=0,
        field="mask",
    ),
    Case(
        "image_truncated",
        "labelme",
        _labelme_with(
            lambda r: (
                write_labelme(r, "bad", RECT),
                (r / "bad.jpg").write_bytes((r / "bad.jpg").read_bytes()[:200]),
            )
        ),
        "image_unreadable",
        names="bad.jpg",
    ),
    Case(
        "image_not_an_image",
        "labelme",
        _labelme_with(
            lambda r: (write_labelme(r, "bad", RECT), (r / "bad.jpg").write_text("hello, I am text"))
        ),
        "image_format_unsupported",
        names="bad.jpg",
    ),
    Case(
        "image_empty_file",
        "labelme",
        _labelme_with(lambda r: (write_labelme(r, "bad", RECT), (r / "bad.jpg").write_bytes(b""))),
        "image_unreadable",
        names="bad.jpg",
    ),
    Case("no_json_at_all", "labelme", lambda r: (r / "readme.md").write_text("hi"), "dataset_empty"),
    # image folders
    Case(
        "folder_mixed_layout",
        "folder",
        lambda r: (make_image_folder(r, per_class=1), save_image(r / "train" / "cat" / "a.png")),
        "folder_layout_mixed",
        names="circle",
    ),
    Case(
        "folder_bad_class_name",
        "folder",
        lambda r: save_image(r / "a<b>" / "x.png"),
        "label_invalid",
        names="a<b>",
        field="folder",
    ),
    # file lists
    Case(
        "list_line_without_label",
        "filelist",
        _filelist_line("data/train_0.png"),
        "line_invalid",
        names="train.txt line 3",
        field="line 3",
    ),
    Case(
        "list_label_out_of_range",
        "filelist",
        _filelist_line("data/val_2.png 7", "test.txt"),
        "label_unknown",
        names="test.txt line 1",
        field="line 1",
    ),
    Case(
        "list_image_missing",
        "filelist",
        _filelist_line("data/ghost.png 0"),
        "image_missing",
        names="train.txt line 3",
        field="line 3",
    ),
    Case(
        "list_image_in_two_splits",
        "filelist",
        _filelist_line("data/train_0.png 0", "val.txt"),
        "duplicate_file",
        names="val.txt line 3",
        field="line 3",
    ),
    Case(
        "list_path_outside",
        "filelist",
        _filelist_line("../../secret.png 0"),
        "image_path_outside",
        names="train.txt line 3",
        field="line 3",
    ),
    # COCO
    Case(
        "coco_category_unknown",
        "coco",
        _coco_edit(lambda d: d["annotations"][0].update(category_id=99)),  # type: ignore[index]
        "category_unknown",
        names="instances_train.json",
        shape=0,
        field="category_id",
    ),
    Case(
        "coco_image_unknown",
        "coco",
        _coco_edit(lambda d: d["annotations"][1].update(image_id=12345)),  # type: ignore[index]
        "image_unknown",
        names="instances_train.json",
        shape=1,
        field="image_id",
    ),
    Case(
        "coco_bbox_not_numbers",
        "coco",
        _coco_edit(lambda d: d["annotations"][2].update(bbox="wide")),  # type: ignore[index]
        "coco_invalid",
        names="instances_train.json",
        shape=2,
        field="bbox",
    ),
    Case(
        "coco_rle_wrong_size",
        "coco",
        _coco_edit(lambda d: d["annotations"][1]["segmentation"].update(size=[5, 5])),  # type: ignore[index]
        "mask_invalid",
        names="instances_train.json",
        shape=1,
        field="segmentation",
    ),
    Case(
        "coco_category_conflict",
        "coco",
        _coco_edit(lambda d: d["categories"].append({"id": 8, "name": "dog"})),  # type: ignore[attr-defined]
        "category_conflict",
        names="instances_train.json",
        field="categories.2",
    ),
    Case(
        "coco_image_missing",
        "coco",
        _coco_edit(lambda d: d["images"][0].update(file_name="gone.jpg")),  # type: ignore[index]
        "image_missing",
        names="instances_train.json",
        field="images.0",
    ),
    # VOC
    Case(
        "voc_xml_broken",
        "voc",
        lambda r: (
            save_image(r / "JPEGImages" / "a.jpg"),
            (r / "Annotations").mkdir(),
            (r / "Annotations" / "a.xml").write_text("<annotation><object>"),
        ),
        "xml_invalid",
        names="Annotations/a.xml",
        field="line 1",
    ),
    Case(
        "voc_xml_entities",
        "voc",
        lambda r: (
            save_image(r / "JPEGImages" / "a.jpg"),
            (r / "Annotations").mkdir(),
            (r / "Annotations" / "a.xml").write_text(BOMB_XML),
        ),
        "xml_invalid",
        names="Annotations/a.xml",
    ),
    Case(
        "voc_box_without_name",
        "voc",
        lambda r: (
            save_image(r / "JPEGImages" / "a.jpg"),
            (r / "class_names.txt").write_text("cat\n"),
            write_voc_xml(r / "Annotations" / "a.xml", "a", 32, 24, [("", (1, 1, 3, 3))]),
        ),
        "xml_invalid",
        names="Annotations/a.xml",
        shape=0,
        field="name",
    ),
    Case(
        "voc_mask_rgb",
        "voc",
        _voc_edit(_rgb_mask),
        "mask_not_indexed",
        names="SegmentationClass/2024_0000.png",
    ),
    Case(
        "voc_mask_value_unknown",
        "voc",
        _voc_edit(_mask_value),
        "mask_value_unknown",
        names="SegmentationClass/2024_0000.png",
    ),
    Case(
        "voc_mask_wrong_size",
        "voc",
        _voc_edit(_mask_size),
        "mask_size_mismatch",
        names="SegmentationObject/2024_0001.png",
    ),
    Case(
        "voc_list_names_missing_image",
        "voc",
        _voc_edit(lambda r: (r / "ImageSets" / "Segmentation" / "val.txt").write_text("2024_0001\nghost\n")),
        "image_missing",
        names="ImageSets/Segmentation/val.txt",
        field="line 2",
    ),
    # ICDAR
    Case(
        "icdar_bad_line",
        "icdar",
        _icdar_edit(lambda r: (r / "ch4_test_gt" / "gt_img_2.txt").write_text("1,2,3,x,5,6,7,8,word\n")),
        "line_invalid",
        names="ch4_test_gt/gt_img_2.txt",
        shape=1,
        field="line 1",
    ),
    Case(
        "icdar_gt_without_image",
        "icdar",
        _icdar_edit(lambda r: (r / "ch4_test_gt" / "gt_img_9.txt").write_text("1,1,2,1,2,2,1,2,a\n")),
        "image_missing",
        names="gt_img_9.txt",
    ),
    Case(
        "icdar_not_utf8",
        "icdar",
        _icdar_edit(lambda r: (r / "ch4_test_gt" / "gt_img_2.txt").write_bytes(b"1,1,9,1,9,9,1,9,caf\xe9\n")),
        "encoding_invalid",
        names="gt_img_2.txt",
    ),
    Case(
        "icdar_image_without_gt",
        "icdar",
        _icdar_edit(lambda r: save_image(r / "ch4_test_images" / "img_3.jpg")),
        "image_unlabelled",
        level="warning",
        names="img_3.jpg",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path: Path, case: Case) -> None:
    root = tmp_path / "upload"
    root.mkdir()
    case.make(root)
    out_dir = tmp_path / "staging"
    report = ImportReport()
    if case.level == "error":
        with pytest.raises(ImportFailed):
            parse_upload(root, case.fmt, out_dir, report)
    else:
        parse_upload(root, case.fmt, out_dir, report)
    found = [f for f in report.findings if f.code == case.code]
    assert found, f"no {case.code} in {[(f.code, f.message) for f in report.findings]}"
    finding = found[0]
    assert finding.level == case.level
    assert case.names in finding.message
    if case.names:
        assert finding.file is not None and finding.file.split("/")[-1] in case.names.split(" ")[0]
    if case.shape is not None:
        assert finding.shape == case.shape and (
            f"shape {case.shape}" in finding.message
            or "line" in finding.message
            or f"annotation {case.shape}" in finding.message
            or f"object {case.shape}" in finding.message
        )
    if case.field is not None:
        assert finding.field is not None and case.field in finding.field
    assert_only_images(out_dir)
    assert {p.name for p in tmp_path.iterdir()} <= {"upload", "staging"}  # nothing written beside


def test_there_are_enough_distinct_bad_inputs() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25
    assert len({c.code for c in CASES}) >= 25


@pytest.mark.parametrize("pillow_limit", [500, None], ids=["pillow-limit", "pillow-limit-off"])
def test_decompression_bomb_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pillow_limit: int | None
) -> None:
    """Refused by Pillow's own check (as a warning turned error) and, should another library have turned
    Pillow's limit off (labelme sets it to None on import), by the module's own check."""
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 500)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    write_labelme(tmp_path / "up", "big", RECT, 32, 24)  # 768 pixels: over 1x, under 2x (a warning in Pillow)
    report = ImportReport()
    with pytest.raises(ImportFailed):
        parse_upload(tmp_path / "up", "labelme", tmp_path / "out", report)
    assert [f.code for f in report.errors] == ["image_too_large"] and "big.jpg" in report.errors[0].message
    assert_only_images(tmp_path / "out")


def test_pillow_limit_is_set_from_the_module_constant() -> None:
    """Checked in a fresh interpreter: other tests import libraries that change Pillow's global."""
    code = (
        "from PIL import Image; from backend.datasets import images; "
        "assert Image.MAX_IMAGE_PIXELS == images.MAX_IMAGE_PIXELS == 64_000_000"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_unknown_format_name(tmp_path: Path) -> None:
    report = ImportReport()
    with pytest.raises(ImportFailed):
        parse_upload(tmp_path, "yolo", tmp_path / "out", report)
    assert report.errors[0].code == "format_unknown" and "labelme" in report.errors[0].message


def test_errors_and_warnings_together_report_all(tmp_path: Path) -> None:
    """One import lists every problem, not just the first, so the user fixes them in one go."""
    write_labelme(
        tmp_path / "up",
        "a",
        [
            shape("a", "polygon", [[1, 1]]),
            shape("b", "polygon", [[1, 1], [2, 2]]),
            shape("c", "hexagon", [[1, 1]]),
        ],
    )
    report = ImportReport()
    with pytest.raises(ImportFailed, match="and 1 more"):
        parse_upload(tmp_path / "up", "labelme", tmp_path / "out", report)
    assert [(f.code, f.shape) for f in report.findings] == [
        ("polygon_too_few_points", 0),
        ("polygon_too_few_points", 1),
        ("shape_type_unknown", 2),
    ]
