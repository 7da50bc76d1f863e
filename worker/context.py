"""What a job handler gets: its config and work folder, progress and metric reporting, and the stop flag."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.db.session import session_scope
from backend.files import atomic_write_bytes
from backend.jobs.events import notify, write_metrics
from backend.jobs.lifecycle import report_progress

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a handler when the user asked to cancel; the runner records 'cancelled'."""


class JobFailed(Exception):
    """A failure the user can act on; its message is the job's whole error, shown as it is."""


class LeaseLost(Exception):
    """Raised when this worker no longer holds the job (reaped or taken over): stop without writing."""


class WorkerStopping(Exception):
    """Raised inside a handler when its worker is being stopped (SIGTERM: Ctrl-C on ``studio up``, a
    service manager's stop): the runner gives the job back to its queue, to resume from its last
    checkpoint when a worker takes it."""


# Set once this process is told to stop (``worker.celery_app`` connects it to Celery's warm shutdown).
STOPPING = threading.Event()


@dataclass
class JobContext:
    job_id: int
    owner_id: int
    kind: str
    config: dict[str, Any]
    attempt: int
    worker: str
    work_dir: Path
    stop_event: threading.Event
    lease_lost: threading.Event
    metrics_flush_seconds: float = 2.0
    progress_interval_seconds: float = 0.5
    _pending: list[tuple[int, str, float]] = field(default_factory=list)
    _last_flush: float = field(default_factory=time.monotonic)
    _last_progress: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> None:
        """Call once per iteration: raises when the job must stop (cancel, or the lease is gone)."""
        if self.lease_lost.is_set():
            raise LeaseLost(f"job {self.job_id}: lease lost")
        if self.stop_event.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")
        if STOPPING.is_set():
            raise WorkerStopping(f"job {self.job_id}: the worker is stopping")

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        """Report progress; throttled so a fast loop does not flood the database."""
        now = time.monotonic()
        if not force and fraction < 1.0 and now - self._last_progress < self.progress_interval_seconds:
            return
        self._last_progress = now
        with session_scope() as session:
            report_progress(session, self.job_id, self.worker, fraction, message)
        notify(self.job_id)

    def log_metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Buffer scalar metrics at ``step``; written in batches (and at the end of the job)."""
        with self._lock:
            self._pending.extend((step, name, float(v)) for name, v in values.items())
        if time.monotonic() - self._last_flush >= self.metrics_flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if not rows:
            return
        with session_scope() as session:
            write_metrics(session, self.job_id, rows)
        notify(self.job_id)

    def checkpoint_path(self, name: str = "checkpoint.json") -> Path:
        return self.work_dir / name

    def save_json(self, name: str, data: Any) -> None:
        atomic_write_bytes(self.work_dir / name, json.dumps(data).encode())

    def load_json(self, name: str) -> Any | None:
        try:
            return json.loads((self.work_dir / name).read_text())
        except FileNotFoundError:
            return None
