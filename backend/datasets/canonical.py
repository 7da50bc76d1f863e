"""The canonical dataset: every import is normalised once into this form, stored beside its images as
``annotations.json``; VOC, COCO and ImageNet exports, thumbnails and training all read it.

Class indices are one convention everywhere:
- ``classes`` lists the foreground classes in order; class ``classes[i]`` is COCO category ``i + 1`` and
  segmentation mask value ``i + 1``; 0 is background, 255 (``IGNORE_INDEX``) is ignore.
- For classification the label of ``classes[i]`` is ``i``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

CANONICAL_FILE = "annotations.json"
IMAGES_DIR = "images"
FORMAT_VERSION = 1
IGNORE_INDEX = 255
BACKGROUND = "_background_"
IGNORE_LABEL = "__ignore__"
SPLITS = ("train", "val", "test")
MAX_LABEL_LENGTH = 100
# Letters, digits and a few separators from any script; no control characters, quotes or angle brackets.
LABEL_PATTERN = re.compile(r"^[\w][\w .,:;+\-/()#&'@]*$", re.UNICODE)

Split = Literal["train", "val", "test"]


class Task(StrEnum):
    classification = "classification"
    semantic_segmentation = "semantic_segmentation"
    object_detection = "object_detection"
    instance_segmentation = "instance_segmentation"
    text_detection = "text_detection"


class ShapeType(StrEnum):
    polygon = "polygon"
    rectangle = "rectangle"
    circle = "circle"
    point = "point"
    line = "line"
    linestrip = "linestrip"
    mask = "mask"


class Annotation(BaseModel):
    """One labelled shape. ``points`` keep the source geometry (labelme's convention: a rectangle is two
    corners, a circle its centre and a point on its rim); ``segmentation`` is the polygon it covers
    (circles as a polygon) and ``bbox`` is ``[x, y, w, h]`` in pixels, both clipped to the image."""

    model_config = ConfigDict(extra="forbid")

    id: int
    image_id: int
    category_id: int = Field(description="1-based index into classes; 0 for ignore regions")
    shape_type: ShapeType
    points: list[list[float]]
    segmentation: list[list[float]] = Field(
        default_factory=list, description="COCO polygons [[x1,y1,x2,y2,...]]"
    )
    mask_rle: dict[str, Any] | None = Field(default=None, description="COCO RLE for shape_type 'mask'")
    bbox: list[float] = Field(min_length=4, max_length=4)
    area: float = Field(ge=0, description="Pixel area of the rasterised shape")
    group_id: int | None = None
    iscrowd: int = 0
    ignore: bool = Field(default=False, description="__ignore__ label or ICDAR '###': do not care")
    text: str | None = Field(default=None, description="Transcription, for text detection")
    attributes: dict[str, Any] = Field(default_factory=dict)


class ImageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    file_name: str = Field(description="Path under the dataset folder, e.g. images/000001.jpg")
    source: str = Field(description="Where it came from in the upload (shown in findings)")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    split: Split = "train"
    tags: list[str] = Field(default_factory=list, description="Image-level classes (labelme flags, folders)")
    problems: list[str] = Field(default_factory=list, description="Codes of findings about this image")


class Category(BaseModel):
    id: int
    name: str


class CanonicalDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    classes: list[str]
    tasks: list[Task]
    images: list[ImageRecord]
    annotations: list[Annotation]
    split_source: Literal["source", "seeded", "manual"] = "seeded"

    def categories(self) -> list[Category]:
        return [Category(id=i + 1, name=n) for i, n in enumerate(self.classes)]

    def save(self, folder: Path) -> None:
        (folder / CANONICAL_FILE).write_text(self.model_dump_json())

    @classmethod
    def load(cls, folder: Path) -> CanonicalDataset:
        return cls.model_validate(json.loads((folder / CANONICAL_FILE).read_text()))


class Finding(BaseModel):
    """One problem found on import. Errors stop the import; warnings let it land and stay visible."""

    level: Literal["error", "warning"]
    code: str = Field(description="Stable machine name, e.g. 'polygon_too_few_points'")
    message: str = Field(description="A sentence naming the file and, where there is one, shape and field")
    file: str | None = None
    shape: int | None = Field(default=None, description="Index of the shape in its file")
    field: str | None = None
    skipped: bool = Field(
        default=False,
        description="An error in one shape, left out because the import was told to skip bad shapes",
    )


class ImportReport(BaseModel):
    """What an import found. Made with ``skip_bad_shapes``, an error that names a shape leaves that shape
    out as a warning (``skipped``) instead of stopping the import; errors about a file, an image or the
    project still stop it."""

    findings: list[Finding] = Field(default_factory=list)
    _skip_bad_shapes: bool = PrivateAttr(default=False)

    @classmethod
    def skipping_bad_shapes(cls, skip: bool = True) -> ImportReport:
        report = cls()
        report._skip_bad_shapes = skip
        return report

    def error(self, code: str, message: str, **where: Any) -> None:
        if self._skip_bad_shapes and where.get("shape") is not None:
            message = f"{message.rstrip('.')}; the shape was skipped."
            self.findings.append(Finding(level="warning", code=code, message=message, skipped=True, **where))
            return
        self.findings.append(Finding(level="error", code=code, message=message, **where))

    @property
    def skips_bad_shapes(self) -> bool:
        return self._skip_bad_shapes

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.skipped]

    def warn(self, code: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(level="warning", code=code, message=message, **where))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


class ImportFailed(Exception):
    """An import that must not land; carries the report whose errors say why."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        first = report.errors[0].message if report.errors else "import failed"
        more = len(report.errors) - 1
        super().__init__(first + (f" (and {more} more errors)" if more > 0 else ""))
