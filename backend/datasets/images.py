"""Safe image handling for every import parser: an allow-list of formats checked by magic bytes, a pixel
limit against decompression bombs, EXIF orientation applied, every colour mode turned into 8-bit RGB, and
the result written under the dataset folder with a name the studio chose (never one from the upload)."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from backend.datasets.canonical import IMAGES_DIR, ImportReport

MAX_IMAGE_PIXELS = 64_000_000  # 64 megapixels: larger than any camera frame we expect to label
MAX_IMAGE_BYTES = 256 * 1024 * 1024
# Set explicitly rather than trusting Pillow's default (about 89 MP), which a later Pillow may change.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# Discovery by extension only decides which files to look at; the format itself is decided by magic bytes.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF")
_SAFE_STEM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


class _Unusable(Exception):
    """An image that cannot be imported; ``code`` is the finding to report."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def sniff_format(head: bytes) -> str | None:
    """The Pillow format name that the first bytes announce, or None when it is not on the allow-list."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    return None


def is_image_name(path: Path | str) -> bool:
    """Whether a file name looks like an image (used to find candidates; content is checked later)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _read(src: Path | bytes) -> bytes:
    if isinstance(src, bytes):
        data = src
    else:
        if src.stat().st_size > MAX_IMAGE_BYTES:
            raise _Unusable("image_too_large", f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
        data = src.read_bytes()
    if len(data) > MAX_IMAGE_BYTES:
        raise _Unusable("image_too_large", f"is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    if not data:
        raise _Unusable("image_unreadable", "is empty")
    return data


def _upright_rgb_jpeg(img: Image.Image, fmt: str) -> bool:
    return fmt == "JPEG" and img.mode == "RGB" and _orientation(img) in (0, 1)


def _open(data: bytes, fmt: str, *, check_only: bool = False) -> tuple[Image.Image, tuple[int, int]]:
    """Open and decode with the one decoder the magic bytes named; bombs and truncation raise.

    With ``check_only``, an upright RGB JPEG (which the caller keeps byte for byte) is decoded at 1/8
    scale: every byte of its scan is still read, so a truncated file still fails, at a fraction of the
    cost. Returns the image and its full size."""
    with warnings.catch_warnings():
        # A warning-sized bomb (between 1x and 2x the limit) must stop the import too, not just log.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise _Unusable("image_too_large", f"has {img.width}x{img.height} pixels, over the limit")
            img.seek(0)
            size = img.size
            if check_only and _upright_rgb_jpeg(img, fmt):
                img.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _Unusable("image_too_large", f"has more than {MAX_IMAGE_PIXELS} pixels") from exc
        except _Unusable:
            raise
        except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError...)
            raise _Unusable("image_unreadable", f"cannot be decoded ({exc})") from exc
    if size[0] <= 0 or size[1] <= 0:
        raise _Unusable("image_unreadable", "has no pixels")
    return img, size


def _png_bit_depth(data: bytes) -> int:
    """Bit depth from the PNG header (Pillow reads 16-bit RGB as 8-bit RGB, hiding it)."""
    return data[24] if len(data) > 24 else 8


def _sixteen_to_rgb(img: Image.Image) -> Image.Image:
    arr = np.asarray(img).astype(np.float64)
    if img.mode in _SIXTEEN_BIT_MODES or arr.max(initial=0) > 255:
        arr = arr / 257.0  # map the 16-bit range onto 8 bits instead of clipping it
    grey = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    return grey.convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        return _sixteen_to_rgb(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels hold arbitrary colours; show them over white as viewers do.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def _describe_mode(img: Image.Image, fmt: str, data: bytes) -> str:
    if fmt == "PNG" and img.mode == "RGB" and _png_bit_depth(data) == 16:
        return "16-bit RGB"
    names = {"L": "grayscale", "1": "black-and-white", "P": "palette", "CMYK": "CMYK", "RGBA": "RGBA"}
    if img.mode in _SIXTEEN_BIT_MODES:
        return f"16-bit grayscale ({img.mode})"
    return f"{names.get(img.mode, img.mode)} ({img.mode})" if img.mode in names else img.mode


def _orientation(img: Image.Image) -> int:
    try:
        value: Any = img.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return 1


def normalise_image(
    src: Path | bytes, source_name: str, dest_dir: Path, stem: str, report: ImportReport
) -> tuple[str, int, int] | None:
    """Check, orient and convert one image and write it as ``dest_dir/images/{stem}.jpg|.png``.

    Returns ``(file name relative to dest_dir, width, height)``, or None (with an error in ``report``)
    when the image cannot be used. The original bytes are kept when they already are an upright 8-bit
    RGB JPEG or PNG; anything else is written as PNG."""
    if not _SAFE_STEM.match(stem):
        raise ValueError(f"unsafe image stem {stem!r}")
    try:
        data = _read(src)
        fmt = sniff_format(data[:16])
        if fmt is None:
            raise _Unusable(
                "image_format_unsupported",
                f"is not a {', '.join(ALLOWED_FORMATS)} image (checked by content)",
            )
        img, size = _open(data, fmt, check_only=True)
    except _Unusable as exc:
        report.error(exc.code, f"Image {source_name} {exc.reason}.", file=source_name)
        return None
    return _write(img, size, data, fmt, source_name, dest_dir, stem, report)


def _write(
    img: Image.Image,
    size: tuple[int, int],
    data: bytes,
    fmt: str,
    source_name: str,
    dest_dir: Path,
    stem: str,
    report: ImportReport,
) -> tuple[str, int, int]:
    keep = fmt in ("JPEG", "PNG")
    if getattr(img, "n_frames", 1) > 1:
        report.warn(
            "image_first_frame",
            f"Image {source_name} has several frames; the first is used.",
            file=source_name,
        )
    orientation = _orientation(img)
    if orientation not in (1, 0):
        img = ImageOps.exif_transpose(img)
        report.warn(
            "exif_rotated",
            f"Image {source_name} was turned upright using its EXIF orientation ({orientation}).",
            file=source_name,
        )
        keep = False
    sixteen = fmt == "PNG" and _png_bit_depth(data) == 16
    if img.mode != "RGB" or sixteen:
        report.warn(
            "image_converted",
            f"Image {source_name} was converted from {_describe_mode(img, fmt, data)} to 8-bit RGB.",
            file=source_name,
            field="mode",
        )
        img = _to_rgb(img)
        keep = False
    folder = dest_dir / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ext = (".jpg" if fmt == "JPEG" else ".png") if keep else ".png"
    target = folder / f"{stem}{ext}"
    if keep:
        target.write_bytes(data)  # lossless and fast: the bytes already are what we would write
    else:
        img.save(target, format="PNG")
    if keep:
        return f"{IMAGES_DIR}/{target.name}", size[0], size[1]
    return f"{IMAGES_DIR}/{target.name}", img.width, img.height


def decode_png_mask(data: bytes) -> NDArray[np.bool_]:
    """A small PNG (labelme's ``mask`` field) as a boolean array; raises ValueError when unusable."""
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ValueError("is not an image")
    try:
        img, _ = _open(data, fmt)
    except _Unusable as exc:
        raise ValueError(exc.reason) from exc
    if img.mode in ("RGB", "RGBA", "P", "LA", "PA"):
        img = img.convert("L")
    return np.asarray(img) > 0


def read_index_mask(data: bytes) -> NDArray[np.uint8]:
    """A label PNG (VOC SegmentationClass / SegmentationObject) as its indices; raises ValueError when it
    is not an indexed (palette or 8-bit grayscale) image."""
    fmt = sniff_format(data[:16])
    if fmt != "PNG":
        raise ValueError("is not a PNG")
    try:
        img, _ = _open(data, fmt)
    except _Unusable as exc:
        raise ValueError(exc.reason) from exc
    if img.mode not in ("P", "L"):
        raise ValueError(f"is a {img.mode} image, not a palette or grayscale one holding class indices")
    return np.asarray(img, dtype=np.uint8)
