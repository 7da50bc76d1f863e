"""The OpenMMLab classification custom-dataset layout: images plus ``train.txt`` / ``val.txt`` /
``test.txt`` with ``relative/path label`` lines and ``classes.txt`` (one class name a line).

A label is an index into ``classes.txt`` or a class name. Paths are looked up under the top folder, then
under ``{split}/``, ``images/`` and ``images/{split}/``. Lists may sit at the top or in ``meta/``. Images
that no list names are left out (the lists define the dataset), with one warning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.datasets.canonical import CanonicalDataset, ImportReport, Split
from backend.datasets.formats.common import (
    Builder,
    check_label,
    inside,
    read_class_list,
    read_text,
    rel,
    summary,
    walk_files,
)
from backend.datasets.images import is_image_name

LIST_NAMES: dict[str, Split] = {"train.txt": "train", "val.txt": "val", "test.txt": "test"}
CLASS_FILES = ("classes.txt", "labels.txt")
LIST_FOLDERS = ("", "meta", "annotations")


@dataclass
class _Entry:
    path: Path
    label: str
    split: Split
    source: str  # "train.txt line 3"


def list_files(root: Path) -> list[tuple[Path, Split]]:
    """The split lists present, from the first folder that has any."""
    for folder in LIST_FOLDERS:
        found = [
            (root / folder / name, split)
            for name, split in LIST_NAMES.items()
            if (root / folder / name).is_file()
        ]
        if found:
            return found
    return []


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Read split lists and the images they name."""
    lists = list_files(root)
    class_file = next((root / n for n in CLASS_FILES if (root / n).is_file()), None)
    if class_file is None:
        class_file = next((root / "meta" / n for n in CLASS_FILES if (root / "meta" / n).is_file()), None)
    given = read_class_list(class_file, rel(root, class_file), report)[0] if class_file else None
    entries: list[_Entry] = []
    seen: dict[Path, str] = {}
    for list_path, split in lists:
        entries += _read_list(root, list_path, split, given, seen, report)
    classes = given if given is not None else _classes_from_labels(entries, report)
    builder = Builder(out_dir, report)
    for entry in entries:
        name = _resolve_label(entry.label, classes)
        if name is None:
            continue  # reported while reading the list
        builder.add_image(
            entry.path,
            rel(root, entry.path),
            split=entry.split,
            tags=[name],
            also=(entry.source.split(" line ")[0],),
        )
    unlisted = [rel(root, p) for p in walk_files(root) if is_image_name(p) and p.resolve() not in seen]
    if unlisted:
        report.warn(
            "image_unlisted",
            f"{len(unlisted)} images are in no split list and were left out: {summary(unlisted)}.",
            file=unlisted[0],
        )
    return builder.dataset(classes, split_source="source")


def _read_list(
    root: Path,
    list_path: Path,
    split: Split,
    given: list[str] | None,
    seen: dict[Path, str],
    report: ImportReport,
) -> list[_Entry]:
    source = rel(root, list_path)
    text = read_text(list_path, source, report)
    if text is None:
        return []
    out: list[_Entry] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {lineno}"
        parts = line.rsplit(maxsplit=1)  # the path may hold spaces; the label never does
        if len(parts) != 2:
            report.error(
                "line_invalid",
                f"{where}: expected 'relative/path label', got {line!r}.",
                file=source,
                field=f"line {lineno}",
            )
            continue
        rel_path, label = parts
        if given is not None and _resolve_label(label, given) is None:
            report.error(
                "label_unknown",
                f"{where}: label {label!r} is not a class index or name from classes.txt.",
                file=source,
                field=f"line {lineno}",
            )
            continue
        if not _stays_inside(root, rel_path.replace("\\", "/")):
            report.error(
                "image_path_outside",
                f"{where}: image {rel_path!r} points outside the upload.",
                file=source,
                field=f"line {lineno}",
            )
            continue
        path = _find(root, list_path.parent, rel_path, split)
        if path is None:
            report.error(
                "image_missing",
                f"{where}: image {rel_path!r} is not in the upload.",
                file=source,
                field=f"line {lineno}",
            )
            continue
        key = path.resolve()
        if key in seen:
            if seen[key].startswith(source + " "):
                report.warn(
                    "duplicate_line",
                    f"{where}: {rel_path!r} is listed again ({seen[key]}); the repeat was skipped.",
                    file=source,
                    field=f"line {lineno}",
                )
            else:
                report.error(
                    "duplicate_file",
                    f"{where}: {rel_path!r} is also listed in {seen[key]}; an image "
                    "must be in one split only.",
                    file=source,
                    field=f"line {lineno}",
                )
            continue
        seen[key] = where
        out.append(_Entry(path, label, split, where))
    return out


def _stays_inside(root: Path, rel_path: str) -> bool:
    return not Path(rel_path).is_absolute() and inside(root, root / rel_path)


def _find(root: Path, list_dir: Path, rel_path: str, split: Split) -> Path | None:
    """The file a list line names, trying the usual data prefixes; None when there is none."""
    rel_path = rel_path.replace("\\", "/")
    if not _stays_inside(root, rel_path):
        return None
    for base in (root, list_dir, root / split, root / "images", root / "images" / split, root / "data"):
        candidate = base / rel_path
        if candidate.is_file() and not candidate.is_symlink() and inside(root, candidate):
            return candidate
    return None


def _resolve_label(label: str, classes: list[str]) -> str | None:
    if label.isdigit():
        index = int(label)
        return classes[index] if index < len(classes) else None
    return label if label in classes else None


def _classes_from_labels(entries: list[_Entry], report: ImportReport) -> list[str]:
    """Without classes.txt: integer labels become names "0".."N", other labels are sorted names."""
    labels = {e.label for e in entries}
    if labels and all(label.isdigit() for label in labels):
        report.warn(
            "classes_missing",
            "There is no classes.txt, so classes are named by their index.",
            file="classes.txt",
        )
        return [str(i) for i in range(max(int(label) for label in labels) + 1)]
    names = sorted(labels)
    bad = {n for n in names if not check_label(report, n, _first(entries, n), field="label")}
    return [n for n in names if n not in bad]


def _first(entries: list[_Entry], label: str) -> str:
    return next(e.source.split(" line ")[0] for e in entries if e.label == label)
