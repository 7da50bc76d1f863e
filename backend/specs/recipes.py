"""One set of defaults for a run: what a config gets, for the fields it does not give, from its
architecture's catalog entry and the machine (``TaskSpec.recipe``); the form's presets; the entry it
preselects. The form, the REST API and ``studio train`` all parse configs through
``backend.specs.config.parse_train_config``, which applies these, so the same few fields give the same
run everywhere, and the config recorded with a job holds every value it trained with."""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

from backend.settings import get_settings
from backend.specs.taskspec import CatalogEntry, TaskSpec

Device = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Machine:
    """Where the training lane runs: its device kind and how many GPUs."""

    device: Device
    gpus: int
    description: str


@functools.lru_cache(maxsize=8)
def _machine(setting: str, cores: int) -> Machine:
    from backend.supervisor import gpu_indices  # nvidia-smi, asked once per process

    gpus = len(gpu_indices(setting))
    if gpus:
        return Machine("cuda", gpus, f"{gpus} GPU{'s' if gpus > 1 else ''} for training")
    return Machine("cpu", 0, f"CPU only ({cores} core{'s' if cores != 1 else ''}), no GPU")


def training_machine() -> Machine:
    """The training lane's machine, from ``STUDIO_TRAINING_DEVICES``: 'cpu', GPU indices, or 'auto' (every
    GPU nvidia-smi lists on this host; set it explicitly where the API runs on another host than the
    training workers, as under docker compose)."""
    from backend.supervisor import cores

    return _machine(get_settings().training_devices, cores())


def fit_size(entry: CatalogEntry, side: int) -> int:
    """``side`` rounded up to the entry's input multiple and clamped to the sizes it takes."""
    m = max(1, entry.input_multiple)
    side = max(entry.min_input_size, min(side, max(entry.default_input_size, entry.min_input_size)))
    return int(math.ceil(side / m) * m)


def entry_defaults(spec: TaskSpec, entry: CatalogEntry, device: Device) -> dict[str, Any]:
    """Dotted path → value a run of ``entry`` gets on ``device`` unless its config says otherwise."""
    r = spec.recipe
    cpu = device == "cpu"
    out: dict[str, Any] = {}
    if r.size_path is not None:
        side = entry.default_input_size
        if cpu and entry.light and r.cpu_input_size is not None:
            side = r.cpu_input_size
        out[r.size_path] = fit_size(entry, side)
    out["data.batch_size"] = r.cpu_batch_size if cpu else r.batch_size
    out["schedule.epochs"] = r.epochs
    if entry.pretrained_weights and not get_settings().offline:
        # Small projects learn far more from ImageNet features than from scratch in the same time.
        out["model.pretrained"] = True
    if r.lr is not None:
        out["schedule.lr"] = r.lr
    return out


_MISSING = object()


