"""Images with their labels drawn on, for the browser: masks tinted in each class's VOC colour, outlines,
boxes and class names; JPEG thumbnails cached beside the dataset."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from backend.datasets.canonical import Annotation, CanonicalDataset, ImageRecord
from backend.datasets.export import flatten_alpha, voc_colormap
from backend.datasets.rasterize import label_maps
from backend.files import atomic_write_bytes

ALPHA_256 = 115  # mask tint opacity (45 %, in 256ths): the image stays readable under the colour
THUMB_DIR = Path(".cache") / "thumbs"
THUMB_QUALITY = 85
COLOURS: NDArray[np.uint8] = voc_colormap()

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def find_image(ds: CanonicalDataset, image_id: int) -> ImageRecord:
    for rec in ds.images:
        if rec.id == image_id:
            return rec
    raise KeyError(f"no image {image_id} in this dataset")


UPSCALE_LIMIT = 4  # small images are drawn larger so that class names stay readable, at most this much


def display_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """The size to draw at: the image's own, or scaled to fit ``max_size`` (up by at most 4x for small
    images, so labels drawn in a fixed-size font do not cover them)."""
    if max_size is None or max(width, height) == max_size:
        return width, height
    scale = min(max_size / max(width, height), float(UPSCALE_LIMIT))
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_rgb(path: Path, rec: ImageRecord, size: tuple[int, int]) -> Image.Image:
    """The image as RGB at ``size``; JPEGs are decoded at a reduced scale when that suffices."""
    with Image.open(path) as img:
        img.draft("RGB", size)  # no-op for non-JPEG; saves most of the decode for small thumbnails
        rgb = flatten_alpha(img)
    # Annotations are in the record's pixel grid; a source that differs is stretched onto it.
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR)


def outline(ins: NDArray[np.int32]) -> NDArray[np.bool_]:
    """Pixels of a labelled region whose right or lower neighbour belongs to another region."""
    edge = np.zeros(ins.shape, dtype=bool)
    dx = ins[:, 1:] != ins[:, :-1]
    dy = ins[1:, :] != ins[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge &= ins != 0
    return edge


def tint(img: Image.Image, cls: NDArray[np.uint8], ins: NDArray[np.int32]) -> Image.Image:
    """Blend class colours over labelled pixels and draw region outlines in full colour."""
    arr = np.array(img, dtype=np.uint8)
    # Integer blend on the labelled pixels only: no full-size float copies of large images.
    sel = cls != 0
    pix = arr[sel].astype(np.uint16)
    colour = COLOURS[cls[sel]].astype(np.uint16)
    arr[sel] = ((pix * (256 - ALPHA_256) + colour * ALPHA_256 + 128) >> 8).astype(np.uint8)
    edge = outline(ins)
    arr[edge] = COLOURS[cls[edge]]
    return Image.fromarray(arr)


def scaled_maps(
    rec: ImageRecord, anns: list[Annotation], size: tuple[int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
    """Class and instance maps drawn at the record's size (labelme-exact), then scaled to ``size``."""
    cls, ins = label_maps(rec.height, rec.width, anns)
    if size == (rec.width, rec.height):
        return cls, ins
    cls_small = np.asarray(Image.fromarray(cls).resize(size, Image.Resampling.NEAREST))
    ins_small = np.asarray(Image.fromarray(ins).resize(size, Image.Resampling.NEAREST))
    return cls_small, ins_small.astype(np.int32)


def label_font() -> Font:
    return ImageFont.load_default()


def draw_text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: tuple[int, int, int], font: Font
) -> None:
    """A class name on a filled tag; drawn as plain text, so any characters are safe."""
    try:
        left, top, right, bottom = draw.textbbox(xy, text, font=font)
    except UnicodeEncodeError:  # the bitmap fallback font is Latin-1 only
        text = text.encode("latin-1", "replace").decode("latin-1")
        left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=fill)
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    draw.text(xy, text, fill=(0, 0, 0) if luminance > 140 else (255, 255, 255), font=font)


def draw_boxes(
    img: Image.Image, anns: list[Annotation], classes: list[str], scale: tuple[float, float]
) -> None:
    """Each labelled shape's box and class name (ignore regions are shown by their tint alone)."""
    draw = ImageDraw.Draw(img)
    font = label_font()
    sx, sy = scale
    for ann in anns:
        if ann.ignore or not 0 < ann.category_id <= len(classes):
            continue
        x, y, w, h = ann.bbox
        colour = tuple(int(c) for c in COLOURS[ann.category_id])
        rgb = (colour[0], colour[1], colour[2])
        box = [x * sx, y * sy, max(x * sx, (x + w) * sx - 1), max(y * sy, (y + h) * sy - 1)]
        draw.rectangle(box, outline=rgb, width=1)
        draw_text(draw, (box[0] + 2, max(0.0, box[1] - 12)), classes[ann.category_id - 1], rgb, font)


def render_overlay(
    ds_dir: Path, ds: CanonicalDataset, image_id: int, *, max_size: int | None = None
) -> Image.Image:
    """The image with its labels drawn on, at most ``max_size`` pixels on its longer side."""
    rec = find_image(ds, image_id)
    size = display_size(rec.width, rec.height, max_size)
    img = load_rgb(ds_dir / rec.file_name, rec, size)
    anns = [a for a in ds.annotations if a.image_id == image_id]
    if not anns:
        return img
    cls, ins = scaled_maps(rec, anns, size)
    out = tint(img, cls, ins)
    draw_boxes(out, anns, ds.classes, (size[0] / rec.width, size[1] / rec.height))
    return out


def render_image(
    ds_dir: Path, ds: CanonicalDataset, image_id: int, *, max_size: int | None = None, overlay: bool = True
) -> Image.Image:
    """The image at most ``max_size`` pixels on its longer side, with its labels drawn on or plain."""
    if overlay:
        return render_overlay(ds_dir, ds, image_id, max_size=max_size)
    rec = find_image(ds, image_id)
    return load_rgb(ds_dir / rec.file_name, rec, display_size(rec.width, rec.height, max_size))


def thumbnail(
    ds_dir: Path, ds: CanonicalDataset, image_id: int, size: int = 256, overlay: bool = True
) -> bytes:
    """A JPEG at most ``size`` pixels on its longer side, cached under ``ds_dir/.cache/thumbs``."""
    cache = ds_dir / THUMB_DIR / f"{int(image_id)}_{int(size)}_{'overlay' if overlay else 'plain'}.jpg"
    if cache.exists():
        return cache.read_bytes()
    buf = io.BytesIO()
    render_image(ds_dir, ds, image_id, max_size=size, overlay=overlay).save(
        buf, format="JPEG", quality=THUMB_QUALITY
    )
    data = buf.getvalue()
    atomic_write_bytes(cache, data, durable=False)  # concurrent requests may race to fill one entry
    return data
