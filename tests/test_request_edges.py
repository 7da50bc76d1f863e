"""Requests at the edges. Ids past what a resource id can be (BIGINT), in a path or a query, are refused
naming the parameter, on SQLite and PostgreSQL alike, never a database error; the largest id there can be
is simply not there. Every response carries the security headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import sign_up

HUGE = 2**64
LARGEST = 2**63 - 1
PATHS = [
    "/api/datasets/{}",
    "/api/datasets/{}/images",
    "/api/datasets/1/images/{}",
    "/api/datasets/{}/images/1/render",
    "/api/jobs/{}",
    "/api/jobs/{}/metrics",
    "/api/models/{}",
    "/api/models/{}/dashboard",
    "/api/models/{}/evaluation/images",
    "/api/artifacts/{}",
]


@pytest.mark.parametrize("path", PATHS)
def test_an_id_past_64_bits_is_refused_naming_it_and_the_largest_is_not_found(
    db_stack: object, client: TestClient, path: str
) -> None:
    sign_up(client)
    r = client.get(path.format(HUGE))
    assert r.status_code == 422, (path, r.status_code, r.text)
    assert "less than or equal to" in r.text, r.text
    r = client.get(path.format(LARGEST))
    assert r.status_code == 404, (path, r.status_code, r.text)


def test_offsets_and_event_ids_past_64_bits_are_no_database_error(
    db_stack: object, client: TestClient
) -> None:
    sign_up(client)
    assert client.get("/api/jobs", params={"offset": HUGE}).status_code == 422
    assert client.get("/api/jobs", params={"offset": LARGEST}).status_code == 200
    r = client.post("/api/jobs", json={"kind": "probe", "config": {"steps": 1}})
    assert r.status_code in (200, 201), r.text
    job = r.json()["id"]
    assert client.get(f"/api/jobs/{job}/metrics", params={"after_step": HUGE}).status_code == 422
    assert client.get(f"/api/jobs/{job}/events", params={"after": HUGE}).status_code == 422


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    """The UI's policy: its own scripts only, no framing, no plugins; the docs page may load Swagger UI."""
    sign_up(client)
    for path in ("/api/health", "/api/auth/me", "/api/datasets/1", "/api/openapi.json"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
        policy = r.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, policy
        assert "object-src 'none'" in policy
    docs = client.get("/api/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
