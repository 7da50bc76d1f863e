"""Sign-up, sign-in, sessions with CSRF, API tokens, and what bad credentials get."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, Stack
from tests.helpers import sign_up

pytestmark = pytest.mark.usefixtures("db_stack")


def test_register_signs_in_and_me_answers(client: TestClient) -> None:
    body = sign_up(client, "Ada@Example.com")
    assert body["user"]["email"] == "ada@example.com"
    cookie = client.cookies.get("studio_session")
    assert cookie and client.cookies.get("studio_csrf") == body["csrf_token"]
    me = client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"


def test_session_cookie_is_httponly_and_lax(client: TestClient) -> None:
    r = client.post("/api/auth/register", json={"email": "c@example.com", "password": "long enough"})
    set_cookies = r.headers.get_list("set-cookie")
    session = next(c for c in set_cookies if c.startswith("studio_session="))
    csrf = next(c for c in set_cookies if c.startswith("studio_csrf="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    assert "HttpOnly" not in csrf


def test_login_logout_and_wrong_password(client: TestClient) -> None:
    sign_up(client, "b@example.com", "right password")
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    bad = client.post("/api/auth/login", json={"email": "b@example.com", "password": "wrong password"})
    assert bad.status_code == 401 and bad.json() == {
        "detail": "wrong email or password",
        "code": "bad_credentials",
    }
    unknown = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert unknown.status_code == 401 and unknown.json()["code"] == "bad_credentials"
    ok = client.post("/api/auth/login", json={"email": "B@example.com", "password": "right password"})
    assert ok.status_code == 200
    client.headers["X-CSRF-Token"] = ok.json()["csrf_token"]
    assert client.get("/api/auth/me").json()["email"] == "b@example.com"


def test_logout_ends_the_session_server_side(client: TestClient) -> None:
    sign_up(client)
    cookie = client.cookies.get("studio_session")
    client.post("/api/auth/logout")
    client.cookies.set("studio_session", cookie or "")
    assert client.get("/api/auth/me").status_code == 401


def test_no_credentials_is_401(client: TestClient) -> None:
    r = client.get("/api/auth/me")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/jobs").status_code == 401


def test_unsafe_method_without_csrf_is_403(client: TestClient) -> None:
    sign_up(client)
    token = client.headers.pop("X-CSRF-Token")
    r = client.post("/api/tokens", json={"name": "ci"})
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = client.post("/api/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    assert client.post("/api/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": token}).status_code == 201
    assert client.get("/api/tokens").status_code == 200  # safe methods need no token


def test_duplicate_email_is_409(client: TestClient) -> None:
    sign_up(client, "dup@example.com")
    r = client.post("/api/auth/register", json={"email": "DUP@example.com", "password": "another one"})
    assert r.status_code == 409 and r.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com"}, "password"),
    ],
)
def test_bad_registration_names_the_field(client: TestClient, body: dict[str, str], field: str) -> None:
    r = client.post("/api/auth/register", json=body)
    assert r.status_code == 422
    payload = r.json()
    assert payload["code"] == "validation_error" and payload["detail"].startswith(f"{field}:")
    assert payload["errors"][0]["loc"] == ["body", field]


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_api_token_lifecycle(client: TestClient, db_stack: Stack) -> None:
    sign_up(client)
    created = client.post("/api/tokens", json={"name": "laptop script"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("stu_")
    listed = client.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["laptop script"] and "token" not in listed[0]

    # Stored hashed: the plaintext is nowhere in the database.
    engine = create_engine(db_stack.database_url)
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    engine.dispose()
    assert token not in hashes and len(hashes[0]) == 64

    bearer = TestClient(client.app)
    bearer.headers["Authorization"] = f"Bearer {token}"
    assert bearer.get("/api/auth/me").status_code == 200
    # A bearer token needs no CSRF token: it is not sent by browsers on their own.
    assert bearer.post("/api/jobs", json={"kind": "probe", "config": {"steps": 1}}).status_code == 201
    assert bearer.get("/api/tokens").json()[0]["last_used_at"] is not None

    assert client.delete(f"/api/tokens/{listed[0]['id']}").status_code == 204
    assert bearer.get("/api/auth/me").status_code == 401
    bearer.headers["Authorization"] = "Bearer stu_made-up"
    assert bearer.get("/api/auth/me").status_code == 401


def test_other_users_token_is_404(client: TestClient) -> None:
    sign_up(client)
    tid = client.post("/api/tokens", json={"name": "mine"}).json()["id"]
    other = TestClient(client.app)
    sign_up(other)
    r = other.delete(f"/api/tokens/{tid}")
    missing = other.delete("/api/tokens/999999")
    assert r.status_code == 404 and missing.status_code == 404
    assert r.json()["detail"] == "token 999999 not found".replace("999999", str(tid))
    assert client.get("/api/tokens").json()[0]["id"] == tid


def test_login_is_rate_limited(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "login_rate_limit", "3/minute")
    codes = [
        client.post("/api/auth/login", json={"email": "rl@example.com", "password": "wrong one"}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    r = client.post("/api/auth/login", json={"email": "rl@example.com", "password": "wrong one"})
    assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1


def test_token_creation_is_rate_limited(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "token_rate_limit", "2/hour")
    sign_up(client)
    codes = [client.post("/api/tokens", json={"name": f"t{i}"}).status_code for i in range(3)]
    assert codes == [201, 201, 429]


def test_user_create_command(db_stack: Stack) -> None:
    env = {**db_stack.env(), "STUDIO_NEW_USER_PASSWORD": "from the shell"}
    import os

    run = subprocess.run(
        [sys.executable, "-m", "backend.cli", "user", "create", "shell@example.com"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    again = subprocess.run(
        [sys.executable, "-m", "backend.cli", "user", "create", "shell@example.com"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    from backend.app import create_app

    with TestClient(create_app()) as c:
        ok = c.post("/api/auth/login", json={"email": "shell@example.com", "password": "from the shell"})
    assert ok.status_code == 200
