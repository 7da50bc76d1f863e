"""An import from upload to landed dataset: extract safely, parse into the canonical form, split, then
move the finished folder into place in one rename. Whatever fails, the staging folder is removed."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.datasets.canonical import CanonicalDataset, ImportFailed, ImportReport
from backend.datasets.splits import SplitRatios, assign_splits, split_findings
from backend.datasets.upload import ArchiveLimits, UploadRejected, remove_tree, safe_extract

Progress = Callable[[float, str], None]


@dataclass
class Landed:
    dataset: CanonicalDataset
    report: ImportReport
    stats: dict[str, Any]
    format: str


def _no_progress(_: float, __: str) -> None:
    return None


def import_archive(
    upload: Path,
    display: str,
    fmt: str,
    staging: Path,
    final_dir: Path,
    *,
    ratios: SplitRatios | None = None,
    seed: int = 0,
    skip_bad_shapes: bool = False,
    limits: ArchiveLimits | None = None,
    progress: Progress = _no_progress,
) -> Landed:
    """Import ``upload`` (a zip) into ``final_dir``; raises ``ImportFailed`` and leaves nothing behind."""
    src = staging / "src"
    try:
        progress(0.05, "extracting")
        try:
            safe_extract(upload, src, display, limits or ArchiveLimits())
        except UploadRejected as exc:
            report = ImportReport()
            report.error(exc.code, str(exc.detail), file=exc.extra.get("entry") or display)
            raise ImportFailed(report) from exc
        return import_folder(
            src,
            fmt,
            staging,
            final_dir,
            ratios=ratios,
            seed=seed,
            skip_bad_shapes=skip_bad_shapes,
            progress=progress,
        )
    finally:
        remove_tree(staging)


def import_folder(
    src: Path,
    fmt: str,
    staging: Path,
    final_dir: Path,
    *,
    ratios: SplitRatios | None = None,
    seed: int = 0,
    skip_bad_shapes: bool = False,
    progress: Progress = _no_progress,
) -> Landed:
    """Import the project in folder ``src`` (only read) into ``final_dir``, staging under ``staging``;
    ``skip_bad_shapes`` leaves out each shape with an error (listed in the report) instead of failing."""
    from backend.datasets.formats import detect_format, parse_upload
    from backend.datasets.stats import dataset_stats

    out = staging / "dataset"
    report = ImportReport.skipping_bad_shapes(skip_bad_shapes)
    try:
        progress(0.2, "reading annotations")
        chosen = detect_format(src) if fmt == "auto" else fmt
        out.mkdir(parents=True, exist_ok=True)
        ds = parse_upload(src, chosen, out, report)
        if ds.split_source != "source":
            assign_splits(ds, ratios or SplitRatios(), seed)
        split_findings(ds, report)
        progress(0.9, "saving")
        ds.save(out)
        stats = dataset_stats(ds)
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(out, final_dir)  # same filesystem: the dataset appears whole or not at all
        return Landed(ds, report, stats, chosen)
    finally:
        remove_tree(out)
