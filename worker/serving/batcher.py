"""Micro-batching: concurrent requests for one model are run as one forward, the way Triton's dynamic
batcher and Ray Serve's ``@serve.batch`` do. One thread owns the device and runs every batch in turn; a
batch waits at most ``max_wait`` seconds after its first request for more to join it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[Hashable, list[Any]], list[Any]]


@dataclass
class _Item:
    payload: Any
    future: Future[Any]
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Groups submitted payloads by key and calls ``run(key, payloads)`` with up to ``max_batch`` of one
    key at a time, oldest request first. ``run`` returns one result per payload, in order."""

    def __init__(self, run: RunBatch, max_batch: int, max_wait: float) -> None:
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._cv = threading.Condition()
        self._pending: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
        self._limits: dict[Hashable, int] = {}
        self._thread: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the batches run, newest last (bounded), for tests

    def submit(self, key: Hashable, payload: Any, max_batch: int | None = None) -> Future[Any]:
        """Queue one payload; ``max_batch=1`` for work that must run alone (Grad-CAM's hooks)."""
        item = _Item(payload, Future())
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
                self._thread.start()
            self._pending.setdefault(key, deque()).append(item)
            if max_batch is not None:
                self._limits[key] = max_batch
            self._cv.notify_all()
        return item.future

    def _next_batch(self) -> tuple[Hashable, list[_Item]]:
        with self._cv:
            while not self._pending:
                self._cv.wait()
            key = min(self._pending, key=lambda k: self._pending[k][0].arrived)
            queue = self._pending[key]
            limit = self._limits.get(key, self.max_batch)
            deadline = queue[0].arrived + self.max_wait
            while len(queue) < limit and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(left)
            batch = [queue.popleft() for _ in range(min(limit, len(queue)))]
            if not queue:
                del self._pending[key]
                self._limits.pop(key, None)
            return key, batch

    def _loop(self) -> None:
        while True:
            key, batch = self._next_batch()
            self.batches = [*self.batches[-999:], len(batch)]
            try:
                results = self._run(key, [item.payload for item in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
            except BaseException as exc:  # every waiter hears of it; the loop goes on
                for item in batch:
                    item.future.set_exception(exc)
                continue
            for item, result in zip(batch, results, strict=True):
                item.future.set_result(result)
