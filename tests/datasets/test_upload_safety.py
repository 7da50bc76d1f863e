"""Uploads are capped while they stream, and zip archives are refused before extraction when unsafe."""

from __future__ import annotations

import random
import stat
import zipfile
from pathlib import Path

import pytest

from backend.datasets.upload import ArchiveLimits, UploadRejected, check_archive, safe_extract

LIMITS = ArchiveLimits(
    max_entries=50, max_total_bytes=5 << 20, max_entry_ratio=50, ratio_floor_bytes=64 << 10
)


def _zip(path: Path, entries: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _encrypted(path: Path) -> Path:
    _zip(path, {"a.json": b"{}"})
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag bit in the local header and in the central directory entry.
    data[6] |= 0x1
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda p: p.write_bytes(b"not a zip at all"), "not_a_zip"),
        (lambda p: _zip(p, {"/etc/cron.d/x": b"x"}), "archive_absolute_path"),
        (lambda p: _zip(p, {"../outside.json": b"{}"}), "archive_path_traversal"),
        (lambda p: _zip(p, {"a/../../outside.json": b"{}"}), "archive_path_traversal"),
        (lambda p: _zip(p, {"C:/windows/x.json": b"{}"}), "archive_absolute_path"),
        (lambda p: _zip(p, {"a.json": b"{}"}, symlink="link.jpg"), "archive_symlink"),
        (lambda p: _zip(p, {"inner.zip": b"PK"}), "archive_nested"),
        (lambda p: _zip(p, {"data.tar.gz": b"x"}), "archive_nested"),
        (lambda p: _zip(p, {f"f{i}.txt": b"x" for i in range(60)}), "archive_too_many_entries"),
        (lambda p: _zip(p, {"bomb.bin": b"\0" * (2 << 20)}), "archive_ratio"),
        (
            lambda p: _zip(p, {f"big{i}.bin": random.Random(i).randbytes(2 << 20) for i in range(3)}),
            "archive_too_large",
        ),
        (_encrypted, "archive_encrypted"),
    ],
)
def test_unsafe_archives_are_refused_naming_the_entry(tmp_path: Path, build: object, code: str) -> None:
    path = tmp_path / "upload.zip"
    build(path)  # type: ignore[operator]
    dest = tmp_path / "out"
    with pytest.raises(UploadRejected) as err:
        safe_extract(path, dest, "project.zip", LIMITS)
    assert err.value.code == code
    assert "project.zip" in str(err.value.detail)
    assert not dest.exists() or not any(dest.rglob("*"))  # nothing extracted


def test_a_safe_archive_extracts_under_its_folder(tmp_path: Path) -> None:
    path = _zip(tmp_path / "ok.zip", {"proj/a.json": b"{}", "proj/sub/b.txt": b"hello"})
    written = safe_extract(path, tmp_path / "out", "ok.zip", LIMITS)
    assert written == 7
    assert (tmp_path / "out/proj/sub/b.txt").read_text() == "hello"
    assert [i.filename for i in check_archive(path, "ok.zip", LIMITS)] == ["proj/a.json", "proj/sub/b.txt"]


def test_an_entry_that_lies_about_its_size_is_stopped(tmp_path: Path) -> None:
    path = _zip(tmp_path / "liar.zip", {"x.bin": b"a" * 1000})
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")  # declared uncompressed size: 10
    path.write_bytes(bytes(data))
    with pytest.raises((UploadRejected, zipfile.BadZipFile)):
        safe_extract(path, tmp_path / "out", "liar.zip", LIMITS)
