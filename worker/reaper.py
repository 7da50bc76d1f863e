"""Re-queues jobs whose worker stopped answering; runs as a thread in every worker."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from backend.db.session import session_scope
from backend.jobs.lifecycle import reap
from backend.jobs.service import resend
from backend.models.contract import requests_dir
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

PROCESSED_KEEP_SECONDS = 3600


def reap_once(settings: Settings) -> None:
    with session_scope() as session:
        reaped = reap(session, settings.heartbeat_timeout_seconds, settings.max_attempts)
    resend(reaped)


def prune_old_files(folder: Path, pattern: str, keep_seconds: float = PROCESSED_KEEP_SECONDS) -> None:
    """Drop files older than ``keep_seconds``: messages the filesystem broker keeps once claimed, and
    images sent for a single prediction whose answer nobody waited for."""
    cutoff = time.time() - keep_seconds
    for path in folder.rglob(pattern):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass


class Reaper(threading.Thread):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(name="reaper", daemon=True)
        self.settings = settings or get_settings()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.settings.reaper_interval_seconds):
            try:
                reap_once(self.settings)
                if self.settings.uses_filesystem_broker:
                    prune_old_files(self.settings.broker_dir / "processed", "*.msg")
                prune_old_files(requests_dir(self.settings.data_dir), "*.*")
                if not self.settings.redis_url:  # answers of the inference lane nobody read
                    prune_old_files(self.settings.results_dir, "celery-task-meta-*")
            except Exception as exc:  # the next round tries again
                log.warning("reaper round failed: %s", exc)

    def stop(self) -> None:
        self._done.set()
