"""One folder of images per class (torchvision's ImageFolder), optionally under ``train/ val/ test/``
(ImageNet style). Classes are the folder names, sorted as ImageFolder sorts them; images nested deeper
inside a class folder belong to that class."""

from __future__ import annotations

from pathlib import Path

from backend.datasets.canonical import CanonicalDataset, ImportReport, Split
from backend.datasets.formats.common import (
    Builder,
    check_label,
    rel,
    split_from_name,
    summary,
    visible_entries,
    walk_files,
)
from backend.datasets.images import is_image_name


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Read class folders (or split folders of class folders) under ``root``."""
    folders = [p for p in visible_entries(root) if p.is_dir() and not p.is_symlink()]
    split_dirs = [p for p in folders if split_from_name(p.name)]
    if split_dirs and len(split_dirs) != len(folders):
        others = [p.name for p in folders if p not in split_dirs]
        report.error(
            "folder_layout_mixed",
            f"The upload mixes split folders ({summary([p.name for p in split_dirs])}) "
            f"with class folders ({summary(others)}); put every class folder inside a split folder, "
            "or use no split folders.",
            file=others[0],
        )
        return Builder(out_dir, report).dataset([], split_source="seeded")
    # (split, class folder) pairs
    pairs: list[tuple[Split, Path]] = []
    if split_dirs:
        for split_dir in split_dirs:
            split = split_from_name(split_dir.name) or "train"
            pairs += [(split, p) for p in visible_entries(split_dir) if p.is_dir() and not p.is_symlink()]
    else:
        pairs = [("train", p) for p in folders]
    _warn_loose(root, [root, *split_dirs], report)
    classes = sorted({p.name for _, p in pairs})
    classes = [c for c in classes if check_label(report, c, c + "/", field="folder")]
    builder = Builder(out_dir, report)
    ignored: list[str] = []
    for split, folder in sorted(pairs, key=lambda sp: (sp[1].name, sp[0])):
        if folder.name not in classes:
            continue
        for path in walk_files(folder):
            if not is_image_name(path):
                ignored.append(rel(root, path))
                continue
            builder.add_image(path, rel(root, path), split=split, tags=[folder.name])
    if ignored:
        report.warn(
            "file_ignored",
            f"{len(ignored)} files are not images and were left out: {summary(ignored)}.",
            file=ignored[0],
        )
    return builder.dataset(classes, split_source="source" if split_dirs else "seeded")


def _warn_loose(root: Path, folders: list[Path], report: ImportReport) -> None:
    """Images outside any class folder have no class: say so rather than guess one."""
    loose = [rel(root, p) for f in folders for p in visible_entries(f) if p.is_file() and is_image_name(p)]
    if loose:
        report.warn(
            "image_unlabelled",
            f"{len(loose)} images are not inside a class folder and were left out: {summary(loose)}.",
            file=loose[0],
        )
