"""Browser end-to-end: API tokens page (create, shown once, list, revoke) with real CSRF cookies.

Uses the same ``studio_url`` fixture (tests/conftest.py) and chromium set-up as
test_auth_health.py; screenshots go to ``$STUDIO_E2E_ARTIFACTS/tokens``.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("STUDIO_E2E_ARTIFACTS", "build/e2e")) / "tokens"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_tokens_create_show_once_revoke(studio_url: str, browser: sync_api.Browser, artifacts: Path) -> None:
    base = studio_url.rstrip("/")
    email = f"e2e-tok-{uuid.uuid4().hex[:12]}@example.com"
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    n = 0

    def shot(name: str) -> None:
        nonlocal n
        n += 1
        page.screenshot(path=str(artifacts / f"{n:02d}-{name}.png"), full_page=True)

    try:
        page.goto(base + "/signup")
        form = page.get_by_role("form", name="Sign up")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password", exact=True).fill(PASSWORD)
        form.get_by_label("Confirm password").fill(PASSWORD)
        form.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(re.compile(r"/health$"))

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Tokens").click()
        expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
        # The API's 422 for a bad name shows next to the field, as text.
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

        page.get_by_role("button", name=f"Revoke {name}").click()
        page.get_by_role("button", name=f"Confirm revoking {name}").click()
        expect(rows).to_have_count(0)
        expect(page.get_by_text("No tokens yet.")).to_be_visible()
        shot("token-revoked")

        revoked = httpx.get(base + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert revoked.status_code == 401, revoked.text
    except Exception:
        try:
            shot("FAILED")
        except Exception:  # noqa: S110 - the original failure matters more
            pass
        raise
    finally:
        context.close()
