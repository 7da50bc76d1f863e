"""API tokens page: create (shown once), use as a bearer token, list, revoke; real CSRF cookies."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect

PASSWORD = "correct-horse-battery"


def test_tokens_create_show_once_revoke(e2e_page: Any, studio_url: str, shot: Callable[[str], None]) -> None:
    page = e2e_page
    base = studio_url.rstrip("/")
    email = f"e2e-tok-{uuid.uuid4().hex[:12]}@example.com"

    page.goto("/signup")
    form = page.get_by_role("form", name="Sign up")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Confirm password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/health$"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tokens").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()

    # The API's 422 for a bad name shows next to the field.
    page.get_by_label("Token name").fill("laptop <b>cli</b>")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("error-name")).to_be_visible()
    expect(page.get_by_label("Token name")).to_have_attribute("aria-invalid", "true")
    shot("token-name-rejected")

    name = "laptop cli@host/1"
    page.get_by_label("Token name").fill(name)
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token-value")
    expect(secret).not_to_be_empty()
    token = secret.inner_text().strip()
    rows = page.get_by_test_id("token-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(name)
    shot("token-created")

    # The token works as a bearer credential.
    me = httpx.get(base + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email

    # Shown once: gone after "Done" and after a reload.
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("new-token-value")).to_have_count(0)
    page.reload()
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("new-token-value")).to_have_count(0)

    # Revoke (a DELETE that needs the X-CSRF-Token header).
    page.get_by_role("button", name=f"Revoke {name}").click()
    page.get_by_role("button", name=f"Confirm revoking {name}").click()
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    shot("token-revoked")

    revoked = httpx.get(base + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert revoked.status_code == 401, revoked.text
    assert page.page_errors == [], f"uncaught errors in the page: {page.page_errors}"
