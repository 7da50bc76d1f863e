"""VOC, COCO and ImageNet exports and their cached zips, on tiny synthetic datasets with known geometry."""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from backend.datasets.canonical import (
    Annotation,
    CanonicalDataset,
    ImageRecord,
    ImportReport,
    ShapeType,
    Task,
)
from backend.datasets.export import (
    VOC,
    ExportFormat,
    build_export_zip,
    export_coco,
    export_voc,
    voc_colormap,
)
from backend.datasets.formats import parse_upload
from backend.datasets.rasterize import clip_polygon, label_maps, mask_bbox, shape_mask, shape_polygon
from backend.tasks import EXPORTS, get_export_format
from backend.tasks.classification import export_imagenet
from tests.datasets.synth import make_image_folder, make_labelme_project

CLASSES = ["circle", "square", "triangle"]
W, H = 64, 48


def make_ann(
    ann_id: int,
    image_id: int,
    cls: str | None,
    shape_type: str,
    points: list[list[float]],
    w: int = W,
    h: int = H,
    group_id: int | None = None,
    **extra: Any,
) -> Annotation:
    """An annotation as an importer makes it: rasterised labelme's way for area and box."""
    mask = shape_mask(h, w, shape_type, points, extra.get("mask_rle"))
    polygon = shape_polygon(shape_type, points)
    return Annotation(
        id=ann_id,
        image_id=image_id,
        category_id=0 if cls is None else CLASSES.index(cls) + 1,
        shape_type=ShapeType(shape_type),
        points=points,
        segmentation=[clip_polygon(polygon, w, h)] if polygon else [],
        bbox=mask_bbox(mask),
        area=float(mask.sum()),
        group_id=group_id,
        ignore=cls is None,
        **extra,
    )


def write_image(ds_dir: Path, name: str, fmt: str = "PNG", size: tuple[int, int] = (W, H)) -> str:
    (ds_dir / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 190, 180)).save(ds_dir / "images" / name, format=fmt)
    return f"images/{name}"


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[CanonicalDataset, Path]:
    """Two train images and one val image: a rectangle, a triangle, an ignore box, a grouped pair, a point."""
    ds_dir = tmp_path / "ds"
    images = [
        ImageRecord(
            id=1, file_name=write_image(ds_dir, "000001.png"), source="a/first.png", width=W, height=H
        ),
        ImageRecord(
            id=2, file_name=write_image(ds_dir, "000002.jpg", "JPEG"), source="second.jpg", width=W, height=H
        ),
        ImageRecord(
            id=3,
            file_name=write_image(ds_dir, "000003.png"),
            source="third.png",
            width=W,
            height=H,
            split="val",
        ),
    ]
    anns = [
        make_ann(1, 1, "square", "rectangle", [[10, 10], [30, 20]]),
        make_ann(2, 1, "triangle", "polygon", [[40, 5], [60, 40], [35, 40]]),
        make_ann(3, 1, None, "rectangle", [[0, 30], [8, 47]]),
        make_ann(4, 2, "circle", "circle", [[20, 20], [28, 20]], group_id=7),
        make_ann(5, 2, "circle", "rectangle", [[40, 30], [50, 40]], group_id=7),
        make_ann(6, 2, "square", "point", [[5, 5]]),
    ]
    ds = CanonicalDataset(
        classes=CLASSES, tasks=[Task.instance_segmentation], images=images, annotations=anns
    )
    ds.save(ds_dir)
    return ds, ds_dir


def png_array(path: Path) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(path))


# ------------------------------------------------------------------------------------------------ VOC


