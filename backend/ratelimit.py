"""Fixed-window rate limits (the ``limits`` library), in memory or in Redis when Redis is configured."""

from __future__ import annotations

import time
from functools import lru_cache

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from backend.errors import StudioError
from backend.settings import get_settings


@lru_cache
def _limiter(storage_uri: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(storage_uri))


def hit(rule: str, *key: str) -> None:
    """Count one attempt against ``rule`` (e.g. ``"10/minute"``) for ``key``; 429 once it is exceeded."""
    settings = get_settings()
    storage = settings.redis_url or "memory://"
    limit = parse(rule)
    limiter = _limiter(storage)
    if not limiter.hit(limit, *key):
        reset = limiter.get_window_stats(limit, *key).reset_time
        raise StudioError(
            429,
            f"too many attempts, limit is {rule}",
            "rate_limited",
            headers={"Retry-After": str(max(1, int(reset - time.time())))},
        )
