"""A segmenter's wrong pixels on a dataset image: its predicted mask (from the inference lane) against the
image's labels drawn as training draws them (``label_maps``), painted over a dimmed copy of the picture.

For one class: the pixels of that class the model missed (false negatives, orange) and the pixels it
painted with that class wrongly (false positives, blue). For one cell of the confusion matrix: the pixels
of the true class painted as the predicted one (purple). Pixels labelled ``__ignore__`` never count, as in
the metrics, so the counts are the confusion matrix's for that image."""

from __future__ import annotations

import base64
import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from backend.datasets.canonical import IGNORE_INDEX, CanonicalDataset
from backend.datasets.rasterize import label_maps

FALSE_NEGATIVE = (230, 159, 0)  # Okabe-Ito orange
FALSE_POSITIVE = (0, 114, 178)  # Okabe-Ito blue
CELL = (204, 121, 167)  # Okabe-Ito purple
BACKGROUND = "_background_"


def truth_in_model_classes(
    canonical: CanonicalDataset, image_id: int, class_names: list[str]
) -> NDArray[np.int64]:
    """The image's class map with each value the model's class index (``IGNORE_INDEX`` kept; a class the
    model does not know counts as ignored)."""
    record = next(i for i in canonical.images if i.id == image_id)
    anns = [a for a in canonical.annotations if a.image_id == image_id]
    cls, _ = label_maps(record.height, record.width, anns)
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    table[0] = class_names.index(BACKGROUND) if BACKGROUND in class_names else 0
    for i, name in enumerate(canonical.classes):
        if name in class_names:
            table[i + 1] = class_names.index(name)
    return table[cls]


def predicted_mask(mask_png: str) -> NDArray[np.int64]:
    """The inference lane's palette PNG (value = the model's class index) as an array."""
    with Image.open(io.BytesIO(base64.b64decode(mask_png))) as mask:
        return np.asarray(mask, dtype=np.int64)


def draw_errors(
    picture: Image.Image,
    truth: NDArray[np.int64],
    pred: NDArray[np.int64],
    *,
    class_index: int | None = None,
    cell: tuple[int, int] | None = None,
) -> tuple[Image.Image, dict[str, int]]:
    """The picture, dimmed, with the wrong pixels painted; and how many of each there are."""
    if truth.shape != pred.shape:
        raise ValueError(f"the labels are {truth.shape}, the prediction {pred.shape}")
    counted = truth != IGNORE_INDEX
    rgb = np.asarray(picture.convert("RGB"), dtype=np.uint16)
    grey = rgb.mean(axis=2, keepdims=True)
    out = ((grey * 0.55 + 255 * 0.45) * np.ones((1, 1, 3))).astype(np.uint8)
    counts: dict[str, int] = {}
    if class_index is not None:
        fn = counted & (truth == class_index) & (pred != class_index)
        fp = counted & (pred == class_index) & (truth != class_index)
        out[fn] = FALSE_NEGATIVE
        out[fp] = FALSE_POSITIVE
        counts = {"false_negative_pixels": int(fn.sum()), "false_positive_pixels": int(fp.sum())}
    if cell is not None:
        hit = counted & (truth == cell[0]) & (pred == cell[1])
        out[hit] = CELL
        counts["cell_pixels"] = int(hit.sum())
    return Image.fromarray(out), counts
