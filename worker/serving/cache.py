"""Warm models: an LRU bounded by the memory their weights take, where a model still loading is waited
for once by everyone who asks for it, never loaded twice."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from torch import nn

from backend.settings import get_settings
from worker.models import LoadedModel, load_model

Key = tuple[str, float]  # checkpoint path and its mtime: a replaced file is a new key


def model_bytes(model: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers (what a warm model costs)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class _Entry:
    key: Key
    loaded: LoadedModel
    nbytes: int


class ModelCache:
    """Loaded models by id. ``capacity_bytes`` bounds the sum of their weights: the least recently used
    are dropped to make room (the one just asked for always stays, however large)."""

    def __init__(self, capacity_bytes: int, loader: Callable[[Path], LoadedModel] = load_model) -> None:
        self.capacity_bytes = capacity_bytes
        self._loader = loader
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._loading: dict[tuple[int, Key], Future[LoadedModel]] = {}
        self.loads = 0  # files read, for tests and the health of the lane
        self.evictions = 0

    def get(self, model_id: int, checkpoint: Path | str, mtime: float | None = None) -> LoadedModel:
        """The model for ``model_id`` at this file version, loading it if needed (once, however many ask)."""
        path = Path(checkpoint)
        key: Key = (str(path), path.stat().st_mtime if mtime is None else float(mtime))
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None and entry.key == key:
                self._entries.move_to_end(model_id)
                return entry.loaded
            pending = self._loading.get((model_id, key))
            if pending is None:
                future: Future[LoadedModel] = Future()
                self._loading[(model_id, key)] = future
        if pending is not None:
            return pending.result()
        try:
            loaded = self._loader(path)
        except BaseException as exc:
            with self._lock:
                self._loading.pop((model_id, key), None)
            future.set_exception(exc)
            raise
        with self._lock:
            self.loads += 1
            self._entries[model_id] = _Entry(key, loaded, model_bytes(loaded.model))
            self._entries.move_to_end(model_id)
            self._loading.pop((model_id, key), None)
            self._evict()
        future.set_result(loaded)
        return loaded

    def _evict(self) -> None:
        while len(self._entries) > 1 and self.held_bytes() > self.capacity_bytes:
            self._entries.popitem(last=False)
            self.evictions += 1

    def held_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def forget(self, model_id: int | None = None) -> None:
        """Drop one model, or every one."""
        with self._lock:
            if model_id is None:
                self._entries.clear()
            else:
                self._entries.pop(model_id, None)

    def ids(self) -> list[int]:
        """Warm model ids, least recently used first."""
        with self._lock:
            return list(self._entries)


@lru_cache(maxsize=1)
def warm_cache() -> ModelCache:
    """This process's warm models, bounded by ``STUDIO_INFERENCE_CACHE_MB``."""
    return ModelCache(get_settings().inference_cache_mb << 20)