def test_voc_class_masks_match_rasterize_and_geometry(
    tiny: tuple[CanonicalDataset, Path], tmp_path: Path
) -> None:
    ds, ds_dir = tiny
    out = tmp_path / "voc"
    export_voc(ds, ds_dir, out)

    img = Image.open(out / "SegmentationClass" / "first.png")
    assert img.mode == "P"
    palette = np.array(img.getpalette()[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
    assert (palette == voc_colormap()).all()
    assert palette[1].tolist() == [128, 0, 0] and palette[255].tolist() == [224, 224, 192]

    cls = np.asarray(img)
    expected, _ = label_maps(H, W, [a for a in ds.annotations if a.image_id == 1])
    assert (cls == expected).all()
    # Rectangle (10,10)-(30,20): Pillow fills both corners inclusive, 21 x 11 pixels of class 2.
    assert (cls[10:21, 10:31] == 2).all()
    assert cls[9, 15] == 0 and cls[21, 15] == 0 and cls[15, 9] == 0 and cls[15, 31] == 0
    assert int((cls == 2).sum()) == 21 * 11
    # Triangle apex and base are class 3; outside its edges is background.
    assert cls[6, 40] == 3 and cls[39, 50] == 3 and cls[39, 36] == 3 and cls[6, 45] == 0
    # __ignore__ box (0,30)-(8,47) is 255.
    assert (cls[30:48, 0:9] == 255).all()
    assert set(np.unique(cls).tolist()) == {0, 2, 3, 255}


def test_voc_objects_names_xml_and_image_sets(tiny: tuple[CanonicalDataset, Path], tmp_path: Path) -> None:
    ds, ds_dir = tiny
    out = tmp_path / "voc"
    export_voc(ds, ds_dir, out)

    assert (out / "class_names.txt").read_text() == "_background_\ncircle\nsquare\ntriangle"
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["first.jpg", "second.jpg", "third.jpg"]
    assert Image.open(out / "JPEGImages" / "first.jpg").format == "JPEG"
    # A JPEG source is copied byte for byte: no second lossy encode.
    assert (out / "JPEGImages" / "second.jpg").read_bytes() == (ds_dir / "images" / "000002.jpg").read_bytes()

    obj = png_array(out / "SegmentationObject" / "second.png")
    assert Image.open(out / "SegmentationObject" / "second.png").mode == "P"
    # The circle and the rectangle share group 7: one instance; the point is the second.
    assert obj[20, 20] == 1 and obj[35, 45] == 1 and obj[5, 5] == 2
    first_obj = png_array(out / "SegmentationObject" / "first.png")
    assert first_obj[15, 20] == 1 and first_obj[39, 50] == 2 and first_obj[40, 4] == 255

    root = ET.parse(out / "Annotations" / "first.xml").getroot()  # noqa: S314 (our own output)
    assert root.findtext("filename") == "first.jpg"
    assert root.findtext("size/width") == str(W) and root.findtext("size/height") == str(H)
    objects = [
        (o.findtext("name"), [o.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")])
        for o in root.iter("object")
    ]
    assert objects == [("square", ["10", "10", "30", "20"]), ("triangle", ["35", "5", "60", "40"])]

    for sub in ("Segmentation", "Main"):
        sets = out / "ImageSets" / sub
        assert (sets / "train.txt").read_text().split() == ["first", "second"]
        assert (sets / "val.txt").read_text().split() == ["third"]
        assert (sets / "trainval.txt").read_text().split() == ["first", "second", "third"]
        assert not (sets / "test.txt").exists()


def labelme_to_canonical(root: Path, out_dir: Path) -> CanonicalDataset:
    """The studio's own labelme import."""
    ds = parse_upload(root, "labelme", out_dir, ImportReport())
    ds.save(out_dir)
    return ds


def test_voc_from_a_labelme_project_matches_labelme(tmp_path: Path) -> None:
    drawn = make_labelme_project(
        tmp_path / "lm", n_images=4, labels_txt=["__ignore__", "_background_", *CLASSES], shapes_per_image=3
    )
    ds = labelme_to_canonical(tmp_path / "lm", tmp_path / "ds")
    export_voc(ds, tmp_path / "ds", tmp_path / "voc")
    lm_utils = None
    try:
        import labelme.utils as lm_utils  # type: ignore[no-redef]
    except Exception:  # labelme is only a benchmark dependency; its own drawing is checked when present
        lm_utils = None
    for item in drawn:
        cls = png_array(tmp_path / "voc" / "SegmentationClass" / f"{Path(item.name).name}.png")
        expected = np.zeros((item.height, item.width), dtype=np.uint8)
        for s in item.shapes:
            expected[shape_mask(item.height, item.width, s.shape_type, s.points)] = CLASSES.index(s.label) + 1
        assert (cls == expected).all()
        if lm_utils is not None:
            shapes = [
                {"label": s.label, "points": s.points, "shape_type": s.shape_type, "group_id": None}
                for s in item.shapes
            ]
            ref, _ = lm_utils.shapes_to_label(
                (item.height, item.width),
                shapes,
                {"_background_": 0, **{c: i + 1 for i, c in enumerate(CLASSES)}},
            )
            assert (cls == ref).all()


def test_voc_refuses_too_many_classes(tmp_path: Path) -> None:
    ds = CanonicalDataset(classes=[f"c{i}" for i in range(255)], tasks=[], images=[], annotations=[])
    with pytest.raises(ValueError, match="at most 254 classes"):
        export_voc(ds, tmp_path, tmp_path / "voc")


# ----------------------------------------------------------------------------------------------- COCO


def test_coco_round_trips_through_pycocotools(tiny: tuple[CanonicalDataset, Path], tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    ds, ds_dir = tiny
    out = tmp_path / "coco"
    export_coco(ds, ds_dir, out)
    assert sorted(p.name for p in (out / "annotations").iterdir()) == [
        "instances_train.json",
        "instances_val.json",
    ]
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["first.png", "second.jpg"]

    coco = COCO(str(out / "annotations" / "instances_train.json"))
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [
        (1, "circle"),
        (2, "square"),
        (3, "triangle"),
    ]
    assert sorted(coco.getImgIds()) == [1, 2]
    assert coco.loadImgs(1)[0]["file_name"] == "first.png"

    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    # The ignore box is left out; rectangle and triangle keep their polygons, box and labelme area.
    assert [a["category_id"] for a in first] == [2, 3]
    rect, tri = first
    assert rect["segmentation"] == [[10.0, 10.0, 30.0, 10.0, 30.0, 20.0, 10.0, 20.0]]
    assert rect["bbox"] == [10.0, 10.0, 21.0, 11.0] and rect["area"] == 231.0 and rect["iscrowd"] == 0
    assert tri["area"] == ds.annotations[1].area
    for ann in first:
        # pycocotools rasterises polygons by pixel centres, labelme's Pillow fill includes the edge pixels:
        # the two agree up to the outline.
        assert abs(int(coco.annToMask(ann).sum()) - ann["area"]) <= 2 * (ann["bbox"][2] + ann["bbox"][3])

    second = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert [a["category_id"] for a in second] == [1, 2]
    grouped, point = second
    # Circle + rectangle with one group_id are one object, as labelme2coco merges them: two polygons.
    assert len(grouped["segmentation"]) == 2
    union = shape_mask(H, W, "circle", [[20, 20], [28, 20]]) | shape_mask(
        H, W, "rectangle", [[40, 30], [50, 40]]
    )
    assert grouped["area"] == float(union.sum())
    assert grouped["bbox"] == [12.0, 12.0, 39.0, 29.0]
    # A point has no outline: its labelme-drawn disc goes out as RLE, exactly.
    assert isinstance(point["segmentation"], dict)
    assert int(coco.annToMask(point).sum()) == point["area"] == ds.annotations[5].area

    val = COCO(str(out / "annotations" / "instances_val.json"))
    assert val.getImgIds() == [3] and val.getAnnIds() == []


def test_coco_mask_shapes_go_out_as_rle(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from backend.datasets.export import rle_json

    ds_dir = tmp_path / "ds"
    mask = np.zeros((H, W), dtype=bool)
    mask[5:15, 3:9] = True
    mask[30:33, 40:60] = True
    rle = rle_json(mask)
    ann = make_ann(1, 1, "circle", "mask", [[3, 5], [59, 32]], mask_rle=rle)
    rec = ImageRecord(id=1, file_name=write_image(ds_dir, "m.png"), source="m.png", width=W, height=H)
    ds = CanonicalDataset(classes=CLASSES, tasks=[], images=[rec], annotations=[ann])
    export_coco(ds, ds_dir, tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "annotations" / "instances_train.json"))
    (out,) = coco.loadAnns(coco.getAnnIds())
    assert out["segmentation"] == rle
    assert (coco.annToMask(out).astype(bool) == mask).all()
    assert out["area"] == float(mask.sum()) == 60 + 60 and out["bbox"] == [3.0, 5.0, 57.0, 28.0]


def test_coco_image_level_only_dataset_is_valid(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    ds_dir = tmp_path / "ds"
    recs = [
        ImageRecord(
            id=i,
            file_name=write_image(ds_dir, f"{i}.png"),
            source=f"{i}.png",
            width=W,
            height=H,
            tags=[CLASSES[i % 3]],
        )
        for i in range(1, 4)
    ]
    ds = CanonicalDataset(classes=CLASSES, tasks=[Task.classification], images=recs, annotations=[])
    export_coco(ds, ds_dir, tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "annotations" / "instances_train.json"))
    assert len(coco.getImgIds()) == 3 and coco.getAnnIds() == [] and len(coco.getCatIds()) == 3
    assert coco.loadImgs(1)[0]["tags"] == ["square"]


# ------------------------------------------------------------------------------------------- ImageNet


def folder_dataset(tmp_path: Path) -> tuple[CanonicalDataset, Path]:
    """An image-folder style dataset: one tag per image, a val split."""
    src = tmp_path / "folders"
    make_image_folder(src, per_class=2, splits=True)
    ds_dir = tmp_path / "ds"
    (ds_dir / "images").mkdir(parents=True)
    recs: list[ImageRecord] = []
    for i, path in enumerate(sorted(src.rglob("*.png")), start=1):
        shutil.copyfile(path, ds_dir / "images" / f"{i:06d}.png")
        split, label = path.parent.parent.name, path.parent.name
        recs.append(
            ImageRecord(
                id=i,
                file_name=f"images/{i:06d}.png",
                source=str(path.relative_to(src)),
                width=48,
                height=48,
                split="val" if split == "val" else "train",
                tags=[label],
            )
        )
    return CanonicalDataset(classes=CLASSES, tasks=[Task.classification], images=recs, annotations=[]), ds_dir


def test_imagenet_layout_and_filelists(tmp_path: Path) -> None:
    ds, ds_dir = folder_dataset(tmp_path)
    out = tmp_path / "inet"
    export_imagenet(ds, ds_dir, out)
    assert (out / "classes.txt").read_text() == "circle\nsquare\ntriangle\n"
    train = (out / "meta" / "train.txt").read_text().splitlines()
    val = (out / "meta" / "val.txt").read_text().splitlines()
    assert sorted(train) == ["circle/circle_0.png 0", "square/square_0.png 1", "triangle/triangle_0.png 2"]
    assert sorted(val) == ["circle/circle_1.png 0", "square/square_1.png 1", "triangle/triangle_1.png 2"]
    for split, lines in (("train", train), ("val", val)):
        for line in lines:
            rel, label = line.rsplit(" ", 1)
            assert (out / split / rel).is_file()
            assert rel.split("/")[0] == CLASSES[int(label)]


def test_imagenet_refuses_images_without_exactly_one_tag(tmp_path: Path) -> None:
    ds, ds_dir = folder_dataset(tmp_path)
    ds.images[0].tags = ["circle", "square"]
    ds.images[1].tags = []
    with pytest.raises(
        ValueError, match=r"exactly one image-level class.*2 images do not.*\(2 tags\).*\(0 tags\)"
    ):
        export_imagenet(ds, ds_dir, tmp_path / "inet")


# ------------------------------------------------------------------------------------------------ zip


def test_zip_is_built_once_and_cached(tiny: tuple[CanonicalDataset, Path], tmp_path: Path) -> None:
    ds, ds_dir = tiny
    cache = tmp_path / "cache"
    calls: list[str] = []

    def counting(d: CanonicalDataset, src: Path, out: Path) -> None:
        calls.append("voc")
        VOC.write(d, src, out)

    voc = dataclasses.replace(VOC, write=counting)
    path = build_export_zip(voc, ds, ds_dir, cache)
    assert path == cache / "voc.zip" and calls == ["voc"]
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert zf.getinfo("JPEGImages/first.jpg").compress_type == zipfile.ZIP_STORED
    assert {
        "class_names.txt",
        "SegmentationClass/first.png",
        "Annotations/third.xml",
        "ImageSets/Segmentation/val.txt",
    } <= names
    assert build_export_zip(voc, ds, ds_dir, cache) == path
    assert calls == ["voc"] and (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    assert sorted(p.name for p in cache.iterdir()) == ["voc.zip"]  # no temporary folders left behind


def test_zip_rejects_unknown_format_and_leaves_nothing_on_failure(
    tiny: tuple[CanonicalDataset, Path], tmp_path: Path
) -> None:
    ds, ds_dir = tiny
    with pytest.raises(KeyError, match="'yolo' is not one of voc, coco, imagenet, icdar"):
        get_export_format("yolo")
    with pytest.raises(ValueError, match="exactly one image-level class"):
        build_export_zip(get_export_format("imagenet"), ds, ds_dir, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


# ------------------------------------------------------------------------------------------- registry


def test_the_registry_lists_voc_and_coco_then_each_tasks_own_layouts() -> None:
    """VOC and COCO take any dataset; ImageNet and ICDAR come from the tasks that declare them, and each
    refuses a dataset that does not serve its task with a sentence naming what it needs."""
    assert list(EXPORTS) == ["voc", "coco", "imagenet", "icdar"]
    assert all(isinstance(f, ExportFormat) for f in EXPORTS.values())
    assert EXPORTS["imagenet"].task == "classification" and EXPORTS["icdar"].task == "text_detection"
    for fmt in EXPORTS.values():
        assert fmt.refusal([fmt.task] if fmt.task else []) is None, fmt.name
    assert EXPORTS["voc"].refusal([]) is None and EXPORTS["coco"].refusal([]) is None
    assert EXPORTS["icdar"].refusal(["classification"]) == (
        "ICDAR 2015 needs words: text polygons (labelled text, or ### for don't-care)"
    )
    assert EXPORTS["imagenet"].refusal(["text_detection"]) == (
        "ImageNet needs exactly one image-level class per image"
    )