def _get(data: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def with_defaults(data: dict[str, Any], spec: TaskSpec, device: Device) -> dict[str, Any]:
    """``data`` (a raw config of ``spec``'s task) with what it does not give: the architecture the form
    preselects on this machine, then that entry's defaults. An architecture the task lacks, or a section
    that is not a mapping, is left for validation to name."""
    out = copy.deepcopy(data)
    defaults: dict[str, Any] = {}
    name = _get(out, ["model", "architecture"])
    if name is _MISSING:
        name = recommended(spec, device)[0]
        defaults["model.architecture"] = name
    entry = next((e for e in spec.entries if e.name == name), None)
    if entry is None:
        return data
    defaults.update(entry_defaults(spec, entry, device))
    for dotted, value in defaults.items():
        path = dotted.split(".")
        if dotted == "schedule.epochs" and _get(out, ["schedule", "iterations"]) not in (_MISSING, None):
            continue  # a run given in iterations
        if _get(out, path) is not _MISSING:
            continue
        section = spec.config.model_fields.get(path[0])
        if path[0] not in out and (section is None or section.is_required()):
            continue  # a section the config must give (``data``): its absence is validation's to name
        parent: Any = out
        for key in path[:-1]:
            child = parent.setdefault(key, {})
            if not isinstance(child, dict):
                break
            parent = child
        else:
            parent[path[-1]] = value
    return out


# ------------------------------------------------------------------------------------------ presets

# Iterations the quick and the best preset aim at (balanced keeps the entry's epochs): a first look, and
# the most this machine makes sense of.
_TARGETS: dict[Device, tuple[int, int]] = {"cpu": (60, 1500), "cuda": (300, 15000)}
_EVALS = (3, 10, 20)  # evaluations over a run, about


@dataclass(frozen=True)
class DatasetFacts:
    train_images: int
    typical_side: int | None  # the long side most images have (the median bin's lower edge), if known


def dataset_facts(stats: dict[str, Any]) -> DatasetFacts:
    train = int(((stats.get("splits") or {}).get("train") or {}).get("images", 0) or 0)
    sides: list[int] = []
    for axis in ("width", "height"):
        bins = ((stats.get("image_sizes") or {}).get(axis)) or []
        total = sum(int(b.get("count", 0)) for b in bins)
        seen = 0
        for b in bins:
            seen += int(b.get("count", 0))
            if total and seen * 2 >= total:
                sides.append(int(b.get("min", 0)))
                break
    typical = max(sides) if sides else None
    return DatasetFacts(train, typical or None)


def presets(spec: TaskSpec, entry: CatalogEntry, device: Device, facts: DatasetFacts) -> list[dict[str, Any]]:
    """ "Quick look", "Balanced" and "Best" for ``entry`` on this machine and dataset: each the dotted
    paths it sets (epochs from the iterations it aims at and the train split's size; evaluation spread
    over the run; the input side from the entry, the machine and the images' size)."""
    base = entry_defaults(spec, entry, device)
    batch = int(base["data.batch_size"])
    steps = max(1, math.ceil(max(1, facts.train_images) / batch))
    r = spec.recipe
    sizes: tuple[int | None, int | None, int | None] = (None, None, None)
    if r.size_path is not None:
        balanced = int(base[r.size_path])
        small = fit_size(entry, min(balanced, r.cpu_input_size or balanced))
        large = entry.default_input_size
        if facts.typical_side:  # no larger than the pictures are
            large = min(large, max(facts.typical_side, balanced))
        sizes = (small, balanced, fit_size(entry, max(large, balanced)))
    words = (
        ("quick", "Quick look", "A first model in a few minutes, to see that the data and the labels work"),
        ("balanced", "Balanced", "The studio's defaults for this model on this machine"),
        ("best", "Best", "Longer and at the full input size this model and these pictures allow"),
    )
    quick_target, best_target = _TARGETS[device]
    base_epochs = int(base["schedule.epochs"])
    epochs_of = (
        max(1, min(base_epochs, math.ceil(quick_target / steps))),  # quick: never longer than the defaults
        base_epochs,  # balanced: the defaults
        max(base_epochs, min(10 * base_epochs, math.ceil(best_target / steps))),  # best: up to ten times
    )
    out = []
    for (name, title, description), epochs, evals, side in zip(words, epochs_of, _EVALS, sizes, strict=True):
        changes: dict[str, Any] = {"schedule.epochs": epochs, "schedule.iterations": None}
        changes["runtime.eval_interval"] = max(1, epochs // evals)
        changes["runtime.checkpoint_interval"] = changes["runtime.eval_interval"]
        if r.size_path is not None and side is not None:
            changes[r.size_path] = side
        iters = epochs * steps
        out.append(
            {
                "name": name,
                "title": title,
                "description": f"{description}: {epochs} epoch{'s' if epochs > 1 else ''} of {steps} "
                f"iteration{'s' if steps > 1 else ''} ({iters} in all)",
                "changes": changes,
            }
        )
    return out


def recommended(spec: TaskSpec, device: Device) -> tuple[str | None, str]:
    """The entry the form preselects on this machine, and why, in words."""
    names = [e.name for e in spec.entries]
    if device == "cuda" and spec.recipe.gpu_pick in names:
        return spec.recipe.gpu_pick, "A strong model that trains in reasonable time on a GPU"
    pick = spec.recipe.cpu_pick if spec.recipe.cpu_pick in names else None
    if pick is None:
        pick = next((e.name for e in spec.entries if e.light), names[0] if names else None)
    if device == "cuda":
        return pick, "Light and quick to train"
    return pick, "Light enough to train on this CPU in minutes"
