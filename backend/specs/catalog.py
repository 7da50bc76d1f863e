"""The model catalog: every architecture the studio can build, by task, with its options.

Listable without torch: the worker's zoo builds each entry by name (``worker/zoo``), and computes its
parameter count and FLOPs at the default input size (cached in ``DATA_DIR/catalog_stats.json``,
see ``backend/specs/stats.py``)."""

from __future__ import annotations

from backend.specs.taskspec import CatalogEntry, OptionSpec

__all__ = ["CatalogEntry", "OptionSpec", "get_entry", "list_models"]


def list_models(task: str | None = None) -> list[CatalogEntry]:
    """Catalog entries, in the registry's order of tasks, optionally of one task."""
    from backend.tasks import TASKS  # the tasks' modules use the entry types above: import them late

    return [e for spec in TASKS.values() if task is None or spec.name == task for e in spec.entries]


def get_entry(name: str) -> CatalogEntry:
    """The entry named ``name``; ``KeyError`` naming the known ones otherwise."""
    entries = list_models()
    for entry in entries:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown architecture {name!r}; known: {', '.join(e.name for e in entries)}")
