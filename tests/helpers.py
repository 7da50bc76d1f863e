"""Shared test helpers: signing in through the API, waiting for a condition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.testclient import TestClient

T = TypeVar("T")


def sign_up(client: TestClient, email: str | None = None, password: str = "correct horse") -> dict[str, Any]:
    """Register a user, keep its session cookie on ``client`` and send its CSRF token from now on."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    r = client.post("/api/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


def wait_for(
    fn: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
