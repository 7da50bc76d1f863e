"""Uploads: streamed to disk under a size cap before anything parses them, and zip archives checked
entry by entry before (and while) they are extracted."""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fastapi import Request
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, FileTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

from backend.errors import StudioError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 200_000
    max_total_bytes: int = 20 << 30
    max_entry_ratio: float = 200.0  # uncompressed / compressed, for entries big enough to matter
    ratio_floor_bytes: int = 1 << 20


@dataclass
class ReceivedForm:
    path: Path
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class UploadRejected(StudioError):
    """A 4xx about the uploaded file, naming it (and the entry inside it, where there is one)."""

    def __init__(self, status: int, code: str, message: str, entry: str | None = None) -> None:
        extra = {"entry": entry} if entry else {}
        super().__init__(status, message, code, extra=extra)


def _check_request(request: Request, max_bytes: int, file_field: str) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadRejected(
            413, "upload_too_large", f"the upload is {int(declared)} bytes; the limit is {max_bytes}"
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadRejected(
            415, "not_multipart", f"send the file as multipart/form-data with a {file_field!r} field"
        )


def _text_targets(parser: StreamingFormDataParser, text_fields: tuple[str, ...]) -> dict[str, ValueTarget]:
    values = {name: ValueTarget(validator=MaxSizeValidator(256 * 1024)) for name in text_fields}
    for name, value in values.items():
        parser.register(name, value)
    return values


async def _stream(
    request: Request,
    parser: StreamingFormDataParser,
    max_bytes: int,
    file_field: str,
    cleanup: Callable[[], None],
) -> None:
    try:
        async for chunk in request.stream():
            parser.data_received(chunk)
    except ValidationError as exc:
        cleanup()
        raise UploadRejected(
            413, "upload_too_large", f"{file_field}: the upload is larger than the limit of {max_bytes} bytes"
        ) from exc
    except Exception as exc:
        cleanup()
        raise UploadRejected(400, "upload_malformed", f"the multipart body could not be read: {exc}") from exc


def _base_name(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).name


async def receive_upload(
    request: Request, dest: Path, max_bytes: int, text_fields: tuple[str, ...], file_field: str = "file"
) -> ReceivedForm:
    """Stream the multipart part ``file_field`` into ``dest`` (413 once it passes ``max_bytes``), keeping
    the small text fields named in ``text_fields``."""
    _check_request(request, max_bytes, file_field)
    dest.parent.mkdir(parents=True, exist_ok=True)
    parser = StreamingFormDataParser(headers=request.headers)
    target = FileTarget(str(dest), validator=MaxSizeValidator(max_bytes))
    parser.register(file_field, target)
    values = _text_targets(parser, text_fields)
    await _stream(request, parser, max_bytes, file_field, lambda: dest.unlink(missing_ok=True))
    if not target.multipart_filename or not dest.exists():
        dest.unlink(missing_ok=True)
        raise UploadRejected(422, "file_missing", f"{file_field}: the form has no {file_field!r} file part")
    fields = {name: v.value.decode("utf-8", "replace") for name, v in values.items() if v.value}
    return ReceivedForm(dest, _base_name(target.multipart_filename), fields)


class _EachFile(BaseTarget):  # type: ignore[misc]
    """Every part of one field into its own numbered file in ``folder``; parts past ``max_count`` are
    counted, not kept."""

    def __init__(self, folder: Path, max_bytes: int, max_count: int) -> None:
        super().__init__(validator=MaxSizeValidator(max_bytes))
        self.folder, self.max_count = folder, max_count
        self.files: list[tuple[Path, str]] = []
        self.count = 0
        self._fh: BinaryIO | None = None

    def on_start(self) -> None:
        self.count += 1
        if self.count <= self.max_count:
            path = self.folder / f"{self.count}.upload"
            self._fh = path.open("wb")
            self.files.append((path, _base_name(self.multipart_filename or f"image {self.count}")))

    def on_data_received(self, chunk: bytes) -> None:
        if self._fh is not None:
            self._fh.write(chunk)

    def on_finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def receive_files(
    request: Request, folder: Path, max_bytes: int, max_count: int, file_field: str
) -> list[tuple[Path, str]]:
    """Stream every ``file_field`` part into ``folder`` (the caller removes it): ``(path, name sent)`` in
    the order sent; 413 past ``max_bytes`` in all or past ``max_count`` parts, 422 for none."""
    _check_request(request, max_bytes, file_field)
    folder.mkdir(parents=True, exist_ok=True)
    parser = StreamingFormDataParser(headers=request.headers)
    target = _EachFile(folder, max_bytes, max_count)
    parser.register(file_field, target)
    await _stream(request, parser, max_bytes, file_field, lambda: shutil.rmtree(folder, ignore_errors=True))
    if target.count > max_count:
        raise UploadRejected(
            413, "batch_too_large", f"{file_field}: {target.count} files sent; the limit is {max_count}"
        )
    if not target.files:
        raise UploadRejected(422, "file_missing", f"{file_field}: the form has no {file_field!r} file part")
    return target.files


def _entry_problem(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    name = info.filename
    posix = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "archive_absolute_path", "an absolute path"
    if ".." in posix.parts:
        return "archive_path_traversal", "a path that climbs out with '..'"
    if "\x00" in name:
        return "archive_bad_name", "a name with a NUL byte"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "archive_symlink", "a symbolic link"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
        return "archive_special_file", "a special file"
    if info.flag_bits & 0x1:
        return "archive_encrypted", "an encrypted entry"
    if not info.is_dir() and posix.name.lower().endswith(ARCHIVE_SUFFIXES):
        return "archive_nested", "an archive inside the archive (unpack it first)"
    return None


def check_archive(path: Path, display: str, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """Read a zip's directory and refuse it (422 naming the entry) before a byte is extracted."""
    if not zipfile.is_zipfile(path):
        raise UploadRejected(422, "not_a_zip", f"{display} is not a zip archive")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRejected(
            422, "archive_corrupt", f"{display} is not a readable zip archive: {exc}"
        ) from exc
    if len(infos) > limits.max_entries:
        raise UploadRejected(
            422,
            "archive_too_many_entries",
            f"{display} has {len(infos)} entries; the limit is {limits.max_entries}",
        )
    total = 0
    for info in infos:
        problem = _entry_problem(info)
        if problem:
            code, what = problem
            raise UploadRejected(
                422, code, f"{display}: entry {info.filename!r} is {what}", entry=info.filename
            )
        total += info.file_size
        if info.file_size >= limits.ratio_floor_bytes and info.file_size > limits.max_entry_ratio * max(
            info.compress_size, 1
        ):
            raise UploadRejected(
                422,
                "archive_ratio",
                f"{display}: entry {info.filename!r} expands {info.file_size} bytes from "
                f"{info.compress_size} (over {limits.max_entry_ratio:.0f}x): refused as a zip bomb",
                entry=info.filename,
            )
    if total > limits.max_total_bytes:
        raise UploadRejected(
            422,
            "archive_too_large",
            f"{display} expands to {total} bytes; the limit is {limits.max_total_bytes}",
        )
    return infos


def safe_extract(path: Path, dest: Path, display: str, limits: ArchiveLimits) -> int:
    """Extract a checked zip into ``dest``, counting bytes as they are written (headers can lie)."""
    infos = check_archive(path, display, limits)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            target = (root / info.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(root):
                raise UploadRejected(
                    422,
                    "archive_path_traversal",
                    f"{display}: entry {info.filename!r} leaves the folder",
                    entry=info.filename,
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            entry_written = 0
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(CHUNK):
                    entry_written += len(chunk)
                    written += len(chunk)
                    if entry_written > info.file_size or written > limits.max_total_bytes:
                        raise UploadRejected(
                            422,
                            "archive_size_lies",
                            f"{display}: entry {info.filename!r} holds more than it declares",
                            entry=info.filename,
                        )
                    out.write(chunk)
    return written


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def limits_from(max_entries: int, max_total_bytes: int) -> ArchiveLimits:
    return ArchiveLimits(max_entries=max_entries, max_total_bytes=max_total_bytes)
